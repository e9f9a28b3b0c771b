r"""The sympy ops namespace: update rules evaluated on symbols.

:func:`theorybox.arith.bind_ops` rebinds a rule's global ``ops``; binding it to
:data:`SympyOps` makes the very rule that the float64 and mpmath engines run
produce a sympy expression. The namespace contract of :mod:`theorybox.arith.ops`
maps to sympy as

.. math::

    \operatorname{sqrt}(x) = \sqrt{x}, \qquad
    \operatorname{sign}(x) = \operatorname{sgn}(x), \qquad
    \operatorname{div0}(a, b) = a / b, \qquad
    \operatorname{mulexp}(x, y) = x e^{y}.

Notes
-----
The numeric backends use the convention :math:`0 / 0 = 0`; it only matters on a
coordinate no sample has touched yet (``m = v = 0``). That point lies outside the
domain of the symbolic maps (every derivation here assumes :math:`v > 0`), so
:data:`SympyOps` writes a plain quotient. :func:`sympy_ops` with
``div0="piecewise"`` keeps the convention as a ``Piecewise`` instead, at the cost of
expressions that ``simplify`` handles worse.
"""

from __future__ import annotations

import types

import sympy

__all__ = ["SympyOps", "SympyOpsPiecewise", "sympy_ops"]


def _quotient(a, b):
    return a / b


def _piecewise_quotient(a, b):
    return sympy.Piecewise((sympy.S.Zero, sympy.Eq(b, 0)), (a / b, True))


def _mulexp(x, y):
    # exp(0) evaluates to 1, so the rules' log-scale s = 0 leaves x unchanged.
    return x * sympy.exp(y)


def sympy_ops(div0: str = "quotient") -> types.SimpleNamespace:
    """Build a sympy ops namespace.

    Parameters
    ----------
    div0 : {"quotient", "piecewise"}
        ``"quotient"``: ``div0(a, b) = a / b`` (the symbolic domain has ``b != 0``).
        ``"piecewise"``: ``Piecewise((0, Eq(b, 0)), (a / b, True))``, the numeric
        backends' ``0 / 0 = 0`` convention written out.

    Returns
    -------
    types.SimpleNamespace
        With ``name``, ``sqrt``, ``sign``, ``div0`` and ``mulexp``.
    """
    choices = {"quotient": _quotient, "piecewise": _piecewise_quotient}
    if div0 not in choices:
        raise ValueError(
            f"div0 = {div0!r}; use 'quotient' (a / b) or 'piecewise' (0 where b = 0)"
        )
    return types.SimpleNamespace(
        name=f"sympy-{div0}",
        sqrt=sympy.sqrt,
        sign=sympy.sign,
        div0=choices[div0],
        mulexp=_mulexp,
    )


#: Plain quotients: the namespace the symbolic maps use.
SympyOps = sympy_ops("quotient")

#: ``0 / 0 = 0`` kept as a ``Piecewise``.
SympyOpsPiecewise = sympy_ops("piecewise")
