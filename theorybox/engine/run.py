"""Run an optimizer with the float64 engine, streaming metrics at checkpoints.

Whole trajectories are never stored: the run stops at geometrically spaced steps,
hands the iterate to a metrics function, keeps what it returns, and goes on.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from theorybox.data.dataset import as_z
from theorybox.engine.kernel import SCHEME_CODES, build_kernel, switch_values
from theorybox.engine.state import EngineState
from theorybox.errors import InvalidDataError, InvalidParameterError, PrecisionWarning
from theorybox.losses import LOSS_CODES
from theorybox.optimizers.config import RunConfig
from theorybox.records import Record

__all__ = ["geometric_checkpoints", "advance", "run", "RunResult"]

logger = logging.getLogger(__name__)


def geometric_checkpoints(steps: int, per_decade: int = 10) -> np.ndarray:
    """Distinct integer steps ``1 <= t <= steps``, about ``per_decade`` per decade.

    The last checkpoint is always ``steps`` itself.
    """
    if steps <= 0:
        return np.zeros(0, dtype=np.int64)
    count = max(2, int(np.ceil(np.log10(max(steps, 10)) * per_decade)) + 1)
    points = np.round(np.logspace(0, np.log10(steps), count)).astype(np.int64)
    return np.unique(np.append(points[(points >= 1) & (points <= steps)], steps))


def check_start(w0, d: int) -> np.ndarray:
    """``w0`` as a finite float64 vector of length ``d`` (default zeros)."""
    if w0 is None:
        return np.zeros(d)
    try:
        w0 = np.asarray(w0, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidDataError(
            f"w0 = {w0!r} is not a numeric vector of length d = {d}"
        ) from None
    if w0.shape != (d,) or not np.isfinite(w0).all():
        raise InvalidDataError(
            f"w0 must be a finite vector of length d = {d}; got shape {w0.shape}"
            + ("" if np.isfinite(w0).all() else " with NaN or inf entries")
        )
    return w0


def check_state(state: EngineState, n_state: int, d: int, optimizer: str) -> None:
    """Refuse a state whose arrays do not fit ``optimizer`` on ``d`` features.

    The kernel indexes the arrays without bounds checks, so a state made for
    another optimizer (another number of moments) must never reach it.
    """
    w = getattr(state, "w", None)
    if not isinstance(w, np.ndarray) or w.ndim != 2 or w.shape[0] < 1:
        raise InvalidDataError(
            f"the state's w has shape {getattr(w, 'shape', None)}; a state holds "
            f"w of shape (runs >= 1, d = {d}) (start from "
            f"EngineState.initial(w0, {n_state}))"
        )
    runs = w.shape[0]
    expected = {
        "w": ((runs, d), np.float64),
        "moments": ((runs, n_state, d), np.float64),
        "scale": ((runs, d), np.float64),
        "t": ((runs,), np.int64),
        "stall": ((runs, 2), np.int64),
    }
    for name, (shape, dtype) in expected.items():
        array = getattr(state, name)
        if (not isinstance(array, np.ndarray) or array.shape != shape
                or array.dtype != dtype or not array.flags.c_contiguous
                or not array.flags.writeable):
            got = (f"shape {getattr(array, 'shape', None)}, dtype "
                   f"{getattr(array, 'dtype', type(array).__name__)}")
            raise InvalidDataError(
                f"the state's {name} has {got}; {optimizer!r} on d = {d} features "
                f"needs a writable C-contiguous {np.dtype(dtype).name} array of "
                f"shape {shape} (a state from another optimizer, or built by hand? "
                f"start from EngineState.initial(w0, {n_state}))"
            )
    if (state.t < 0).any() or (state.t > 2**62).any():
        raise InvalidDataError(
            f"the state's step counters t = {state.t.tolist()[:4]} are outside "
            "0 .. 2^62; a state's t counts the steps it has taken"
        )


class _Workspace:
    """Scratch arrays for the kernel, one row per run, reused across calls.

    Rows are padded to whole cache lines (and one more), so that runs advanced on
    different threads never write to the same line.
    """

    def __init__(self, n: int, runs: int, d: int):
        width = 8 * ((n + 7) // 8) + 8
        self.n = n
        self.runs = runs
        self.perm = np.zeros((runs, width), dtype=np.int64)
        self.idx = np.zeros((runs, width), dtype=np.int64)
        self.lg = np.zeros((runs, width))
        self.eq = np.zeros((runs, width))
        self.dw = np.zeros((runs, d))


def kernel_arguments(configs, n: int, runs: int) -> dict:
    """Per-run kernel parameters for ``configs`` (one per run, or one for all).

    Returns arrays with a leading run axis: hyperparameters, schedules, seeds,
    batching schemes, batch sizes and loss codes.
    """
    configs = list(configs)
    if len(configs) == 1:
        configs = configs * runs
    hyper = np.array(
        [[float(v) for v in c.hyper.values()] or [0.0] for c in configs],
        dtype=np.float64,
    )
    sched = np.array(
        [[c.schedule.eta0, c.schedule.t0, c.schedule.a] for c in configs],
        dtype=np.float64,
    )
    return {
        "hyper": hyper,
        "sched": sched,
        "seeds": np.array([c.seed for c in configs], dtype=np.uint64),
        "schemes": np.array(
            [SCHEME_CODES[c.batching.scheme] for c in configs], dtype=np.int64
        ),
        "bsizes": np.array([c.batching.size(n) for c in configs], dtype=np.int64),
        "losses": np.array([LOSS_CODES[c.loss] for c in configs], dtype=np.int64),
    }


#: Columns whose largest |z| lies outside [2^-EXTREME, 2^EXTREME] are rescaled.
EXTREME = 256


def column_scaling(Z3: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient copies of the data with extreme columns rescaled by powers of 2.

    A column whose entries are all tiny (say ``1e-170``) would make ``z^2``, and so
    Adam's ``v``, underflow however the loss weights are scaled. Such a column is
    multiplied by an exact power of 2 that brings its largest entry into [1, 2),
    and the natural log of the factor is added to the coordinate's gradient scale
    (``zlog``). Other columns are untouched (factor 1, ``zlog = 0``), so ordinary
    data give bit-for-bit the same results as without this step.
    """
    top = np.abs(Z3).max(axis=1, keepdims=True)
    _, exponent = np.frexp(top)
    extreme = (top > 0) & ((exponent > EXTREME) | (exponent < -EXTREME))
    shift = np.where(extreme, exponent - 1, 0)
    if not extreme.any():
        return Z3, np.zeros((Z3.shape[0], Z3.shape[2]))
    Zg = np.ldexp(Z3, -shift)
    return np.ascontiguousarray(Zg), shift[:, 0, :] * np.log(2.0)


