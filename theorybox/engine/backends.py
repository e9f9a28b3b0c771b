r"""One entry point to the high-precision backends, and metrics that stay real.

:func:`run_precise` (from :mod:`theorybox.engine.mp`) picks the backend with one
argument. numpy's ufuncs (``exp``, ``log1p``, ``isfinite``) fail on object arrays of
mpmath numbers or balls, and ``sqrt`` of a negative mpf returns a complex number
(cases.md K10), so metrics on precise iterates go through :func:`to_float_array` or
are computed in the backend's own numbers with :func:`precise_cosine`, which clips
the cosine to ``[-1, 1]`` before anyone takes ``sqrt(1 - c^2)``.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from theorybox.arith.interval import (
    EnclosureTooWideError,
    IntervalDomainError,
    UndeterminedSignError,
)
from theorybox.engine.mp import BACKENDS, PreciseRun, run_mpmath, run_precise
from theorybox.errors import InvalidDataError

__all__ = [
    "BACKENDS",
    "EnclosureTooWideError",
    "IntervalDomainError",
    "PreciseRun",
    "UndeterminedSignError",
    "precise_cosine",
    "run_mpmath",
    "run_precise",
    "to_float",
    "to_float_array",
]


def to_float(value) -> float:
    """One number of any backend as a float (the midpoint of a ball or interval).

    Raises :class:`InvalidDataError` for a complex value with a non-zero imaginary
    part instead of silently dropping it.
    """
    if hasattr(value, "rad") and hasattr(value, "mid") and callable(value.mid):
        return float(value.mid())
    if hasattr(value, "delta"):
        return float(value.mid)
    if isinstance(value, complex) or hasattr(value, "imag") and value.imag != 0:
        raise InvalidDataError(
            f"metric value {value!r} is complex; metrics must stay real (clip "
            "cosines to [-1, 1] before sqrt(1 - c^2))"
        )
    return float(value)


def to_float_array(values) -> np.ndarray:
    """A (nested) sequence of mpf, balls, intervals or floats as a float64 array."""
    array = np.asarray(values, dtype=object)
    flat = [to_float(x) for x in array.reshape(-1)]
    return np.array(flat, dtype=np.float64).reshape(array.shape)


def precise_cosine(a, b, ctx):
    r"""The cosine :math:`a \cdot b / (\|a\| \|b\|)` in ``ctx``'s numbers, in
    ``[-1, 1]``.

    Parameters
    ----------
    a, b : sequences of numbers
        Vectors of equal length (floats, mpf or balls).
    ctx : mpmath.MPContext, interval context, or PreciseRun
        The numbers to compute in (a :class:`PreciseRun` gives its own).

    Returns
    -------
    number of ``ctx``
        Rounding can put a computed cosine a hair above 1 (parallel vectors);
        the result is clipped, so ``sqrt(1 - c**2)`` is real. For balls, the part
        of the enclosure inside ``[-1, 1]``.
    """
    if isinstance(ctx, PreciseRun):
        ctx = ctx.ctx
    if len(a) != len(b) or len(a) == 0:
        raise InvalidDataError(
            f"cosine of vectors of lengths {len(a)} and {len(b)}; they must be "
            "non-empty and of equal length"
        )
    precision = getattr(ctx, "precision", None)
    with precision() if precision is not None else nullcontext():

        # Dot products in the backend's numbers (exact inputs, one rounding each).
        a = [ctx.mpf(x) for x in a]
        b = [ctx.mpf(x) for x in b]
        ab = ctx.fsum(x * y for x, y in zip(a, b, strict=True))
        aa = ctx.fsum(x * x for x in a)
        bb = ctx.fsum(y * y for y in b)
        if _is_zero(ctx, aa) or _is_zero(ctx, bb):
            raise InvalidDataError(
                "cosine with a zero vector is undefined; check the iterate"
            )
        cosine = ab / (ctx.sqrt(aa) * ctx.sqrt(bb))

        # Clip to [-1, 1] in the same numbers.
        if hasattr(ctx, "clip"):
            return ctx.clip(cosine, -1, 1)
        return max(min(cosine, ctx.mpf(1)), ctx.mpf(-1))


def _is_zero(ctx, x) -> bool:
    if hasattr(ctx, "is_exact_zero"):
        return ctx.is_exact_zero(x)
    return x == 0
