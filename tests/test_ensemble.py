"""Ensembles: many runs in one kernel call, each bit for bit the run done alone."""

import os
import subprocess
import sys

import numpy as np
import pytest

from theorybox.engine import run
from theorybox.engine.ensemble import config_grid, run_ensemble
from theorybox.errors import InvalidDataError, InvalidParameterError
from theorybox.optimizers import Batching, RunConfig, Schedule

RNG = np.random.default_rng(4)
Z_A = RNG.normal(size=(7, 4))
Z_B = RNG.normal(size=(7, 4)) * (RNG.random((7, 4)) < 0.6)
DECAY = Schedule(0.1, 1.0, 0.5)


def _assert_same_run(alone, together):
    for key in ("w", "moments", "scale", "t", "stall"):
        a = getattr(alone.state, key)
        b = getattr(together.state, key)
        assert a.tobytes() == b.tobytes(), key
    assert alone.status == together.status
    assert alone.stall_step == together.stall_step
    np.testing.assert_array_equal(alone.steps, together.steps)
    for x, y in zip(alone.metrics, together.metrics, strict=True):
        assert x["t"] == y["t"]
        assert x["w"].tobytes() == y["w"].tobytes()


def test_grid_of_seeds_betas_and_batch_sizes_matches_single_runs():
    base = RunConfig("adam-mb", 120, batching=Batching("reshuffle", 2),
                     schedule=DECAY, seed=0)
    configs = config_grid(base, seed=[0, 5], b1=[0.9, 0.5], batch_size=[1, 3])
    assert len(configs) == 8
    assert [c.batching.size(7) for c in configs[:2]] == [1, 3]
    together = run_ensemble(Z_A, configs, w0=np.full(4, 0.1))
    for config, result in zip(configs, together, strict=True):
        _assert_same_run(run(Z_A, config, w0=np.full(4, 0.1)), result)


def test_datasets_of_one_shape():
    base = RunConfig("sgd", 60, schedule=DECAY, seed=2, loss="exponential")
    configs = config_grid(base, eta0=[0.1, 0.2])
    data = [Z_A, Z_B] * (len(configs) // 2)
    together = run_ensemble(data, configs)
    for z, config, result in zip(data, configs, together, strict=True):
        _assert_same_run(run(z, config), result)


def test_ensemble_rejects_mixed_horizons_and_shapes():
    a = RunConfig("gd", 10)
    with pytest.raises(InvalidParameterError, match="share steps"):
        run_ensemble(Z_A, [a, RunConfig("gd", 11)])
    with pytest.raises(InvalidDataError, match="one shape"):
        run_ensemble([Z_A, Z_A[:, :3]], [a, a])
    with pytest.raises(InvalidParameterError, match="grid axis"):
        config_grid(a, colour=[1])


SCRIPT = """
import numpy as np, numba
from theorybox.engine import run
from theorybox.engine.ensemble import config_grid, run_ensemble
from theorybox.optimizers import RunConfig, Schedule
Z = np.random.default_rng(0).normal(size=(6, 5))
configs = config_grid(RunConfig("adam-ps", 300, schedule=Schedule(0.1, 1, 0.5)),
                      seed=[0, 1, 2], b2=[0.99, 0.999])
together = run_ensemble(Z, configs, threads=2)
same = all(run(Z, c).state.w.tobytes() == r.state.w.tobytes()
           for c, r in zip(configs, together))
print(numba.get_num_threads(), numba.config.NUMBA_NUM_THREADS, same)
"""


@pytest.mark.timeout(240)
def test_two_threads_give_the_same_bits(tmp_path):
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True,
                          capture_output=True, text=True, timeout=200)
    assert done.stdout.split() == ["2", "2", "True"]