#: Entries this far below their column's largest (after column scaling) have
#: squares that underflow float64 (2^-1000 is near the bottom of its range).
_MIXED = 2.0**-500


def mixed_column_note(Z) -> str | None:
    """A note when a column mixes entries beyond float64's range for squares.

    Column scaling brings a column's largest entry to a normal size, but an entry
    2^500 below it has a square under 2^-1000: in a step that only such entries
    drive (one sample a step, or samples far ahead of the rest), ``Q`` and Adam's
    ``v`` underflow and the step is wrong. The kernel does not correct this; the
    note says so, and which backend does.
    """
    Z = np.asarray(Z, dtype=np.float64)
    Zg, _ = column_scaling(Z[None])
    small = (Zg[0] != 0.0) & (np.abs(Zg[0]) < _MIXED)
    if not small.any():
        return None
    cols = np.flatnonzero(small.any(axis=0))
    k = int(cols[0])
    column = np.abs(Z[:, k])
    return (
        f"column{'s' if cols.size > 1 else ''} {cols[:5].tolist()}"
        f"{'...' if cols.size > 5 else ''} mix entries more than 2^500 apart (column "
        f"{k}: {column[column > 0].min():.3g} next to {column.max():.3g}): squared "
        "gradients of the small entries underflow in float64, so steps that only "
        "they drive can be wrong (AdamProxy's Q, Adam's v). Check such data with "
        "theorybox.engine.mp.run_precise"
    )


def call_kernel(kernel, Z3, zsel, state, nsteps, args, streams, ws, *,
                parallel=False) -> None:
    """Advance every run of ``state`` by ``nsteps`` with prepared arguments.

    ``Z3`` holds the datasets (shape ``(D, N, d)``), ``zsel`` each run's dataset
    and ``streams`` each run's index in its seed's random stream.
    """
    Zg, zlog = column_scaling(Z3)
    Zt = np.ascontiguousarray(Z3.transpose(0, 2, 1))
    kernel(
        Z3, Zt, Zg, zlog, zsel, state.w, state.moments, state.scale, state.t,
        int(nsteps),
        args["hyper"], args["sched"], args["seeds"], streams, args["schemes"],
        args["bsizes"], args["losses"], state.stall, ws.perm, ws.idx, ws.lg, ws.eq,
        ws.dw, parallel=parallel,
    )


