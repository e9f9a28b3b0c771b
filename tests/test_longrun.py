"""Long runs (bounded memory, atomic saves, resume bit for bit) and the on-disk
kernel cache (K14: a second process loads the kernel instead of compiling it)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from theorybox.engine import run
from theorybox.engine.kernel import build_kernel, cache_dir
from theorybox.engine.longrun import load_checkpoint, resume, run_long
from theorybox.errors import InvalidDataError, InvalidParameterError
from theorybox.optimizers import Batching, OptimizerSpec, RunConfig, Schedule

RNG = np.random.default_rng(7)
Z = RNG.normal(size=(6, 4))
CONFIG = RunConfig("adam-mb", 5000, batching=Batching("reshuffle", 2),
                   schedule=Schedule(0.1, 1.0, 0.5), seed=3)


def _metrics(Z, w, t):
    return {"w": w.copy(), "norm": float(np.linalg.norm(w))}


def _same(a, b):
    for key in ("w", "moments", "scale", "t", "stall"):
        assert getattr(a.state, key).tobytes() == getattr(b.state, key).tobytes()
    assert len(a.metrics) == len(b.metrics)
    for x, y in zip(a.metrics, b.metrics, strict=True):
        assert x["t"] == y["t"] and x["norm"] == y["norm"]
        assert x["w"].tobytes() == y["w"].tobytes()


def test_interrupted_then_resumed_equals_one_run(tmp_path):
    path = tmp_path / "run.npz"
    whole = run_long(Z, CONFIG, checkpoint_path=tmp_path / "whole.npz",
                     save_every_steps=700, metrics=_metrics)
    assert whole.status == "ok"
    _same(whole, run(Z, CONFIG, metrics=_metrics))

    # Stop at an odd step between checkpoints and saves, then resume twice.
    first = run_long(Z, CONFIG, checkpoint_path=path, save_every_steps=700,
                     metrics=_metrics, until=1234)
    assert first.status == "interrupted" and int(first.state.t[0]) == 1234
    state, rows, meta = load_checkpoint(path)
    assert int(state.t[0]) == 1234 and rows[-1]["t"] <= 1234
    second = resume(path, Z, save_every_steps=700, metrics=_metrics, until=3001)
    assert int(second.state.t[0]) == 3001
    final = resume(path, Z, save_every_steps=700, metrics=_metrics)
    _same(whole, final)
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"


def test_resume_refuses_other_data(tmp_path):
    path = tmp_path / "run.npz"
    run_long(Z, CONFIG, checkpoint_path=path, save_every_steps=100, until=200)
    with pytest.raises(InvalidDataError, match="same Z"):
        resume(path, Z + 1.0)


def test_rule_without_source_file_compiles_in_memory():
    namespace = {"ops": None}
    exec("def notebook_step(lr, t, s, G, Q):\n    return (-lr * ops.sign(G),)\n",
         namespace)
    spec = OptimizerSpec("notebook-sign", namespace["notebook_step"])
    kernel = build_kernel(spec)
    assert kernel.path is None


SCRIPT = """
import logging, time, numpy as np
logging.basicConfig(level=logging.DEBUG, format="%(name)s %(message)s")
for name in ("numba", "numba.core"):
    logging.getLogger(name).setLevel(logging.WARNING)
from theorybox.engine import run
from theorybox.engine.kernel import build_kernel
from theorybox.optimizers import RunConfig
config = RunConfig("signum", 5)
start = time.perf_counter()
run(np.array([[1.0, 2.0]]), config)
kernel = build_kernel(config.spec)
print("HITS", sum(kernel.serial.stats.cache_hits.values()),
      "SECONDS", time.perf_counter() - start, kernel.path)
"""


@pytest.mark.timeout(240)
def test_second_process_loads_the_kernel_from_disk(tmp_path):
    env = dict(os.environ, THEORYBOX_CACHE_DIR=str(tmp_path / "kernels"),
               NUMBA_CACHE_DIR=str(tmp_path / "numba"))

    def once():
        done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True,
                              capture_output=True, text=True, timeout=200)
        words = done.stdout.split()
        return int(words[1]), float(words[3]), words[4], done.stderr

    hits, first_seconds, path, _ = once()
    assert hits == 0 and path.startswith(str(tmp_path / "kernels"))
    assert list((tmp_path / "numba").rglob("*.nbi")), "numba wrote no cache index"
    hits, second_seconds, again, log = once()
    assert hits == 1 and again == path
    assert "loaded kernel" in log
    assert second_seconds < first_seconds


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("THEORYBOX_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.setenv("THEORYBOX_CACHE_DIR", "off")
    assert cache_dir() is None
    monkeypatch.delenv("THEORYBOX_CACHE_DIR")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path / "theorybox"


def test_an_existing_checkpoint_is_never_overwritten_by_accident(tmp_path):
    Z = np.array([[1.0, 0.5], [0.2, 1.0]])
    path = tmp_path / "run.npz"
    run_long(Z, RunConfig("adam", steps=200), checkpoint_path=path, until=100)
    with pytest.raises(InvalidParameterError, match="resume"):
        run_long(Z, RunConfig("signum", steps=50), checkpoint_path=path)
    assert resume(path, Z).config.optimizer == "adam"
    fresh = run_long(Z, RunConfig("signum", steps=50), checkpoint_path=path,
                     overwrite=True)
    assert fresh.config.optimizer == "signum"


def test_a_diverging_run_stops_as_nonfinite_in_run_and_run_long(tmp_path):
    """Exponential loss, a negative margin and a large constant step: the iterate
    overflows within a few steps. run and run_long stop at the first checkpoint
    after it with the same status and message, keeping the rows before it."""
    Z = np.array([[-1.0], [-1.0], [3.0], [0.0]])
    config = RunConfig("sgd", 1000, batching=Batching("full"), loss="exponential",
                       schedule=Schedule(0.5, 1.0, 0.0))
    w0 = np.array([6000.0])
    plain = run(Z, config, w0=w0)
    long = run_long(Z, config, w0=w0, checkpoint_path=tmp_path / "d.npz")
    for result in (plain, long):
        assert result.status == "nonfinite"
        assert "non-finite iterate or moments between steps" in result.messages[0]
    assert plain.messages[0] == long.messages[0]
