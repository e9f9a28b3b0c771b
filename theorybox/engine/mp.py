"""The mpmath reference backend: the same update rules at any precision.

Slow (pure Python) and exact up to its working precision, with an unbounded
exponent: it is the yardstick for the float64 engine past the underflow wall. Each
run uses a private :class:`mpmath.MPContext`, so precision is never global state.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np

from theorybox.arith.ops import bind_ops, mpmath_ops
from theorybox.engine.run import as_z, check_start
from theorybox.optimizers.config import RunConfig
from theorybox.rng import draw_indices, permutation

__all__ = ["MpRun", "run_mpmath", "to_mp"]


@dataclass
class MpRun:
    """Result of an mpmath run.

    Attributes
    ----------
    w : list of mpf
        Final iterate.
    history : dict of int to list of mpf
        Iterates at the requested steps.
    prec : int
        Working precision in bits.
    hyper_as : str
        ``"decimal"`` (hyperparameters entered as the decimals they print as) or
        ``"binary"`` (the exact binary value of the float64).
    """

    w: list
    history: dict
    prec: int
    hyper_as: str
    ctx: object

    def as_float(self, w=None) -> np.ndarray:
        return np.array([float(x) for x in (self.w if w is None else w)])


def to_mp(ctx, value, hyper_as: str = "decimal"):
    """A float as an mpf of ``ctx``: its shortest decimal, or its exact binary."""
    if hyper_as == "decimal":
        return ctx.mpf(repr(float(value)))
    return ctx.mpf(float(value))


def _batch(config: RunConfig, n: int, t: int):
    scheme = config.batching.scheme
    b = config.batching.size(n)
    nb = -(-n // b)
    epoch, j = divmod(t, nb)
    start = j * b
    if scheme == "full":
        return list(range(n))
    if scheme == "cyclic":
        return list(range(start, min(start + b, n)))
    if scheme == "reshuffle":
        return list(permutation(config.seed, 0, epoch, n)[start : start + b])
    return [min(i, n - 1) for i in draw_indices(config.seed, 0, epoch, start, b, n)]


def run_mpmath(
    Z,
    config: RunConfig,
    *,
    w0=None,
    dps: int = 60,
    record=(),
    hyper_as: str = "decimal",
    state=None,
) -> MpRun:
    """Run ``config`` in mpmath at ``dps`` decimal digits.

    ``Z`` entries and ``w0`` are taken as the exact binary values of their floats.
    ``record`` lists steps at which to keep the iterate. ``state`` (a tuple
    ``(w, moments, t)`` from a previous :class:`MpRun`) is not supported yet; runs
    start from ``w0`` with zero moments.
    """
    ctx = mpmath.MPContext()
    ctx.dps = dps
    ops = mpmath_ops(ctx)
    rule = bind_ops(config.spec.rule, ops)
    Z = as_z(Z)
    n, d = Z.shape
    z = [[ctx.mpf(float(v)) for v in row] for row in Z]
    w = [ctx.mpf(float(v)) for v in check_start(w0, d)]
    hyper = [to_mp(ctx, v, hyper_as) for v in config.hyper.values()]
    sched = config.schedule
    eta0, t0, a = (to_mp(ctx, v, hyper_as) for v in (sched.eta0, sched.t0, sched.a))
    moments = [[ctx.mpf(0)] * d for _ in config.spec.state]
    record = set(int(r) for r in record)
    history = {}
    for t in range(config.steps):

        # Step size, batch, and the per-sample weights g_i = -l'(s_i).
        lr = eta0 if a == 0 else eta0 * (t + t0) ** (-a)
        batch = _batch(config, n, t)
        g = {}
        for i in batch:
            s_i = ctx.fsum(z[i][k] * w[k] for k in range(d))
            if config.loss == "exponential":
                g[i] = ctx.exp(-s_i)
            else:
                g[i] = 1 / (1 + ctx.exp(s_i))

        # Each coordinate through the rule, with scale s = 0 (no log-scales needed).
        size = len(batch)
        for k in range(d):
            G = -ctx.fsum(g[i] * z[i][k] for i in batch) / size
            Q = ctx.fsum((g[i] * z[i][k]) ** 2 for i in batch)
            out = rule(lr, t + 1, 0, G, Q, *(mom[k] for mom in moments), *hyper)
            w[k] = w[k] + out[0]
            for mom, value in zip(moments, out[1:], strict=True):
                mom[k] = value
        if t + 1 in record:
            history[t + 1] = list(w)
    return MpRun(w=w, history=history, prec=ctx.prec, hyper_as=hyper_as, ctx=ctx)