def advance(
    Z, config: RunConfig, state: EngineState, nsteps: int, *, workspace=None
) -> np.ndarray:
    """Advance ``state`` in place by ``nsteps`` steps of ``config``'s optimizer.

    Returns the last step's update ``dw`` for each run (shape ``(R, d)``).
    """
    Z = as_z(Z)
    spec = config.spec
    w = getattr(state, "w", None)
    if isinstance(w, np.ndarray) and w.ndim == 2 and w.shape[1] != Z.shape[1]:
        raise InvalidDataError(
            f"the state has d = {w.shape[1]} coordinates but the data have "
            f"{Z.shape[1]} features"
        )
    check_state(state, len(spec.state), Z.shape[1], config.optimizer)
    runs, d = state.w.shape
    n = Z.shape[0]
    ws = workspace
    if ws is None or ws.n != n or ws.runs != runs:
        ws = _Workspace(n, runs, d)
    args = kernel_arguments([config], n, runs)
    kernel = build_kernel(spec, switch_values(spec, config.hyper))
    zsel = np.zeros(runs, dtype=np.int64)
    streams = np.arange(runs, dtype=np.int64)
    call_kernel(kernel, Z[None], zsel, state, nsteps, args, streams, ws)
    return ws.dw


@dataclass
class RunResult:
    """A finished (or interrupted) run: final state and metrics at checkpoints.

    Attributes
    ----------
    config : RunConfig
    state : EngineState
        The final state (resume by passing it back to :func:`run`).
    steps : ndarray of int64
        The checkpoint steps.
    metrics : list of dict
        One dict per checkpoint, as returned by the metrics function.
    stall_step : int or None
        0-based index (as in :class:`~theorybox.optimizers.Schedule`) of the first
        step whose update float64 could not resolve (``None``: never). Checkpoint
        rows count steps *taken*, so that step ends at ``t = stall_step + 1``.
    stall_count : int
        Number of such steps.
    status : str
        ``"ok"``, ``"stalled"`` (progress became unresolvable), ``"nonfinite"``
        or ``"time limit"`` (stopped early by ``run(time_limit=...)``; the last
        metrics row is the step reached).
    messages : list of str
    wall_time : float
        Seconds spent in :func:`run`.
    """

    config: RunConfig
    state: EngineState
    steps: np.ndarray
    metrics: list
    stall_step: int | None
    stall_count: int
    status: str
    messages: list = field(default_factory=list)
    wall_time: float = 0.0

    @property
    def w(self) -> np.ndarray:
        """The final iterate of the first run."""
        return self.state.w[0]

    def series(self, key: str) -> np.ndarray:
        """One metric across checkpoints."""
        return np.array([row[key] for row in self.metrics])

    def record(self, name: str, data: dict | None = None) -> Record:
        """The run as a :class:`~theorybox.records.Record` (final metrics only)."""
        final = dict(self.metrics[-1]) if self.metrics else {}
        final["w"] = self.w
        return Record(
            kind="run",
            name=name,
            data=dict(data or {}),
            settings=self.config.to_dict(),
            measured={
                "final": final,
                "steps": self.steps,
                "stall_step": self.stall_step,
                "stall_count": self.stall_count,
                "wall_time": self.wall_time,
            },
            status=self.status,
            notes=list(self.messages),
        )


