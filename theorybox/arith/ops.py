"""Ops namespaces: the only functions an update rule may call on its scalars.

An update rule (see :mod:`theorybox.optimizers.rules`) is a plain Python function of
per-coordinate scalars that reaches every non-arithmetic operation through a global
name ``ops``. :func:`bind_ops` makes a copy of the rule whose ``ops`` is a chosen
namespace, so the *same* source runs on Python floats, inside a numba-compiled
float64 loop, on mpmath numbers at any precision, on interval balls and on sympy
symbols.

The namespace contract (every backend provides all of these):

``sqrt(x)``
    square root of a non-negative number.
``sign(x)``
    ``-1``, ``0`` or ``1``; ``sign(0) = 0``.
``div0(a, b)``
    ``a / b`` with the convention ``0 / 0 = 0`` (``b = 0`` only occurs with
    ``a = 0`` in the rules: a coordinate no sample has touched yet).
``mulexp(x, y)``
    ``x * exp(y)``, with ``0 * exp(y) = 0`` even where ``exp(y)`` overflows. The
    rules use it to move a quantity between a coordinate's log-scale and plain
    units.
"""

from __future__ import annotations

import math
import types

import numba

__all__ = ["PythonOps", "mpmath_ops", "bind_ops", "numba_ops"]


def bind_ops(rule, ops):
    """Return a copy of ``rule`` whose global name ``ops`` is ``ops``.

    The copy shares the rule's code object, so it is the same definition; only the
    namespace it resolves ``ops`` in differs.
    """
    namespace = dict(rule.__globals__)
    namespace["ops"] = ops
    bound = types.FunctionType(
        rule.__code__, namespace, rule.__name__, rule.__defaults__, rule.__closure__
    )
    bound.__doc__ = rule.__doc__
    bound.__qualname__ = rule.__qualname__
    return bound


# Plain Python floats: the reference for tests and for the scalar recurrences.


def _py_sign(x):
    return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)


def _py_div0(a, b):
    return 0.0 if b == 0 else a / b


def _py_mulexp(x, y):
    if x == 0:
        return 0.0 * x
    try:
        return x * math.exp(y)
    except OverflowError:
        return math.copysign(math.inf, x)


PythonOps = types.SimpleNamespace(
    name="python",
    sqrt=math.sqrt,
    sign=_py_sign,
    div0=_py_div0,
    mulexp=_py_mulexp,
)


# mpmath numbers, in a private context so that no run touches mpmath's global
# precision (thread-safe, and nothing to restore on error).


def mpmath_ops(ctx):
    """The ops namespace for mpmath numbers of context ``ctx`` (an ``MPContext``)."""

    def sqrt(x):
        # A negative argument would give a complex number; rules only pass v >= 0.
        if x < 0:
            raise ValueError(f"sqrt of a negative number {x!r} in an update rule")
        return ctx.sqrt(x)

    def div0(a, b):
        return a * 0 if b == 0 else a / b

    def mulexp(x, y):
        return x * 0 if x == 0 else x * ctx.exp(y)

    return types.SimpleNamespace(
        name="mpmath", sqrt=sqrt, sign=ctx.sign, div0=div0, mulexp=mulexp
    )


# numba: a module whose attributes are jitted functions, so that ``ops.sqrt`` in a
# bound rule resolves at compile time inside the float64 kernel.


@numba.njit(inline="always", cache=False)
def _nb_sqrt(x):
    return math.sqrt(x)


@numba.njit(inline="always", cache=False)
def _nb_sign(x):
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return 0.0


@numba.njit(inline="always", cache=False)
def _nb_div0(a, b):
    if b == 0.0:
        return 0.0
    return a / b


@numba.njit(inline="always", cache=False)
def _nb_mulexp(x, y):
    if x == 0.0:
        return 0.0
    return x * math.exp(y)


numba_ops = types.ModuleType("theorybox_numba_ops")
numba_ops.name = "numba"
numba_ops.sqrt = _nb_sqrt
numba_ops.sign = _nb_sign
numba_ops.div0 = _nb_div0
numba_ops.mulexp = _nb_mulexp
