r"""Interval (ball) arithmetic for certified runs of the update rules.

Every number is an enclosure: a ball ``[mid +- rad]`` (python-flint's ``arb``) or,
when python-flint is not installed, an interval ``[a, b]`` of a private
:class:`mpmath.ctx_iv.MPIntervalContext`. Each operation returns a set that contains
the exact result of the same operation on any points of its inputs, so a run in
these numbers encloses the exact trajectory of the rules in real arithmetic.

Comparisons of balls that overlap are neither true nor false. The ops namespace
therefore never guesses: ``sign`` of a ball that contains 0 but is not exactly 0
raises :class:`UndeterminedSignError`, and so does ``div0`` with a denominator ball
that contains 0 (cases.md K11).

Precision and threads
---------------------
python-flint keeps its working precision in one process-wide setting,
``flint.ctx.prec``. :func:`arb_precision` sets it for the duration of a ``with``
block and restores the previous value on exit, on error too. The block also holds
a module-level lock, so interval runs in several threads are *serialised*: two runs
at different precisions never see each other's setting. Code outside theorybox
that uses python-flint concurrently is not covered by the lock. The mpmath
fallback keeps its precision on a private context instance and needs no lock.
"""

from __future__ import annotations

import threading
import types
from contextlib import contextmanager, nullcontext
from fractions import Fraction

from mpmath import ctx_iv, libmp

from theorybox.errors import TheoryboxError

try:
    import flint

    HAVE_FLINT = True
except ImportError:  # pragma: no cover - exercised only without python-flint
    flint = None
    HAVE_FLINT = False

__all__ = [
    "HAVE_FLINT",
    "ArbContext",
    "EnclosureTooWideError",
    "IntervalDomainError",
    "IvContext",
    "UndeterminedSignError",
    "arb_precision",
    "interval_context",
    "interval_ops",
]

#: Serialises every use of python-flint's global precision by theorybox.
_FLINT_LOCK = threading.RLock()


class UndeterminedSignError(TheoryboxError):
    """A ball contains 0 but is not exactly 0: its sign is not decided.

    Raised by ``sign`` and by ``div0`` (for the denominator). A run that meets it
    puts the step (``.step``, 1-based) and what it computed before that step
    (``.partial``) on the exception.
    """

    step = None
    partial = None


class IntervalDomainError(TheoryboxError):
    """A square root of a ball that lies entirely below 0."""


class EnclosureTooWideError(TheoryboxError):
    """The relative radius of the iterate passed the run's ``radius_limit``.

    Attributes
    ----------
    step : int
        The step (1-based) after which the radius passed the limit.
    radius : float
        The largest relative radius of a coordinate of ``w`` at that step.
    limit : float
        The ``radius_limit`` of the run.
    partial : PreciseRun
        Everything computed up to and including ``step``.
    """

    def __init__(self, message, step=None, radius=None, limit=None, partial=None):
        super().__init__(message)
        self.step = step
        self.radius = radius
        self.limit = limit
        self.partial = partial


@contextmanager
def arb_precision(prec: int):
    """Set ``flint.ctx.prec`` to ``prec`` bits inside the block, then restore it.

    The block holds a lock, so concurrent interval runs wait for each other instead
    of changing the precision under each other's feet. The previous precision is
    restored when the block exits for any reason.
    """
    if not HAVE_FLINT:
        raise ImportError("python-flint is not installed; use the mpmath-iv backend")
    with _FLINT_LOCK:
        saved = flint.ctx.prec
        flint.ctx.prec = int(prec)
        try:
            yield
        finally:
            flint.ctx.prec = saved


def _check_prec(prec) -> int:
    if not isinstance(prec, int) or isinstance(prec, bool) or prec < 2:
        raise TheoryboxError(
            f"precision prec = {prec!r} must be an integer number of bits >= 2 "
            "(for example 200)"
        )
    return prec


