"""Time one run on every backend, side by side in one process.

Per-sample Adam (cyclic, one sample a step) on N = 10, d = 5 separable data for
2000 steps, with the float64 engine, mpmath at 53 bits, mpmath at 60 digits and
arb intervals at 200 bits. Prints seconds and the ratio to the engine.

Usage: ``python benchmarks/bench_backends.py [--steps 2000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from theorybox.engine import run
from theorybox.engine.backends import run_precise
from theorybox.optimizers.config import RunConfig, Schedule

logger = logging.getLogger("bench_backends")


def _data(n: int = 10, d: int = 5, seed: int = 0):
    """Separable rows ``z_i`` with positive margins at ``w = (1, ..., 1)``."""
    rng = np.random.default_rng(seed)
    Z = np.abs(rng.normal(size=(n, d))) + 0.1
    Z[:, 1] *= np.where(rng.random(n) < 0.3, -0.5, 1.0)
    return Z


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    Z = _data()
    config = RunConfig("adam-ps", args.steps, schedule=Schedule(0.1, 1.0, 0.5))

    # Warm the compiled kernel so that the engine's time excludes compilation.
    run(Z, RunConfig("adam-ps", 10), checkpoints=[10])

    # Time each backend on the same run.
    cases = {
        "float64 engine": lambda: run(Z, config, checkpoints=[args.steps]),
        "mpmath 53 bits": lambda: run_precise(Z, config, prec=53),
        "mpmath 60 digits": lambda: run_precise(Z, config, dps=60),
        "interval 200 bits": lambda: run_precise(
            Z, config, backend="interval", prec=200
        ),
    }
    seconds = {name: _best(fn, args.repeat) for name, fn in cases.items()}
    base = seconds["float64 engine"]
    logger.info("per-sample Adam, N=10, d=5, %d steps (best of %d)", args.steps,
                args.repeat)
    for name, value in seconds.items():
        logger.info("%-18s %10.4f s   x%8.0f", name, value, value / base)
    return seconds


if __name__ == "__main__":
    main()