def run(
    Z,
    config: RunConfig,
    *,
    w0=None,
    state: EngineState | None = None,
    checkpoints=None,
    metrics: Callable[[np.ndarray, np.ndarray, int], dict] | None = None,
    progress: Callable[[int, int], None] | None = None,
    time_limit: float | None = None,
) -> RunResult:
    """Run ``config`` on data ``Z`` (an array, or anything with a ``Z`` attribute).

    Parameters
    ----------
    Z : array_like or Dataset
        Rows ``z_i = y_i x_i``.
    config : RunConfig
    w0 : array_like, optional
        Start (default 0). Ignored when ``state`` is given.
    state : EngineState, optional
        Resume from this state; ``config.steps`` counts from its step counter.
    checkpoints : array_like of int, optional
        Steps at which to evaluate ``metrics`` (default: geometric, 10 a decade).
    metrics : callable, optional
        ``metrics(Z, w, t) -> dict``; default records the iterate only.
    progress : callable, optional
        ``progress(done, total)`` after each checkpoint.
    time_limit : float, optional
        Wall-clock seconds. The run advances in slices of about half a second
        (after a first compilation of the kernel, which cannot be interrupted)
        and stops at the first slice boundary past the limit, with status
        ``"time limit"``, the metrics of the step reached as its last row and the
        state to continue from (``run(..., state=result.state)`` takes
        ``config.steps`` further steps). Results are the same bits as without a
        limit: advancing in pieces is exact.
    """
    started = time.perf_counter()
    if time_limit is not None and not is_time_limit(time_limit):
        raise InvalidParameterError(
            f"time_limit = {time_limit!r}: give a positive number of seconds, or "
            "None for no limit"
        )
    Z = as_z(Z)
    n, d = Z.shape
    spec = config.spec

    # Starting state.
    if state is None:
        state = EngineState.initial(check_start(w0, d), len(spec.state))
    else:
        check_state(state, len(spec.state), d, config.optimizer)
        if state.w.shape[0] != 1:
            raise InvalidDataError(
                f"run() advances one run; the state holds {state.w.shape[0]} (use "
                "run_ensemble for several, or pass one run's state)"
            )
        state = state.copy()
    start = int(state.t[0])
    if checkpoints is None:
        checkpoints = geometric_checkpoints(config.steps)
    checkpoints = np.asarray(checkpoints, dtype=np.int64)
    if checkpoints.size and (
        checkpoints.min() < 1
        or checkpoints.max() > config.steps
        or np.any(np.diff(checkpoints) <= 0)
    ):
        raise InvalidDataError(
            f"checkpoints must increase strictly within 1..steps = {config.steps}; "
            f"got {checkpoints.tolist()[:8]}{'...' if checkpoints.size > 8 else ''}"
        )
    if metrics is None:
        def metrics(Z, w, t):
            return {"w": w.copy()}

    # Advance from checkpoint to checkpoint, recording metrics.
    workspace = _Workspace(n, state.w.shape[0], d)
    rows = []
    status = "ok"
    messages = []
    done = 0
    recorded = 0
    deadline = None if time_limit is None else started + float(time_limit)
    chunk = 1
    for target in checkpoints:
        if target <= done:
            continue

        # Without a limit, one call to the kernel; with one, slices growing from
        # one step (which also compiles the kernel, if needed) by at most 8x to
        # about half a second, the clock read between them.
        timed_out = False
        while done < target:
            if deadline is not None and time.perf_counter() >= deadline:
                timed_out = True
                break
            step = int(target - done) if deadline is None else min(
                int(target - done), chunk)
            slice_started = time.perf_counter()
            advance(Z, config, state, step, workspace=workspace)
            done += step
            if deadline is not None:
                spent = max(time.perf_counter() - slice_started, 1e-6)
                chunk = max(1, min(8 * step, int(step * 0.5 / spent)))
        if done > recorded:
            recorded = done
            note = nonfinite_note(state, start + done)
            if note is not None:
                status = "nonfinite"
                messages.append(note)
                logger.warning(note)
                break
            row = {"t": start + done}
            row.update(metrics(Z, state.w[0], start + done))
            rows.append(row)
            if progress is not None:
                progress(done, config.steps)
        if timed_out:
            if not rows or rows[-1]["t"] != start + done:
                row = {"t": start + done}
                row.update(metrics(Z, state.w[0], start + done))
                rows.append(row)
            status = "time limit"
            messages.append(
                f"stopped at step {start + done} of {start + config.steps} after "
                f"{time.perf_counter() - started:.1f} s (time_limit = {time_limit} "
                f"s); raise the limit, or continue from result.state (run(..., "
                f"state=result.state) takes config.steps further steps, here "
                f"{config.steps - done} to the horizon)"
            )
            logger.warning(messages[-1])
            break

    return finish(config, state, rows, status, messages, started, stacklevel=3,
                  Z=Z)


def is_time_limit(value) -> bool:
    """Whether ``value`` is a usable wall-clock limit: a positive finite number."""
    return (not isinstance(value, bool | np.bool_)
            and isinstance(value, numbers.Real)
            and math.isfinite(value) and value > 0)


def nonfinite_note(state: EngineState, step: int) -> str | None:
    """The message for a state that is no longer finite at ``step``, else None."""
    if np.isfinite(state.w).all() and np.isfinite(state.moments).all():
        return None
    return (f"non-finite iterate or moments between steps {step} and the previous "
            "checkpoint; the run was stopped there")


def finish(config, state, rows, status, messages, started, *, run_index=0,
           stacklevel=2, Z=None) -> RunResult:
    """The :class:`RunResult` of run ``run_index`` of ``state``, stalls reported.

    With the data ``Z``, a column mixing entries beyond float64's range for
    squares is reported too (:func:`mixed_column_note`).
    """
    if Z is not None:
        note = mixed_column_note(Z)
        if note is not None and note not in messages:
            messages.append(note)
            warnings.warn(note, PrecisionWarning, stacklevel=stacklevel)

    # Report steps whose progress float64 could not resolve.
    stall_count = int(state.stall[run_index, 1])
    stall_step = int(state.stall[run_index, 0]) if stall_count else None
    if stall_count and status == "ok":
        status = "stalled"
        messages.append(
            f"from step {stall_step} on, {stall_count} step(s) made updates too small "
            "to change any coordinate of w in float64: progress is no longer "
            "resolvable (use the mpmath backend or larger steps)"
        )
        warnings.warn(messages[-1], PrecisionWarning, stacklevel=stacklevel)
    return RunResult(
        config=config,
        state=state,
        steps=np.array([row["t"] for row in rows], dtype=np.int64),
        metrics=rows,
        stall_step=stall_step,
        stall_count=stall_count,
        status=status,
        messages=messages,
        wall_time=time.perf_counter() - started,
    )