class ArbContext:
    """Ball numbers of python-flint at a fixed precision of ``prec`` bits.

    Use the numbers only inside ``with ctx.precision():``; outside it, python-flint
    rounds at whatever its global precision is.
    """

    name = "arb"

    def __init__(self, prec: int):
        if not HAVE_FLINT:
            raise ImportError("python-flint is not installed; use IvContext")
        self.prec = _check_prec(prec)

    @property
    def dps(self) -> int:
        return libmp.prec_to_dps(self.prec)

    def precision(self):
        return arb_precision(self.prec)

    def mpf(self, value):
        """A ball for ``value``: floats and ints exactly, decimal strings and
        fractions as a ball at working precision that contains them."""
        if isinstance(value, flint.arb):
            return value
        if isinstance(value, Fraction):
            return flint.arb(value.numerator) / value.denominator
        if isinstance(value, str):
            return flint.arb(value)
        if hasattr(value, "man_exp"):
            # An mpmath mpf: exact as mantissa times a power of two.
            if not value:
                return flint.arb(0)
            man, exp = value.man_exp
            return flint.arb((int(man), int(exp)))
        return flint.arb(value)

    def exp(self, x):
        return self.mpf(x).exp()

    def sqrt(self, x):
        return self.mpf(x).sqrt()

    def fsum(self, terms):
        total = flint.arb(0)
        for term in terms:
            total = total + term
        return total

    # Questions the ops ask of a ball.

    def is_exact_zero(self, x) -> bool:
        return self.mpf(x).is_zero()

    def positive(self, x) -> bool:
        return bool(self.mpf(x) > 0)

    def negative(self, x) -> bool:
        return bool(self.mpf(x) < 0)

    def nonnegative_part(self, x):
        return self.mpf(x).nonnegative_part()

    def mid(self, x) -> float:
        return float(self.mpf(x).mid())

    def rad(self, x) -> float:
        return float(self.mpf(x).rad())

    def contains(self, ball, value) -> bool:
        """Whether ``ball`` contains the number ``value`` (float, mpf or ball)."""
        return bool(self.mpf(ball).contains(self.mpf(value)))

    def clip(self, x, low, high):
        """The part of the ball ``x`` inside ``[low, high]`` (an end if outside).

        The new ball is built from its end points at 64 extra bits, so the only
        excess is arb's upward rounding of the radius (30-bit mantissa): the ends
        may pass ``low`` or ``high`` by at most ``2^-29`` times the radius.
        """
        x = self.mpf(x)
        low, high = self.mpf(low), self.mpf(high)
        if x >= high:
            return high
        if x <= low:
            return low
        if x.lower() >= low and x.upper() <= high:
            return x
        with arb_precision(self.prec + 64):
            lower = x.lower() if x.lower() > low else low
            upper = x.upper() if x.upper() < high else high
            return lower.union(upper)


class IvContext:
    """Intervals of a private :class:`mpmath.ctx_iv.MPIntervalContext` (fallback).

    The precision lives on the instance, so :meth:`precision` needs no lock.
    """

    name = "mpmath-iv"

    def __init__(self, prec: int):
        self.iv = ctx_iv.MPIntervalContext()
        self.iv.prec = _check_prec(prec)
        self.prec = self.iv.prec

    @property
    def dps(self) -> int:
        return libmp.prec_to_dps(self.prec)

    def precision(self):
        return nullcontext()

    def mpf(self, value):
        if isinstance(value, ctx_iv.ivmpf):
            return value
        if isinstance(value, Fraction):
            return self.iv.mpf(value.numerator) / value.denominator
        if isinstance(value, float | int):
            return self.iv.mpf(value)
        return self.iv.mpf(value)

    def exp(self, x):
        return self.iv.exp(self.mpf(x))

    def sqrt(self, x):
        return self.iv.sqrt(self.mpf(x))

    def fsum(self, terms):
        return self.iv.fsum(terms)

    def is_exact_zero(self, x) -> bool:
        x = self.mpf(x)
        return bool(x.a == 0 and x.b == 0)

    def positive(self, x) -> bool:
        return bool(self.mpf(x).a > 0)

    def negative(self, x) -> bool:
        return bool(self.mpf(x).b < 0)

    def nonnegative_part(self, x):
        x = self.mpf(x)
        return x if x.a >= 0 else self.iv.mpf([0, x.b])

    def mid(self, x) -> float:
        return float(self.mpf(x).mid)

    def rad(self, x) -> float:
        return float(self.mpf(x).delta) / 2

    def contains(self, ball, value) -> bool:
        ball, value = self.mpf(ball), self.mpf(value)
        return bool(ball.a <= value.a and value.b <= ball.b)

    def clip(self, x, low, high):
        x = self.mpf(x)
        a = min(max(x.a, self.mpf(low).a), self.mpf(high).b)
        b = max(min(x.b, self.mpf(high).b), self.mpf(low).a)
        return self.iv.mpf([a, b])


