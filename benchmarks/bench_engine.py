"""The engine's speed side by side with other ways to run the same recurrence.

Jobs (float64, eps = 0, no bias correction, eta_t = 0.1 (t + 1)^-0.5, logistic
loss, ``gaussian(n=N, d=d, seed=0)``): per-sample Adam (cyclic), Signum and
full-batch Adam. For each, the engine against

* the plain float64 recurrence in one numba function (plain sigmoid, no log
  domain, no stall checks): the practical limit;
* a plain numpy loop, one vectorised step per Python iteration;
* a PyTorch loop (skipped with a message when torch is absent);
* a JAX ``lax.scan`` loop in float64 (skipped with a message when jax is absent).

Then: ensemble throughput (runs per second, ``run_ensemble`` against the same
runs one by one), the cost against steps, N and d (fitted log-log slopes), and
with ``--memory`` the resident memory of a 10^6- and a 10^8-step ``run_long``.
Every figure is a ratio measured in one process, which is what survives a
shared, noisy machine.

Run: ``python benchmarks/bench_engine.py [--steps 1000000] [--memory]``. The
numpy and PyTorch loops run 1/50 of the steps (at least 1,000) and are reported
per step.
"""

from __future__ import annotations

import argparse
import logging
import math
import platform
import resource
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from theorybox.data.generators import gaussian
from theorybox.engine import EngineState, advance, config_grid, run_ensemble
from theorybox.engine.longrun import run_long
from theorybox.optimizers import RunConfig, Schedule

logger = logging.getLogger("bench_engine")

SCHEDULE = Schedule(0.1, 1.0, 0.5)
B1, B2, BETA = 0.9, 0.999, 0.99

# The plain recurrences: what a careful person would write without the engine.


@numba.njit(cache=False)
def plain_adam(Z, steps, per_sample, eta0, t0, a, b1, b2):
    """Adam in plain float64 (``g = 1 / (1 + e^s)``), one sample or all a step."""
    n, d = Z.shape
    w = np.zeros(d)
    m = np.zeros(d)
    v = np.zeros(d)
    G = np.zeros(d)
    for t in range(steps):
        lr = eta0 * (t + t0) ** (-a)
        G[:] = 0.0
        lo = t % n if per_sample else 0
        hi = lo + 1 if per_sample else n
        for i in range(lo, hi):
            s = 0.0
            for k in range(d):
                s += Z[i, k] * w[k]
            g = 1.0 / (1.0 + math.exp(s))
            for k in range(d):
                G[k] -= g * Z[i, k]
        for k in range(d):
            gk = G[k] / (hi - lo)
            m[k] = b1 * m[k] + (1 - b1) * gk
            v[k] = b2 * v[k] + (1 - b2) * gk * gk
            if v[k] > 0.0:
                w[k] -= lr * m[k] / math.sqrt(v[k])
    return w


@numba.njit(cache=False)
def plain_signum(Z, steps, eta0, t0, a, beta):
    """Full-batch Signum in plain float64."""
    n, d = Z.shape
    w = np.zeros(d)
    m = np.zeros(d)
    G = np.zeros(d)
    for t in range(steps):
        lr = eta0 * (t + t0) ** (-a)
        G[:] = 0.0
        for i in range(n):
            s = 0.0
            for k in range(d):
                s += Z[i, k] * w[k]
            g = 1.0 / (1.0 + math.exp(s))
            for k in range(d):
                G[k] -= g * Z[i, k]
        for k in range(d):
            m[k] = beta * m[k] + (1 - beta) * G[k] / n
            w[k] -= lr * np.sign(m[k])
    return w


def numpy_loop(Z, steps, job):
    """One vectorised numpy step per Python iteration."""
    n, d = Z.shape
    w, m, v = np.zeros(d), np.zeros(d), np.zeros(d)
    for t in range(steps):
        lr = SCHEDULE.eta0 * (t + SCHEDULE.t0) ** (-SCHEDULE.a)
        rows = Z[t % n:t % n + 1] if job == "adam-ps" else Z
        g = 1.0 / (1.0 + np.exp(rows @ w))
        G = -(g @ rows) / len(rows)
        if job == "signum":
            m = BETA * m + (1 - BETA) * G
            w = w - lr * np.sign(m)
        else:
            m = B1 * m + (1 - B1) * G
            v = B2 * v + (1 - B2) * G * G
            with np.errstate(invalid="ignore", divide="ignore"):
                w = w - lr * np.where(v > 0, m / np.sqrt(v), 0.0)
    return w


