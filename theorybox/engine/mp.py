"""High-precision backends: the same update rules on mpmath numbers or on balls.

Slow (pure Python) and exact up to their working precision, with an unbounded
exponent: they are the yardstick for the float64 engine past the underflow wall.
:func:`run_precise` runs one loop on either backend:

``"mpmath"``
    a private :class:`mpmath.MPContext` at ``dps`` digits or ``prec`` bits, so
    precision is never global state (thread-safe, nothing to restore on error).
``"interval"``
    balls of python-flint (:mod:`theorybox.arith.interval`), or mpmath's interval
    context when python-flint is missing; every iterate is an enclosure of the
    exact trajectory, with its radius reported against steps.
"""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from fractions import Fraction

import mpmath
import numpy as np
from mpmath import libmp

from theorybox.arith.interval import (
    EnclosureTooWideError,
    UndeterminedSignError,
    interval_context,
    interval_ops,
)
from theorybox.arith.ops import bind_ops, mpmath_ops
from theorybox.engine.run import as_z, check_start
from theorybox.errors import DivergedError, InvalidParameterError
from theorybox.optimizers.config import RunConfig
from theorybox.rng import draw_indices, permutation

__all__ = [
    "BACKENDS",
    "EnclosureTooWideError",
    "MpRun",
    "PreciseRun",
    "UndeterminedSignError",
    "run_mpmath",
    "run_precise",
    "to_mp",
]

logger = logging.getLogger(__name__)

BACKENDS = ("mpmath", "interval")

#: Default working precision of the interval backend, in bits.
DEFAULT_INTERVAL_PREC = 200

_SCHEDULE_KEYS = ("eta0", "t0", "a")


@dataclass
class PreciseRun:
    """Result of a high-precision run, the same for both backends.

    Attributes
    ----------
    w : list
        Final iterate, as the backend's numbers (mpf or balls).
    history : dict of int to list
        Iterates at the requested steps that were reached.
    prec : int
        Working precision actually used, in bits.
    hyper_as : str
        ``"decimal"`` (floats entered as the shortest decimals they print as, at
        working precision) or ``"binary"`` (the exact binary value of the float64).
    ctx : object
        The numbers: an :class:`mpmath.MPContext`, or an interval context of
        :mod:`theorybox.arith.interval`.
    backend : str
        ``"mpmath"`` or ``"interval"``.
    implementation : str
        ``"mpmath"``, ``"arb"`` (python-flint) or ``"mpmath-iv"``.
    dps : int
        Working precision in decimal digits.
    steps : list of int
        The recorded steps reached, ascending.
    radius : list of float
        Interval backend: the largest relative radius ``rad / |mid|`` over the
        coordinates of ``w`` at each of ``steps``; empty for mpmath.
    steps_done : int
        Steps taken (``config.steps`` unless the run stopped early).
    complete : bool
        Whether all ``config.steps`` steps were taken.
    exact_hyper : dict of str to str
        Values entered from exact strings or fractions (see :func:`run_precise`).
    """

    w: list
    history: dict
    prec: int
    hyper_as: str
    ctx: object
    backend: str = "mpmath"
    implementation: str = "mpmath"
    dps: int = 0
    steps: list = field(default_factory=list)
    radius: list = field(default_factory=list)
    steps_done: int = 0
    complete: bool = True
    exact_hyper: dict = field(default_factory=dict)

    def as_float(self, w=None) -> np.ndarray:
        """``w`` (default the final iterate) as float64 (midpoints of balls)."""
        from theorybox.engine.backends import to_float_array

        return to_float_array(self.w if w is None else w)


#: The former name of :class:`PreciseRun` (``run_mpmath`` returns one).
MpRun = PreciseRun


