"""Many independent runs advanced together, one kernel call for all of them.

An ensemble is a list of :class:`~theorybox.optimizers.RunConfig` (seeds, ``b1`` /
``b2`` grids, schedules, batch sizes, losses) on one dataset or on several
datasets of one shape. Runs that share a compiled kernel (one update rule, one
set of switch values) are advanced by the kernel's ``parallel`` driver, which
spreads runs over threads with ``numba.prange``; every run keeps its own scratch
arrays and is exactly, bit for bit, the run :func:`~theorybox.engine.run` would
produce alone (each run is run 0 of its own seed's random stream).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numba
import numpy as np

from theorybox.engine.kernel import build_kernel, switch_values
from theorybox.engine.run import (
    RunResult,
    _Workspace,
    as_z,
    call_kernel,
    check_start,
    finish,
    geometric_checkpoints,
    kernel_arguments,
)
from theorybox.engine.state import EngineState
from theorybox.errors import InvalidDataError, InvalidParameterError
from theorybox.optimizers.config import Batching, RunConfig

__all__ = ["config_grid", "run_ensemble"]

logger = logging.getLogger(__name__)

_SCHEDULE_FIELDS = ("eta0", "t0", "a")


def config_grid(base: RunConfig, **axes) -> list[RunConfig]:
    """Every combination of ``axes`` applied to ``base`` (first axis slowest).

    Axis names are hyperparameters of ``base``'s optimizer (``b1``, ``b2``, ...),
    schedule fields (``eta0``, ``t0``, ``a``), ``batch_size`` (same scheme), or
    :class:`RunConfig` fields (``seed``, ``loss``, ...).

    Examples
    --------
    >>> from theorybox.optimizers import RunConfig
    >>> grid = config_grid(RunConfig("adam-ps", 100), seed=[0, 1], b1=[0.9, 0.99])
    >>> [(c.seed, c.hyper["b1"]) for c in grid]
    [(0, 0.9), (0, 0.99), (1, 0.9), (1, 0.99)]
    """
    names = list(axes)
    configs = []
    for values in itertools.product(*(axes[name] for name in names)):
        hyper = dict(base.hyper)
        schedule = base.schedule
        batching = base.batching
        fields = {}
        for name, value in zip(names, values, strict=True):
            if name in hyper:
                hyper[name] = value
            elif name in _SCHEDULE_FIELDS:
                schedule = replace(schedule, **{name: value})
            elif name == "batch_size":
                batching = Batching(batching.scheme, value)
            elif name in ("seed", "loss", "steps", "optimizer", "batching",
                          "schedule"):
                fields[name] = value
            else:
                raise InvalidParameterError(
                    f"grid axis {name!r} is neither a hyperparameter of "
                    f"{base.optimizer!r} ({sorted(hyper)}), a schedule field "
                    f"{_SCHEDULE_FIELDS}, 'batch_size' nor a RunConfig field"
                )
        fields.setdefault("schedule", schedule)
        fields.setdefault("batching", batching)
        configs.append(replace(base, hyper=hyper, **fields))
    return configs


def _datasets(Z, runs: int) -> tuple[np.ndarray, np.ndarray]:
    """The datasets as one ``(D, N, d)`` array, and each run's dataset index."""
    if isinstance(Z, np.ndarray) and Z.ndim == 3:
        Z = list(Z)
    if isinstance(Z, list | tuple):
        arrays = [as_z(z) for z in Z]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise InvalidDataError(
                f"the datasets of an ensemble must have one shape; got "
                f"{sorted(shapes)} (run the shapes as separate ensembles)"
            )
        if len(arrays) not in (1, runs):
            raise InvalidDataError(
                f"{len(arrays)} datasets for {runs} runs: give one dataset, or one "
                "per configuration"
            )
    else:
        arrays = [as_z(Z)]
    Z3 = np.ascontiguousarray(np.stack(arrays))
    zsel = np.arange(runs, dtype=np.int64) if len(arrays) > 1 else np.zeros(
        runs, dtype=np.int64)
    return Z3, zsel


def _starts(w0, runs: int, d: int) -> np.ndarray:
    if w0 is None:
        return np.zeros((runs, d))
    w0 = np.asarray(w0, dtype=np.float64)
    if w0.ndim == 2:
        if w0.shape[0] != runs:
            raise InvalidDataError(
                f"w0 has {w0.shape[0]} rows for {runs} runs: give one start of "
                f"length d = {d}, or one per run"
            )
        return np.stack([check_start(row, d) for row in w0])
    return np.tile(check_start(w0, d), (runs, 1))


