"""Precision figures for per-sample Adam: float64 engine and a plain float64
recurrence against a 60-digit mpmath run.

Job: per-sample (cyclic) Adam, b1 = 0.9, b2 = 0.999, eps = 0, no bias correction,
on ``gaussian(n=10, d=5, seed=0)`` scaled to max|z| = 1, with
eta_t = 0.1 (t+1)^-0.5, for ``STEPS`` steps. Run with
``python benchmarks/precision_figures.py``.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from theorybox.data import gaussian
from theorybox.engine import run
from theorybox.engine.mp import run_precise
from theorybox.engine.run import geometric_checkpoints
from theorybox.optimizers import RunConfig, Schedule

logger = logging.getLogger("precision_figures")

STEPS = 100_000
B1, B2 = 0.9, 0.999
THRESHOLD = 1e-6


def plain_recurrence(Z, steps: int, record) -> tuple[dict, int | None]:
    """Per-sample Adam in plain float64, sigmoid as 1/(1+exp(s)).

    Returns the iterates at ``record`` and the first step (1-based) at which a
    nonzero update left every coordinate of ``w`` unchanged (``None``: never).
    """
    n, d = Z.shape
    w, m, v = np.zeros(d), np.zeros(d), np.zeros(d)
    record = set(int(r) for r in record)
    kept, stall = {}, None
    for t in range(steps):
        # One sample, cyclic order, and its gradient -g z.
        z = Z[t % n]
        g = 1.0 / (1.0 + np.exp(z @ w))
        G = -g * z

        # Moments and the step.
        m = B1 * m + (1 - B1) * G
        v = B2 * v + (1 - B2) * G * G
        root = np.sqrt(v)
        ratio = np.divide(m, root, out=np.zeros(d), where=root > 0)
        new = w - 0.1 * (t + 1) ** -0.5 * ratio
        if stall is None and np.any(ratio != 0) and np.array_equal(new, w):
            stall = t + 1
        w = new
        if t + 1 in record:
            kept[t + 1] = w.copy()
    return kept, stall


def rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    Z = gaussian(n=10, d=5, seed=0).Z
    Z = Z / np.abs(Z).max()
    config = RunConfig(
        "adam-ps", STEPS, hyper={"b1": B1, "b2": B2}, schedule=Schedule(0.1, 1.0, 0.5)
    )
    marks = [int(s) for s in geometric_checkpoints(STEPS, per_decade=20)]

    # The float64 engine.
    started = time.perf_counter()
    engine = run(Z, config, checkpoints=marks)
    t_engine = time.perf_counter() - started
    w64 = {int(row["t"]): row["w"] for row in engine.metrics}

    # The 60-digit reference.
    started = time.perf_counter()
    precise = run_precise(Z, config, backend="mpmath", dps=60, record=marks)
    t_mp = time.perf_counter() - started
    wmp = {int(s): precise.as_float(w) for s, w in precise.history.items()}

    # The plain recurrence.
    started = time.perf_counter()
    plain, stall = plain_recurrence(Z, STEPS, marks)
    t_plain = time.perf_counter() - started

    # Disagreements over the recorded steps.
    eng_err = {s: rel(w64[s], wmp[s]) for s in marks if s in w64 and s in wmp}
    plain_err = {s: rel(plain[s], wmp[s]) for s in marks if s in wmp}
    worst = max(eng_err, key=eng_err.get)
    logger.info("steps %d, recorded %d geometric steps", STEPS, len(marks))
    logger.info(
        "times: engine %.2f s, mpmath-60 %.2f s, plain %.2f s",
        t_engine,
        t_mp,
        t_plain,
    )
    logger.info("engine status %s, stall_step %s", engine.status, engine.stall_step)
    logger.info(
        "engine vs mpmath-60: largest relative disagreement %.3e at step %d",
        eng_err[worst],
        worst,
    )
    logger.info(
        "plain vs mpmath-60: largest relative disagreement %.3e (final %.3e)",
        max(plain_err.values()),
        plain_err[STEPS],
    )
    logger.info("plain recurrence: first full stall at step %s", stall)
    bad = [s for s in marks if plain_err.get(s, 0.0) > THRESHOLD]
    if bad:
        s = bad[0]
        margin = float(np.min(Z @ wmp[s]))
        logger.info(
            "plain first exceeds %.0e relative at recorded step %d (err %.3e); "
            "margin min z.w = %.4f, normalised %.4f",
            THRESHOLD,
            s,
            plain_err[s],
            margin,
            margin / np.linalg.norm(wmp[s]),
        )
    else:
        final = wmp[STEPS]
        margin = float(np.min(Z @ final))
        logger.info(
            "plain never exceeds %.0e relative at the recorded steps; final margin "
            "min z.w = %.4f, normalised %.4f",
            THRESHOLD,
            margin,
            margin / np.linalg.norm(final),
        )


if __name__ == "__main__":
    main()