def to_mp(ctx, value, hyper_as: str = "decimal"):
    """A float as a number of ``ctx``: its shortest decimal, or its exact binary.

    Integers stay Python integers (exact in every backend; flags such as
    ``eps_mode`` must stay integers for the rules' comparisons).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if hyper_as == "decimal":
        return ctx.mpf(repr(float(value)))
    if hyper_as == "binary":
        return ctx.mpf(float(value))
    raise InvalidParameterError(
        f"hyper_as = {hyper_as!r}; use 'decimal' or 'binary'"
    )


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



def _numbers(backend: str, prec, dps, implementation: str):
    """The backend's numbers and ops namespace at the requested precision."""
    if prec is not None and dps is not None:
        raise InvalidParameterError(
            f"give prec (bits) or dps (digits), not both: prec = {prec!r}, dps = "
            f"{dps!r}"
        )
    for name, value in (("prec", prec), ("dps", dps)):
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise InvalidParameterError(
                f"{name} = {value!r} must be a positive integer"
            )
    if backend == "mpmath":
        ctx = mpmath.MPContext()
        if prec is not None:
            ctx.prec = prec
        else:
            ctx.dps = 60 if dps is None else dps
        return ctx, mpmath_ops(ctx), "mpmath"
    if backend == "interval":
        if prec is None:
            prec = DEFAULT_INTERVAL_PREC if dps is None else libmp.dps_to_prec(dps)
        ctx = interval_context(prec, implementation)
        return ctx, interval_ops(ctx), ctx.name
    raise InvalidParameterError(
        f"backend {backend!r} is not one of {BACKENDS}"
    )


def _exact_fraction(key: str, text) -> Fraction:
    """An ``exact_hyper`` entry as a Fraction, or a clear error."""
    if isinstance(text, Fraction):
        return text
    if isinstance(text, str):
        try:
            return Fraction(text)
        except (ValueError, ZeroDivisionError):
            pass
    raise InvalidParameterError(
        f"exact_hyper[{key!r}] = {text!r} is not a decimal or fraction string or a "
        "fractions.Fraction (for example '0.999', '999/1000' or Fraction(9, 10))"
    )


def _exact_value(ctx, text):
    """An exact string or fraction as a number of ``ctx`` at working precision.

    Decimal strings go straight to the backend's parser (one rounding); fractions
    are the quotient of two exact integers (one rounding).
    """
    if isinstance(text, str) and "/" not in text:
        return ctx.mpf(text)
    value = Fraction(text)
    return ctx.mpf(value.numerator) / value.denominator


def _inputs(ctx, config: RunConfig, hyper_as: str, exact_hyper):
    """Hyperparameters and schedule as numbers of ``ctx`` (exact overrides first)."""
    exact_hyper = dict(exact_hyper or {})
    allowed = set(config.hyper) | set(_SCHEDULE_KEYS)
    unknown = sorted(set(exact_hyper) - allowed)
    if unknown:
        raise InvalidParameterError(
            f"exact_hyper has no entry {unknown[0]!r} for optimizer "
            f"{config.optimizer!r}; allowed keys are {sorted(allowed)}"
        )

    # Validate the overrides as floats through the optimizer's own checks.
    floats = {k: float(_exact_fraction(k, v)) for k, v in exact_hyper.items()}
    for key in exact_hyper:
        if key in config.hyper and isinstance(config.hyper[key], int):
            raise InvalidParameterError(
                f"exact_hyper[{key!r}]: {key} is an integer flag; set it in "
                "config.hyper instead"
            )
    config.spec.resolve_hyper(
        {k: v for k, v in {**config.hyper, **floats}.items() if k in config.hyper}
    )
    sched = config.schedule
    values = {k: getattr(sched, k) for k in _SCHEDULE_KEYS}
    values.update({k: v for k, v in floats.items() if k in _SCHEDULE_KEYS})
    type(sched)(**values)

    # Convert: exact strings at working precision, floats as hyper_as says.
    def convert(key, value):
        if key in exact_hyper:
            return _exact_value(ctx, exact_hyper[key])
        return to_mp(ctx, value, hyper_as)

    hyper = [convert(k, v) for k, v in config.hyper.items()]
    eta0, t0, a = (convert(k, getattr(sched, k)) for k in _SCHEDULE_KEYS)
    constant = floats.get("a", sched.a) == 0
    return hyper, eta0, t0, a, constant, {k: str(v) for k, v in exact_hyper.items()}


