"""Long runs in bounded memory, saved periodically and resumable bit for bit.

:func:`run_long` keeps metrics only at geometrically spaced checkpoints (memory
grows like ``log T``), and every ``save_every_steps`` steps or ``save_every_s``
seconds writes the engine state, the metric rows and the configuration to one
``.npz`` file (the configuration and bookkeeping as a JSON string inside it),
atomically: written to a temporary file, then renamed over the old one. A run
that is killed leaves the last complete save; :func:`resume` continues it to the
same final state and metric rows, bit for bit, as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from theorybox.engine.run import (
    RunResult,
    _Workspace,
    advance,
    as_z,
    check_start,
    finish,
    geometric_checkpoints,
    nonfinite_note,
)
from theorybox.engine.state import EngineState
from theorybox.errors import InvalidDataError, InvalidParameterError
from theorybox.optimizers.config import RunConfig

__all__ = ["run_long", "resume", "load_checkpoint"]

logger = logging.getLogger(__name__)

_FORMAT = 1
#: Largest number of steps between two looks at the clock.
_CHUNK = 1_000_000


def _fingerprint(Z: np.ndarray) -> str:
    return hashlib.sha256(Z.tobytes() + str(Z.shape).encode()).hexdigest()


def _default_metrics(Z, w, t):
    return {"w": w.copy()}


def _save(path: Path, state: EngineState, rows: list, meta: dict) -> None:
    """Write state, metric rows and ``meta`` to ``path`` atomically."""
    arrays = {f"state_{k}": v for k, v in state.to_arrays().items()}
    keys = sorted({key for row in rows for key in row})
    for key in keys:
        try:
            arrays[f"metric_{key}"] = np.stack([np.asarray(row[key]) for row in rows])
        except (KeyError, ValueError) as error:
            raise InvalidParameterError(
                f"metric {key!r} is missing or changes shape between checkpoints "
                f"({error}); a saved run needs the same numeric keys in every row"
            ) from None
        if arrays[f"metric_{key}"].dtype == object:
            raise InvalidParameterError(
                f"metric {key!r} is not numeric; return numbers or arrays"
            )
    meta = dict(meta, metric_keys=keys, rows=len(rows))
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_checkpoint(path) -> tuple[EngineState, list, dict]:
    """The saved state, metric rows and bookkeeping of a :func:`run_long` file."""
    with np.load(Path(path), allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        state = EngineState.from_arrays(
            {k: data[f"state_{k}"] for k in ("w", "moments", "scale", "t", "stall")}
        )
        columns = {key: data[f"metric_{key}"] for key in meta["metric_keys"]}
    rows = []
    for i in range(meta["rows"]):
        row = {}
        for key, column in columns.items():
            value = column[i]
            row[key] = value.item() if value.ndim == 0 else value.copy()
        rows.append(row)
    return state, rows, meta


def run_long(
    Z,
    config: RunConfig,
    *,
    checkpoint_path,
    save_every_s: float | None = None,
    save_every_steps: int | None = None,
    w0=None,
    metrics: Callable[[np.ndarray, np.ndarray, int], dict] | None = None,
    per_decade: int = 10,
    until: int | None = None,
    overwrite: bool = False,
) -> RunResult:
    """Run ``config`` in bounded memory, saving to ``checkpoint_path`` as it goes.

    Parameters
    ----------
    Z : array_like or Dataset
    config : RunConfig
        ``config.steps`` is the horizon.
    checkpoint_path : path
        The ``.npz`` file written (atomically) at every save and at the end.
    save_every_s, save_every_steps : float or int, optional
        Save at least this often (default: every 60 s).
    w0 : array_like, optional
    metrics : callable, optional
        ``metrics(Z, w, t) -> dict`` of numbers or arrays (default: ``w``),
        evaluated only at the geometric checkpoints (``per_decade`` a decade).
    until : int, optional
        Stop (saved, status ``"interrupted"``) after this many steps; used to
        split a run into sessions and by the tests.
    overwrite : bool
        Start afresh even if ``checkpoint_path`` holds a run. Without it an
        existing checkpoint is an error (continue it with :func:`resume`), so that
        no saved work is lost by accident.
    """
    Z = as_z(Z)
    path = Path(checkpoint_path)
    if path.exists() and not overwrite:
        raise InvalidParameterError(
            f"checkpoint {str(path)!r} already holds a run; continue it with "
            "resume(path, Z), or pass overwrite=True (or another path) to start a "
            "new one"
        )
    d = Z.shape[1]
    state = EngineState.initial(check_start(w0, d), len(config.spec.state))
    meta = {
        "format": _FORMAT,
        "config": config.to_dict(),
        "per_decade": int(per_decade),
        "data": _fingerprint(Z),
        "status": "ok",
        "messages": [],
    }
    return _continue(Z, config, state, [], meta, Path(checkpoint_path), save_every_s,
                     save_every_steps, metrics, until)


def resume(
    checkpoint_path,
    Z,
    *,
    save_every_s: float | None = None,
    save_every_steps: int | None = None,
    metrics: Callable[[np.ndarray, np.ndarray, int], dict] | None = None,
    until: int | None = None,
) -> RunResult:
    """Continue a :func:`run_long` run from its file (same data, same metrics)."""
    Z = as_z(Z)
    state, rows, meta = load_checkpoint(checkpoint_path)
    if meta.get("format") != _FORMAT:
        raise InvalidParameterError(
            f"{checkpoint_path} has format {meta.get('format')!r}; this version "
            f"reads format {_FORMAT}"
        )
    if meta["data"] != _fingerprint(Z):
        raise InvalidDataError(
            f"the data differ from those {checkpoint_path} was run on; resume with "
            "the same Z"
        )
    config = RunConfig.from_dict(meta["config"])
    return _continue(Z, config, state, rows, meta, Path(checkpoint_path),
                     save_every_s, save_every_steps, metrics, until)


def _continue(Z, config, state, rows, meta, path, save_every_s, save_every_steps,
              metrics, until) -> RunResult:
    """Advance from ``state`` to the horizon, checkpointing and saving."""
    started = time.perf_counter()
    metrics = metrics or _default_metrics
    if save_every_s is None and save_every_steps is None:
        save_every_s = 60.0
    checkpoints = geometric_checkpoints(config.steps, meta["per_decade"])
    stop = config.steps if until is None else min(int(until), config.steps)
    workspace = _Workspace(Z.shape[0], 1, Z.shape[1])
    status = meta["status"]
    messages = list(meta["messages"])
    done = int(state.t[0])
    saved_at = done
    saved_clock = time.monotonic()
    rate = None

    # Advance in chunks that end at checkpoints, saves and the stop.
    while done < stop and status == "ok":
        target = int(checkpoints[np.searchsorted(checkpoints, done, side="right")])
        target = min(target, stop)
        if save_every_steps is not None:
            target = min(target, saved_at + int(save_every_steps))
        if save_every_s is not None and rate is not None:
            target = min(target, done + max(1, int(rate * save_every_s)))
        target = min(target, done + _CHUNK)
        clock = time.perf_counter()
        advance(Z, config, state, target - done, workspace=workspace)
        elapsed = time.perf_counter() - clock
        if elapsed > 0:
            rate = (target - done) / elapsed
        done = target

        # A checkpoint: check finiteness and record the metrics.
        if done in checkpoints or done == config.steps:
            note = nonfinite_note(state, done)
            if note is not None:
                status = "nonfinite"
                messages.append(note)
                logger.warning(note)
                break
            row = {"t": done}
            row.update(metrics(Z, state.w[0], done))
            rows.append(row)

        # A save, when one is due.
        due_steps = save_every_steps is not None and done - saved_at >= save_every_steps
        due_time = (save_every_s is not None
                    and time.monotonic() - saved_clock >= save_every_s)
        if due_steps or due_time:
            _save(path, state, rows, dict(meta, status=status, messages=messages))
            saved_at = done
            saved_clock = time.monotonic()
            logger.info("saved step %d of %d to %s", done, config.steps, path)

    _save(path, state, rows, dict(meta, status=status, messages=messages))
    if done < config.steps and status == "ok":
        result = finish(config, state, rows, "interrupted", messages, started,
                        stacklevel=4, Z=Z)
        return result
    return finish(config, state, rows, status, messages, started, stacklevel=4,
                  Z=Z)