def run_ensemble(
    Z,
    configs: Sequence[RunConfig],
    *,
    w0=None,
    checkpoints=None,
    metrics: Callable[[np.ndarray, np.ndarray, int], dict] | None = None,
    threads: int | None = None,
) -> list[RunResult]:
    """Run every configuration of ``configs`` together; one result per config.

    Parameters
    ----------
    Z : array_like, sequence of array_like, or ndarray of shape (D, N, d)
        One dataset for all runs, or one per configuration (all of one shape).
    configs : sequence of RunConfig
        All with the same ``steps`` (see :func:`config_grid` for grids).
    w0 : array_like, optional
        One start of length ``d``, or one per run (default 0).
    checkpoints : array_like of int, optional
        Steps at which to evaluate ``metrics`` (default: geometric, 10 a decade).
    metrics : callable, optional
        ``metrics(Z, w, t) -> dict`` with the run's own dataset; default: ``w``.
    threads : int, optional
        Threads for the parallel driver (default: numba's thread count).

    Returns
    -------
    list of RunResult
        ``results[i]`` equals ``run(Z_i, configs[i], w0=w0_i)`` bit for bit.
    """
    started = time.perf_counter()
    configs = list(configs)
    if not configs:
        raise InvalidParameterError("run_ensemble needs at least one RunConfig")
    steps = {c.steps for c in configs}
    if len(steps) != 1:
        raise InvalidParameterError(
            f"the runs of an ensemble must share steps; got {sorted(steps)} (give "
            "them the longest horizon and read shorter ones from the checkpoints)"
        )
    total = steps.pop()
    runs = len(configs)
    Z3, zsel = _datasets(Z, runs)
    _, n, d = Z3.shape
    starts = _starts(w0, runs, d)
    if checkpoints is None:
        checkpoints = geometric_checkpoints(total)
    checkpoints = np.asarray(checkpoints, dtype=np.int64)
    if metrics is None:
        def metrics(Z, w, t):
            return {"w": w.copy()}

    # Group the runs by compiled kernel: one rule, state layout and switch values.
    groups: dict = {}
    for i, config in enumerate(configs):
        spec = config.spec
        switches = switch_values(spec, config.hyper)
        key = (spec.rule, spec.state, len(spec.hyper), switches)
        groups.setdefault(key, []).append(i)

    results: list = [None] * runs
    limit = numba.config.NUMBA_NUM_THREADS
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads or limit, limit)))
    try:
        for members in groups.values():
            _run_group(Z3, zsel, configs, members, starts, checkpoints, metrics,
                       results, started)
    finally:
        numba.set_num_threads(previous)
    return results


def _run_group(Z3, zsel, configs, members, starts, checkpoints, metrics, results,
               started) -> None:
    """Advance the runs ``members`` (one kernel) and fill in their results."""
    group = [configs[i] for i in members]
    spec = group[0].spec
    n, d = Z3.shape[1:]
    runs = len(members)
    state = EngineState.initial(starts[members], len(spec.state))
    kernel = build_kernel(spec, switch_values(spec, group[0].hyper))
    args = kernel_arguments(group, n, runs)
    gsel = np.ascontiguousarray(zsel[members])
    streams = np.zeros(runs, dtype=np.int64)
    workspace = _Workspace(n, runs, d)
    rows = [[] for _ in range(runs)]
    stopped: dict = {}

    # Advance from checkpoint to checkpoint; a run that turns non-finite keeps
    # the state of the checkpoint where run() would have stopped it.
    done = 0
    for target in checkpoints:
        if target <= done:
            continue
        call_kernel(kernel, Z3, gsel, state, int(target - done), args, streams,
                    workspace, parallel=True)
        done = int(target)
        for r in range(runs):
            if r in stopped:
                continue
            w = state.w[r]
            if not (np.isfinite(w).all() and np.isfinite(state.moments[r]).all()):
                stopped[r] = (_one(state, r), done)
                continue
            row = {"t": done}
            row.update(metrics(Z3[gsel[r]], w, done))
            rows[r].append(row)

    # One RunResult per run, reported as run() reports it.
    for r, i in enumerate(members):
        status, messages = "ok", []
        own = _one(state, r)
        if r in stopped:
            own, when = stopped[r]
            status = "nonfinite"
            messages.append(
                f"non-finite iterate or moments between steps {when} and the "
                "previous checkpoint; the run was stopped there"
            )
            logger.warning("run %d: %s", i, messages[-1])
        results[i] = finish(configs[i], own, rows[r], status, messages, started,
                            Z=Z3[gsel[r]],
                            stacklevel=4)


def _one(state: EngineState, r: int) -> EngineState:
    """Run ``r`` of ``state`` as a single-run state (a copy)."""
    return EngineState(
        state.w[r:r + 1].copy(),
        state.moments[r:r + 1].copy(),
        state.scale[r:r + 1].copy(),
        state.t[r:r + 1].copy(),
        state.stall[r:r + 1].copy(),
    )