def run_precise(
    Z,
    config: RunConfig,
    *,
    backend: str = "mpmath",
    prec: int | None = None,
    dps: int | None = None,
    record=(),
    hyper_as: str = "decimal",
    radius_limit: float = 1e-6,
    w0=None,
    exact_hyper: dict | None = None,
    implementation: str = "auto",
) -> PreciseRun:
    r"""Run ``config`` on ``Z`` in mpmath or interval arithmetic.

    Parameters
    ----------
    Z : array_like or Dataset
        Rows ``z_i = y_i x_i``; entries enter as their exact binary values.
    config : RunConfig
    backend : {"mpmath", "interval"}
    prec, dps : int, optional
        Working precision in bits or in decimal digits (not both). Defaults: 60
        digits for mpmath, 200 bits for intervals.
    record : iterable of int
        Steps (1-based) at which to keep the iterate (and, for intervals, its
        relative radius).
    hyper_as : {"decimal", "binary"}
        How float hyperparameters and schedule values enter: as the shortest
        decimal they print as, rounded at working precision (``0.999`` is
        0.999), or as the exact binary value of the float64
        (0.99899999999999999911...). Integers are exact either way.
    radius_limit : float
        Interval backend: stop with :class:`EnclosureTooWideError` after the first
        step at which some coordinate ``w_k`` has ``rad(w_k) / |mid(w_k)|`` above
        this. A coordinate whose ball is centred on 0 with a positive radius
        counts as infinitely wide.
    w0 : array_like, optional
        Start (default 0); exact binary values.
    exact_hyper : dict of str to str or Fraction, optional
        Overrides of hyperparameters or schedule values (``eta0``, ``t0``, ``a``)
        given exactly, e.g. ``{"b2": "0.999"}`` or ``{"b1": Fraction(9, 10)}``,
        entered at working precision (a ball containing the value for
        intervals). Integer flags such as ``eps_mode`` are not accepted here.
    implementation : {"auto", "arb", "mpmath-iv"}
        Interval numbers: python-flint's arb balls (``"auto"`` when installed) or
        mpmath's interval context.

    Returns
    -------
    PreciseRun

    Raises
    ------
    EnclosureTooWideError
        The enclosure got too wide; ``.partial`` holds the run so far.
    UndeterminedSignError
        A certified step needed the sign of a ball containing 0; ``.step`` and
        ``.partial`` say where.
    """
    ctx, ops, implementation = _numbers(backend, prec, dps, implementation)
    rule = bind_ops(config.spec.rule, ops)
    Z = as_z(Z)
    n, d = Z.shape
    start = check_start(w0, d)
    record = sorted(set(int(r) for r in record))
    interval = backend == "interval"
    result = PreciseRun(
        w=[], history={}, prec=ctx.prec, hyper_as=hyper_as, ctx=ctx,
        backend=backend, implementation=implementation,
        dps=libmp.prec_to_dps(ctx.prec),
    )
    with ctx.precision() if interval else nullcontext():

        # Inputs: data and start exactly, hyperparameters as hyper_as says.
        z = [[ctx.mpf(float(v)) for v in row] for row in Z]
        w = [ctx.mpf(float(v)) for v in start]
        hyper, eta0, t0, a, constant, exact = _inputs(
            ctx, config, hyper_as, exact_hyper
        )
        result.exact_hyper = exact
        result.w = w
        moments = [[ctx.mpf(0)] * d for _ in config.spec.state]
        wanted = set(record)
        for t in range(config.steps):
            try:
                w_next = _precise_step(ctx, rule, config, z, w, moments, hyper,
                                       eta0, t0, a, constant, n, d, t)
            except UndeterminedSignError as exc:
                exc.step = t + 1
                exc.partial = _finish(result, w, t, config.steps)
                logger.warning("step %d: %s", t + 1, exc)
                raise
            except OverflowError as exc:
                # mpmath's exponents are Python ints, but some conversions are
                # not: a run whose margins reach ~1e300 and beyond ends here.
                message = (
                    f"step {t + 1} of {config.steps} could not be computed at "
                    f"{ctx.prec} bits: the numbers outgrew the backend ({exc}); "
                    f"the run diverged (max |w| = "
                    f"{_magnitude(ctx, max(abs(x) for x in w))} before it). The "
                    "run so "
                    "far is on .partial; a smaller step size keeps it finite"
                )
                logger.warning(message)
                error = DivergedError(message)
                error.step = t + 1
                error.partial = _finish(result, w, t, config.steps)
                raise error from exc
            w = w_next
            result.w = w

            # Record, then check the width of the enclosure.
            if t + 1 in wanted:
                result.history[t + 1] = list(w)
                result.steps.append(t + 1)
            if interval:
                radius = _relative_radius(ctx, w)
                if t + 1 in wanted:
                    result.radius.append(radius)
                if radius > radius_limit:
                    partial = _finish(result, w, t + 1, config.steps)
                    message = (
                        f"the enclosure of w got too wide at step {t + 1} of "
                        f"{config.steps}: relative radius {radius:.3g} > "
                        f"radius_limit = {radius_limit:.3g} at prec = {ctx.prec} "
                        "bits; raise prec (doubling it shrinks the radius) or "
                        "shorten the run. The run so far is on .partial"
                    )
                    logger.warning(message)
                    raise EnclosureTooWideError(
                        message, step=t + 1, radius=radius, limit=radius_limit,
                        partial=partial,
                    )
    return _finish(result, w, config.steps, config.steps)


