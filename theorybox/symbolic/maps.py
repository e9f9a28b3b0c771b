r"""Symbolic update maps, derived from the registered update rules.

:func:`update_map` calls the optimizer's own rule (the one the float64 and mpmath
engines run) through :func:`theorybox.arith.bind_ops` with :data:`SympyOps`, on
symbols for one coordinate :math:`k` and log-scale :math:`s = 0`. The gradient the
step sees is, for logistic-type losses with :math:`\nabla L_i = -g_i z_i`,

.. math::

    \text{per sample:}\quad G = -g_i z_{ik}, \quad Q = g_i^2 z_{ik}^2;
    \qquad
    \text{full batch:}\quad G = -\frac{1}{N}\sum_{i} g_i z_{ik}, \quad
    Q = \sum_i g_i^2 z_{ik}^2.

=============  ===============================================================
symbol         meaning
=============  ===============================================================
``eta``        step size :math:`\eta_t`
``t``          step count (bias correction only)
``m``, ``v``   moments entering the step (``beta``'s ``m`` for Signum)
``b1``, ...    the rule's real hyperparameters (``b1``, ``b2``, ``beta``)
``g_i``        the loss factor :math:`g_i \in (0, 1)` of the sample
``z_ik``       coordinate :math:`k` of :math:`z_i = y_i x_i`
=============  ===============================================================

Discrete hyperparameters (``eps_mode``, ``bias_correction``) select a branch of the
rule and stay concrete; ``eps`` is ``0`` (the theory's setting) unless given.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import mpmath
import sympy

from theorybox.arith.ops import bind_ops
from theorybox.optimizers.registry import get_optimizer
from theorybox.symbolic.ops import SympyOps

logger = logging.getLogger(__name__)

__all__ = ["K12_CONSTANT", "UpdateMap", "lambdify_agreement", "update_map"]

#: Hyperparameters that pick a branch of a rule: kept at their (integer) values.
DISCRETE_HYPER = ("eps_mode", "bias_correction")

ETA = sympy.Symbol("eta", positive=True)
T = sympy.Symbol("t", positive=True, integer=True)
G_SYM = sympy.Symbol("G", real=True)
Q_SYM = sympy.Symbol("Q", nonnegative=True)


@dataclass(frozen=True)
class UpdateMap:
    """One step of an optimizer on one coordinate, as sympy expressions.

    Attributes
    ----------
    name : str
        Registry name of the optimizer.
    per_sample : bool
        Whether the step sees one sample's gradient (else the full batch).
    N : int, Symbol or None
        Number of samples of the full batch (``None`` per sample).
    dw : sympy.Expr
        The change of the coordinate, in the data symbols.
    new_state : dict of str to sympy.Expr
        The moments after the step, in the data symbols.
    G, Q : sympy.Expr
        What the rule's ``G`` and ``Q`` stand for.
    dw_gq, new_state_gq
        The same map in the rule's own symbols ``G`` and ``Q``.
    state_symbols : dict of str to Symbol
        The moments entering the step.
    hyper : dict of str to object
        The hyperparameters as passed to the rule.
    """

    name: str
    per_sample: bool
    N: object
    dw: sympy.Expr
    new_state: dict
    G: sympy.Expr
    Q: sympy.Expr
    dw_gq: sympy.Expr
    new_state_gq: dict
    state_symbols: dict
    hyper: dict
    data_symbols: tuple = field(default=())

    @property
    def free_symbols(self) -> set:
        """Every symbol the map depends on."""
        out = set(self.dw.free_symbols)
        for expr in self.new_state.values():
            out |= expr.free_symbols
        return out

    def __str__(self) -> str:
        mode = "per-sample" if self.per_sample else f"full batch (N = {self.N})"
        lines = [f"{self.name}, {mode}:", f"  G = {self.G}", f"  Q = {self.Q}"]
        for key, expr in self.new_state.items():
            lines.append(f"  {key}' = {expr}")
        lines.append(f"  dw = {self.dw}")
        return "\n".join(lines)

    def latex(self) -> str:
        """The map as a LaTeX ``aligned`` block (``sympy.latex`` of each line)."""
        rows = [
            rf"G &= {sympy.latex(self.G)}",
            rf"Q &= {sympy.latex(self.Q)}",
        ]
        for key, expr in self.new_state.items():
            rows.append(rf"{key}' &= {sympy.latex(expr)}")
        rows.append(rf"\Delta w &= {sympy.latex(self.dw)}")
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def _data(per_sample: bool, N):
    # Per sample: one g and one z. Full batch: N explicit symbols, or an indexed
    # family summed to a symbolic N.
    if per_sample:
        g = sympy.Symbol("g_i", positive=True)
        z = sympy.Symbol("z_ik", real=True)
        return -g * z, g**2 * z**2, (g, z)
    if isinstance(N, int):
        if N < 1:
            raise ValueError(f"N = {N}; a full batch needs N >= 1 samples")
        gs = sympy.symbols(f"g_0:{N}", positive=True)
        zs = sympy.symbols(f"z_0:{N}k", real=True)
        G = -sympy.Add(*[g * z for g, z in zip(gs, zs, strict=True)]) / N
        Q = sympy.Add(*[(g * z) ** 2 for g, z in zip(gs, zs, strict=True)])
        return G, Q, gs + zs
    if N is None:
        N = sympy.Symbol("N", positive=True, integer=True)
    i = sympy.Idx("i")
    g = sympy.IndexedBase("g", positive=True)
    z = sympy.IndexedBase("z", real=True)
    G = -sympy.Sum(g[i] * z[i], (i, 0, N - 1)) / N
    Q = sympy.Sum(g[i] ** 2 * z[i] ** 2, (i, 0, N - 1))
    return G, Q, (g, z, N)


def update_map(
    name: str,
    per_sample: bool = True,
    N=None,
    hyper: Mapping | None = None,
    eta=None,
) -> UpdateMap:
    r"""The symbolic one-step map of a registered optimizer.

    Parameters
    ----------
    name : str
        Registry name (``"adam"``, ``"adam-ps"``, ``"signum"``, ``"adamproxy"``, ...).
    per_sample : bool
        ``True``: :math:`G = -g_i z_{ik}`; ``False``: the full-batch mean.
    N : int, Symbol or None
        Full batch only: an int gives explicit symbols ``g_0..``, ``z_0k..``;
        ``None`` or a symbol gives ``IndexedBase`` sums to a symbolic ``N``.
    hyper : mapping, optional
        Values for hyperparameters (numbers or sympy expressions, e.g.
        ``{"b1": Rational(9, 10)}``); the rest are symbols (real ones) or their
        registry defaults (discrete ones), and ``eps`` is 0.
    eta : sympy expression, optional
        The step size; the symbol ``eta`` by default.

    Returns
    -------
    UpdateMap
    """
    spec = get_optimizer(name)
    hyper = dict(hyper or {})
    unknown = sorted(set(hyper) - set(spec.hyper))
    if unknown:
        raise ValueError(
            f"optimizer {name!r} has no hyperparameter {unknown[0]!r}; it has "
            f"{sorted(spec.hyper) or 'none'}"
        )

    # Hyperparameters: symbols, concrete branches, or the caller's values.
    values = {}
    for key, default in spec.hyper.items():
        if key in hyper:
            values[key] = sympy.sympify(hyper[key])
        elif key in DISCRETE_HYPER:
            values[key] = int(default)
        elif key == "eps":
            values[key] = sympy.S.Zero
        else:
            values[key] = sympy.Symbol(key, positive=True)

    # The rule on the generic G, Q and moment symbols, with s = 0.
    state_symbols = {
        key: sympy.Symbol(key, real=True)
        if power == 1
        else sympy.Symbol(key, nonnegative=True)
        for key, power in spec.state
    }
    lr = ETA if eta is None else sympy.sympify(eta)
    rule = bind_ops(spec.rule, SympyOps)
    out = rule(lr, T, 0, G_SYM, Q_SYM, *state_symbols.values(), *values.values())
    dw_gq = sympy.sympify(out[0])
    state_gq = {
        key: sympy.sympify(expr)
        for key, expr in zip(state_symbols, out[1:], strict=True)
    }

    # The same map in the data: substitute what G and Q stand for.
    G, Q, data_symbols = _data(per_sample, None if per_sample else N)
    subs = {G_SYM: G, Q_SYM: Q}
    return UpdateMap(
        name=name,
        per_sample=per_sample,
        N=None if per_sample else (N if N is not None else data_symbols[-1]),
        dw=dw_gq.subs(subs),
        new_state={key: expr.subs(subs) for key, expr in state_gq.items()},
        G=G,
        Q=Q,
        dw_gq=dw_gq,
        new_state_gq=state_gq,
        state_symbols=state_symbols,
        hyper=values,
        data_symbols=tuple(data_symbols),
    )


#: A 64-digit constant for the lambdify check (cases.md K12), used as the step size.
K12_CONSTANT = "0.1234567890123456789012345678901234567890123456789012345678901234"


def lambdify_agreement(dps: int = 50, seed: int = 0) -> dict:
    r"""Digits to which a lambdified per-sample Adam map matches direct mpmath.

    The map of ``adam-ps`` with :math:`b_1 = 9/10`, :math:`b_2 = 999/1000` and the
    64-digit step size :data:`K12_CONSTANT` is turned into a function twice:

    - ``sympy.lambdify(..., modules="mpmath")`` prints rationals as ``mpf`` quotients
      and the long float as an exact ``mpf`` tuple, so evaluated inside
      ``mpmath.workdps(dps)`` it keeps every digit;
    - the default (numpy) module prints ``9/10`` and the constant as Python floats
      and calls ``numpy.sqrt``, which cannot take ``mpf`` arguments: the function
      only runs on float64, and agrees to about 15-16 digits. **Hazard**: a
      lambdified expression is silently double unless ``modules="mpmath"``.

    The reference is the registered rule itself on a private mpmath context at
    ``dps`` digits (:func:`theorybox.arith.mpmath_ops`).

    Returns
    -------
    dict
        ``{"mpmath": digits, "numpy": digits}``, digits
        :math:`= -\log_{10}` of the relative disagreement (capped at ``dps + 10``).
    """
    import random

    from theorybox.arith.ops import mpmath_ops
    from theorybox.optimizers import rules

    um = update_map(
        "adam-ps",
        hyper={"b1": sympy.Rational(9, 10), "b2": sympy.Rational(999, 1000)},
        eta=sympy.Float(K12_CONSTANT, 64),
    )
    syms = sorted(um.dw.free_symbols, key=str)  # g_i, m, v, z_ik

    # Random inputs with dps significant digits, as decimal strings.
    rng = random.Random(seed)
    text = {
        "g_i": f"0.{rng.getrandbits(200):060d}"[: dps + 2],
        "m": f"-0.{rng.getrandbits(200):060d}"[: dps + 3],
        "v": f"0.{rng.getrandbits(200):060d}"[: dps + 2],
        "z_ik": f"1.{rng.getrandbits(200):060d}"[: dps + 2],
    }

    # Reference: the rule on a private mpmath context.
    ctx = mpmath.MPContext()
    ctx.dps = dps
    x = {k: ctx.mpf(v) for k, v in text.items()}
    G = -x["g_i"] * x["z_ik"]
    rule = bind_ops(rules.adam_step, mpmath_ops(ctx))
    ref = rule(
        ctx.mpf(K12_CONSTANT),
        1,
        0,
        G,
        G * G,
        x["m"],
        x["v"],
        ctx.mpf(9) / 10,
        ctx.mpf(999) / 1000,
        0,
        0,
        0,
    )[0]

    # The two lambdified versions.
    f_mp = sympy.lambdify(syms, um.dw, modules="mpmath")
    f_np = sympy.lambdify(syms, um.dw)
    out = {}
    with mpmath.workdps(dps):
        args = [mpmath.mpf(text[str(s)]) for s in syms]
        ref_g = mpmath.mpf(ref)
        for key, value in (
            ("mpmath", f_mp(*args)),
            ("numpy", mpmath.mpf(float(f_np(*[float(a) for a in args])))),
        ):
            err = abs(value - ref_g) / abs(ref_g)
            out[key] = float(
                dps + 10 if err == 0 else min(dps + 10, -mpmath.log10(err))
            )
    logger.info("lambdify agreement with mpmath at %d digits: %s", dps, out)
    return out