def interval_context(prec: int, implementation: str = "auto"):
    """The interval numbers at ``prec`` bits: ``"arb"``, ``"mpmath-iv"`` or
    ``"auto"`` (arb when python-flint is installed, else mpmath-iv)."""
    if implementation == "auto":
        implementation = "arb" if HAVE_FLINT else "mpmath-iv"
    if implementation == "arb":
        return ArbContext(prec)
    if implementation == "mpmath-iv":
        return IvContext(prec)
    raise TheoryboxError(
        f"interval implementation {implementation!r} is not one of 'auto', 'arb', "
        "'mpmath-iv'"
    )


def interval_ops(ctx, implementation: str = "auto"):
    """The ops namespace (see :mod:`theorybox.arith.ops`) over interval numbers.

    Parameters
    ----------
    ctx : ArbContext, IvContext or int
        The numbers, or a precision in bits for :func:`interval_context`.
    implementation : str
        Used only when ``ctx`` is a precision.

    Notes
    -----
    ``sqrt``
        The rules take roots only of quantities that are ``>= 0`` in exact
        arithmetic (``v``, ``Q``), so a ball straddling 0 is clamped to
        ``[0, upper]``; a ball entirely below 0 raises :class:`IntervalDomainError`.
    ``sign``
        ``-1``, ``0`` or ``1`` when the ball decides it (only an exact zero ball
        gives 0); otherwise :class:`UndeterminedSignError`.
    ``div0``
        An exact zero numerator gives 0 (``0 / b`` is 0 for every ``b``, ``0 / 0``
        by convention); otherwise a denominator ball that contains 0 raises
        :class:`UndeterminedSignError`.
    ``mulexp``
        ``x exp(y)``, exactly 0 for an exact zero ``x``.
    """
    if isinstance(ctx, int):
        ctx = interval_context(ctx, implementation)

    def sqrt(x):
        if ctx.negative(x):
            raise IntervalDomainError(
                f"square root of the ball {x} that lies entirely below 0; the rules "
                "take roots only of non-negative quantities, so the run is wrong"
            )
        return ctx.sqrt(ctx.nonnegative_part(x))

    def sign(x):
        if ctx.positive(x):
            return 1
        if ctx.negative(x):
            return -1
        if ctx.is_exact_zero(x):
            return 0
        raise UndeterminedSignError(
            f"sign undetermined: the ball {x} contains 0 but is not exactly 0; "
            "raise the precision or stop the certified run here"
        )

    def div0(a, b):
        if ctx.is_exact_zero(a):
            return ctx.mpf(0)
        if ctx.positive(b) or ctx.negative(b):
            return ctx.mpf(a) / b
        raise UndeterminedSignError(
            f"sign undetermined: the denominator ball {b} contains 0 while the "
            f"numerator {a} is not exactly 0, so {a} / {b} has no enclosure"
        )

    def mulexp(x, y):
        if ctx.is_exact_zero(x):
            return ctx.mpf(0)
        return ctx.mpf(x) * ctx.exp(y)

    return types.SimpleNamespace(
        name=f"interval-{ctx.name}", ctx=ctx, sqrt=sqrt, sign=sign, div0=div0,
        mulexp=mulexp,
    )