def _precise_step(ctx, rule, config, z, w, moments, hyper, eta0, t0, a, constant,
                  n, d, t):
    """One step of the rule at working precision; the new ``w`` (moments in place).

    The moments are updated only once every coordinate's step has been computed,
    so that a step that raises leaves the run as it was before it.
    """

    # Step size, batch, and the per-sample weights g_i = -l'(s_i).
    lr = eta0 if constant else eta0 * (t + t0) ** (-a)
    batch = _batch(config, n, t)
    g = {}
    for i in batch:
        s_i = ctx.fsum(z[i][k] * w[k] for k in range(d))
        if config.loss == "exponential":
            g[i] = ctx.exp(-s_i)
        else:
            g[i] = 1 / (1 + ctx.exp(s_i))

    # Each coordinate through the rule, with scale s = 0 (unbounded exponents
    # need no log-scales).
    size = len(batch)
    new_w = list(w)
    new_moments = [list(mom) for mom in moments]
    for k in range(d):
        G = -ctx.fsum(g[i] * z[i][k] for i in batch) / size
        Q = ctx.fsum((g[i] * z[i][k]) ** 2 for i in batch)
        out = rule(lr, t + 1, 0, G, Q, *(mom[k] for mom in moments), *hyper)
        new_w[k] = w[k] + out[0]
        for mom, value in zip(new_moments, out[1:], strict=True):
            mom[k] = value
    for mom, new in zip(moments, new_moments, strict=True):
        mom[:] = new
    return new_w


def _magnitude(ctx, x) -> str:
    """``x`` for a message: ``1.5e+12``, ``10^(1.2e+45)`` or ``10^(10^(3.1e+9))``."""
    try:
        for power in range(3):
            value = float(x)
            if math.isfinite(value):
                return "10^(" * power + f"{value:.3g}" + ")" * power
            x = ctx.log10(x)
    except (OverflowError, ValueError):
        pass
    return "too large to print"


def _finish(result: PreciseRun, w, steps_done: int, total: int) -> PreciseRun:
    result.w = list(w)
    result.steps_done = steps_done
    result.complete = steps_done == total
    return result


def _relative_radius(ctx, w) -> float:
    """The largest ``rad / |mid|`` over the coordinates (inf for a ball on 0)."""
    worst = 0.0
    for x in w:
        rad = ctx.rad(x)
        if rad == 0:
            continue
        mid = abs(ctx.mid(x))
        worst = max(worst, rad / mid if mid > 0 else float("inf"))
    return worst


def run_mpmath(
    Z,
    config: RunConfig,
    *,
    w0=None,
    dps: int = 60,
    record=(),
    hyper_as: str = "decimal",
    state=None,
) -> PreciseRun:
    """Run ``config`` in mpmath at ``dps`` decimal digits.

    A thin wrapper of :func:`run_precise` with ``backend="mpmath"``. ``Z`` entries
    and ``w0`` are taken as the exact binary values of their floats. ``record``
    lists steps at which to keep the iterate. ``state`` (resuming a previous run)
    is not supported yet; runs start from ``w0`` with zero moments.
    """
    if state is not None:
        raise NotImplementedError(
            "resuming an mpmath run from a state is not supported yet; start from "
            "w0 instead"
        )
    return run_precise(
        Z, config, backend="mpmath", dps=dps, record=record, hyper_as=hyper_as,
        w0=w0,
    )