def torch_loop(Z, steps, job):
    """A PyTorch loop with autograd; Adam through ``torch.optim.Adam``."""
    import torch

    torch.set_num_threads(1)
    z = torch.tensor(Z, dtype=torch.float64)
    n = Z.shape[0]
    w = torch.zeros(Z.shape[1], dtype=torch.float64, requires_grad=True)
    m = torch.zeros_like(w)
    opt = None
    if job != "signum":
        # torch's Adam always bias-corrects: the same cost, other numbers.
        opt = torch.optim.Adam([w], lr=SCHEDULE.eta0, betas=(B1, B2), eps=0.0)
    for t in range(steps):
        lr = SCHEDULE.eta0 * (t + SCHEDULE.t0) ** (-SCHEDULE.a)
        rows = z[t % n:t % n + 1] if job == "adam-ps" else z
        loss = torch.nn.functional.softplus(-(rows @ w)).mean()
        if opt is not None:
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:
            w.grad = None
            loss.backward()
            with torch.no_grad():
                m.mul_(BETA).add_(w.grad, alpha=1 - BETA)
                w.sub_(lr * torch.sign(m))
    return w.detach().numpy()


def jax_loop(Z, steps, job):
    """A ``jax.lax.scan`` over steps in float64 (compiled once, then timed)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    z = jnp.asarray(Z)
    n = Z.shape[0]

    def step(carry, t):
        w, m, v = carry
        lr = SCHEDULE.eta0 * (t + SCHEDULE.t0) ** (-SCHEDULE.a)
        rows = jax.lax.dynamic_slice_in_dim(z, t % n, 1) if job == "adam-ps" else z
        g = 1.0 / (1.0 + jnp.exp(rows @ w))
        G = -(g @ rows) / rows.shape[0]
        if job == "signum":
            m = BETA * m + (1 - BETA) * G
            return (w - lr * jnp.sign(m), m, v), None
        m = B1 * m + (1 - B1) * G
        v = B2 * v + (1 - B2) * G * G
        ratio = jnp.where(v > 0, m / jnp.sqrt(jnp.where(v > 0, v, 1.0)), 0.0)
        return (w - lr * ratio, m, v), None

    zeros = jnp.zeros(Z.shape[1])
    go = jax.jit(lambda: jax.lax.scan(step, (zeros, zeros, zeros),
                                      jnp.arange(steps))[0][0])
    go().block_until_ready()
    start = time.perf_counter()
    go().block_until_ready()
    return time.perf_counter() - start


# Timing helpers.


def _best(fn, repeat=3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _data(n=10, d=50):
    return np.ascontiguousarray(gaussian(n=n, d=d, seed=0).Z)


def _config(job, steps=0, seed=0):
    if job == "signum":
        return RunConfig("signum", steps, hyper={"beta": BETA}, schedule=SCHEDULE,
                         seed=seed)
    return RunConfig(job, steps, hyper={"b1": B1, "b2": B2}, schedule=SCHEDULE,
                     seed=seed)


def engine_seconds(Z, job, steps, repeat=3) -> float:
    config = _config(job)
    n_state = len(config.spec.state)
    advance(Z, config, EngineState.initial(np.zeros(Z.shape[1]), n_state), 10)

    def go():
        advance(Z, config, EngineState.initial(np.zeros(Z.shape[1]), n_state), steps)

    return _best(go, repeat)


def plain_seconds(Z, job, steps, repeat=3) -> float:
    if job == "signum":
        plain_signum(Z, 10, 0.1, 1.0, 0.5, BETA)
        return _best(lambda: plain_signum(Z, steps, 0.1, 1.0, 0.5, BETA), repeat)
    per_sample = job == "adam-ps"
    plain_adam(Z, 10, per_sample, 0.1, 1.0, 0.5, B1, B2)
    return _best(
        lambda: plain_adam(Z, steps, per_sample, 0.1, 1.0, 0.5, B1, B2), repeat
    )


def compare_jobs(steps: int) -> dict:
    """Per-step cost of each job and ratio to the engine, all in one process."""
    Z = _data()
    table = {}
    few = max(1000, steps // 50)
    for job in ("adam-ps", "signum", "adam"):
        engine = engine_seconds(Z, job, steps) / steps
        row = {"engine": engine, "plain numba": plain_seconds(Z, job, steps) / steps}
        row["numpy loop"] = _best(lambda j=job, f=few: numpy_loop(Z, f, j), 1) / few
        try:
            import torch  # noqa: F401

            seconds = _best(lambda j=job, f=few: torch_loop(Z, f, j), 1)
            row["pytorch loop"] = seconds / few
        except ImportError:
            logger.info("PyTorch is not installed: its column is skipped")
        try:
            import jax  # noqa: F401

            row["jax scan"] = jax_loop(Z, steps, job) / steps
        except ImportError:
            logger.info("JAX is not installed: its column is skipped")
        table[job] = row
        logger.info("%-8s %s", job, "  ".join(
            f"{name} {1e6 * value:.3f} us/step ({value / engine:.2f}x engine)"
            for name, value in row.items()))
    return table


def ensemble_throughput(steps: int, runs: int = 8) -> dict:
    """Steps per second of ``runs`` seeds together against one at a time."""
    Z = _data()
    configs = config_grid(_config("adam-ps", steps), seed=list(range(runs)))
    run_ensemble(Z, config_grid(_config("adam-ps", 10), seed=[0, 1]),
                 checkpoints=[10])
    together = _best(lambda: run_ensemble(Z, configs, checkpoints=[steps]), 2)
    alone = runs * engine_seconds(Z, "adam-ps", steps, repeat=2)
    ratio = alone / together
    logger.info("ensemble of %d per-sample Adam runs on %d threads: %.2fx the "
                "throughput of single runs (%.3f us/step/run vs %.3f)", runs,
                numba.get_num_threads(), ratio, 1e6 * together / runs / steps,
                1e6 * alone / runs / steps)
    return {"runs": runs, "threads": numba.get_num_threads(), "ratio": ratio}


def scaling(steps: int) -> dict:
    """Log-log slopes of the engine's cost in steps, N and d (per-sample Adam)."""
    slopes = {}
    Z = _data()
    counts = [steps // 8, steps // 4, steps // 2, steps]
    cost = [engine_seconds(Z, "adam-ps", s, 2) for s in counts]
    slopes["steps"] = float(np.polyfit(np.log(counts), np.log(cost), 1)[0])
    ns = [10, 40, 160]
    cost = [engine_seconds(_data(n=n), "adam", steps // 20, 2) for n in ns]
    slopes["N (full batch)"] = float(np.polyfit(np.log(ns), np.log(cost), 1)[0])
    ds = [10, 50, 250]
    cost = [engine_seconds(_data(d=d), "adam-ps", steps // 4, 2) for d in ds]
    slopes["d"] = float(np.polyfit(np.log(ds), np.log(cost), 1)[0])
    logger.info("cost ~ x^slope: %s", ", ".join(f"{k} {v:.2f}" for k, v in
                                                 slopes.items()))
    return slopes


def memory(long_steps: int = 10**8) -> dict:
    """Peak resident memory after a 10^6- and a ``long_steps``-step run_long."""
    Z = _data()
    usage = {}
    with tempfile.TemporaryDirectory() as tmp:
        for steps in (10**6, long_steps):
            start = time.perf_counter()
            path = Path(tmp) / f"run-{steps}.npz"
            run_long(Z, _config("adam-ps", steps), checkpoint_path=path,
                     save_every_s=10.0)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            usage[steps] = peak
            logger.info("run_long %d steps: %.1f s, peak RSS %.1f MB", steps,
                        time.perf_counter() - start, peak)
    logger.info("growth from 10^6 to %d steps: %.2f MB", long_steps,
                usage[long_steps] - usage[10**6])
    return usage


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--memory", action="store_true",
                        help="also run 10^6 and 10^8 steps for resident memory")
    parser.add_argument("--memory-only", action="store_true",
                        help="only the memory measurement (no peers imported)")
    args = parser.parse_args(argv)
    if args.memory_only:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        return {"memory": memory()}
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger.info("%s, %s, %d threads, %s", platform.processor() or platform.machine(),
                platform.python_version(), numba.get_num_threads(),
                time.strftime("%Y-%m-%d"))
    out = {
        "jobs": compare_jobs(args.steps),
        "ensemble": ensemble_throughput(args.steps // 2),
        "slopes": scaling(args.steps),
    }
    if args.memory:
        out["memory"] = memory()
    return out


if __name__ == "__main__":
    main()
