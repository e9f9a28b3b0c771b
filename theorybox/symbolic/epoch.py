r"""Epoch maps of per-sample Adam and their limits, derived with sympy.

Freeze :math:`w` inside an epoch and let the moving averages reach their periodic
steady state under the cyclic order :math:`0, 1, \dots, N-1` (theory.md,
"Epoch-wise view"). Write :math:`g_j` for the frozen per-sample gradient
:math:`(\nabla L_j)_k` of one coordinate (in this module only; :mod:`maps` uses
:math:`g_i` for the loss factor), :math:`S = \sum_j g_j`, :math:`Q = \sum_j g_j^2`.
After sample :math:`i`,

.. math::

    m_i = \frac{1-b_1}{1-b_1^N} \sum_j b_1^{(i-j) \bmod N} g_j, \qquad
    v_i = \frac{1-b_2}{1-b_2^N} \sum_j b_2^{(i-j) \bmod N} g_j^2,

so one epoch of Inc-Adam moves the coordinate by :math:`-\eta E` with

.. math::

    E = \sum_i \frac{m_i}{\sqrt{v_i}}
      = C_{inc} \sum_i \frac{\sum_j b_1^{(i-j) \bmod N} g_j}
                            {\sqrt{\sum_j b_2^{(i-j) \bmod N} g_j^2}},
    \qquad C_{inc} = \frac{1-b_1}{1-b_1^N} \sqrt{\frac{1-b_2^N}{1-b_2}},

and :math:`E \to \sqrt{N} S / \sqrt{Q}` as :math:`b_2 \to 1` (AdamProxy).

Every ``derive_*`` function derives its result with sympy (time-limited) and
returns a :class:`Claim` whose checks each carry a 50-digit numeric confirmation
(:func:`theorybox.symbolic.verify.check_identity`). The ``*_numeric`` functions are
the float64 / mpmath evaluators used by the numeric checks.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy

from theorybox.arith.ops import bind_ops
from theorybox.optimizers import rules
from theorybox.symbolic.ops import SympyOps
from theorybox.symbolic.verify import check_identity, time_limited

__all__ = [
    "Claim",
    "adam_proxy_direction",
    "c_inc",
    "derive_b2_limit",
    "derive_clock_conversion",
    "derive_ema_steady_state",
    "derive_epoch_map",
    "derive_full_batch_asymptote",
    "derive_phi_identities",
    "ema_closed_form",
    "ema_steady_state",
    "epoch_map_formula",
    "epoch_map_terms",
    "epoch_map_numeric",
    "b2_limit_errors",
    "gradient_symbols",
    "phi",
    "phi_expr",
    "rademacher_weights",
]

logger = logging.getLogger(__name__)

B1 = sympy.Symbol("b1", positive=True)
B2 = sympy.Symbol("b2", positive=True)
S_SYM = sympy.Symbol("S", real=True)
Q_SYM = sympy.Symbol("Q", positive=True)
N_SYM = sympy.Symbol("N", positive=True, integer=True)
B_SYM = sympy.Symbol("b", positive=True, integer=True)

#: Sampling intervals for the numeric confirmations: moving-average factors in
#: (0, 1) away from both ends, gradients of either sign.
BETA_DOMAIN = (0.05, 0.98)


@dataclass(frozen=True)
class Claim:
    """A derived result and its checks.

    Attributes
    ----------
    name : str
        Short name.
    statement : str
        The claim in words and formulas.
    result : object
        The derived sympy expression(s).
    checks : tuple of IdentityCheck
        Symbolic status and numeric confirmation of each identity.
    data : dict
        Extra measured figures (e.g. error sequences).
    """

    name: str
    statement: str
    result: object
    checks: tuple = ()
    data: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def max_numeric_error(self):
        """Largest numeric disagreement over the checks."""
        return max((c.numeric.max_rel_err for c in self.checks), default=0)


def gradient_symbols(N: int) -> tuple:
    """Frozen per-sample gradients ``g_0 .. g_{N-1}`` of one coordinate (real)."""
    if not isinstance(N, int) or N < 1:
        raise ValueError(f"N = {N!r}; the period needs an integer N >= 1")
    return sympy.symbols(f"g_0:{N}", real=True)


def _domains(symbols, betas=(B1, B2)):
    return {s: BETA_DOMAIN for s in symbols if s in betas}


# Moving averages at their periodic steady state.


def ema_steady_state(beta, values) -> list:
    r"""Solve the cyclic EMA :math:`m_i = \beta m_{i-1} + (1-\beta) x_i`,
    :math:`m_{-1} = m_{N-1}`, for :math:`m_0, \dots, m_{N-1}` (``sympy.linsolve``).
    """
    N = len(values)
    ms = sympy.symbols(f"m_0:{N}")
    equations = [
        ms[i] - beta * ms[(i - 1) % N] - (1 - beta) * values[i] for i in range(N)
    ]
    (solution,) = sympy.linsolve(equations, ms)
    return [sympy.cancel(x) for x in solution]


def ema_closed_form(beta, values) -> list:
    r""":math:`m_i = \frac{1-\beta}{1-\beta^N} \sum_j \beta^{(i-j) \bmod N} x_j`."""
    N = len(values)
    factor = (1 - beta) / (1 - beta**N)
    return [
        factor * sympy.Add(*[beta ** ((i - j) % N) * values[j] for j in range(N)])
        for i in range(N)
    ]


def derive_ema_steady_state(N: int = 3, timeout: float = 5.0, **confirm_kw) -> Claim:
    """Derive the periodic steady state of ``m`` (with ``g_j``, ``b1``) and ``v``
    (with ``g_j^2``, ``b2``) and check it against :func:`ema_closed_form`."""
    gs = gradient_symbols(N)
    checks = []
    solved = {}
    for label, beta, values in (
        ("m", B1, list(gs)),
        ("v", B2, [g**2 for g in gs]),
    ):
        # Solve the recurrence, then compare sample by sample with the formula.
        sol = ema_steady_state(beta, values)
        solved[label] = sol
        syms = [beta, *gs]
        for i, (a, b) in enumerate(
            zip(sol, ema_closed_form(beta, values), strict=True)
        ):
            checks.append(
                check_identity(
                    f"{label}_{i}",
                    a,
                    b,
                    syms,
                    timeout=timeout,
                    simplifier=sympy.cancel,
                    domains=_domains(syms),
                    **confirm_kw,
                )
            )
    return Claim(
        "ema steady state",
        "after sample i: m = (1-b1)/(1-b1^N) sum_j b1^((i-j) mod N) g_j, and v "
        "likewise with g_j^2 and b2",
        solved,
        tuple(checks),
    )


# Inc-Adam's epoch map.


def c_inc(b1, b2, N):
    r""":math:`C_{inc} = \frac{1-b_1}{1-b_1^N}\sqrt{\frac{1-b_2^N}{1-b_2}}`."""
    return (1 - b1) / (1 - b1**N) * sympy.sqrt((1 - b2**N) / (1 - b2))


def epoch_map_terms(gs, b1=B1, b2=B2) -> list:
    r"""The terms :math:`C_{inc} A_i / \sqrt{B_i}` of the epoch map, one per sample."""
    N = len(gs)
    const = c_inc(b1, b2, N)
    terms = []
    for i in range(N):
        a = sympy.Add(*[b1 ** ((i - j) % N) * gs[j] for j in range(N)])
        b = sympy.Add(*[b2 ** ((i - j) % N) * gs[j] ** 2 for j in range(N)])
        terms.append(const * a / sympy.sqrt(b))
    return terms


def epoch_map_formula(gs, b1=B1, b2=B2):
    r""":math:`E = C_{inc} \sum_i A_i / \sqrt{B_i}` (theory.md, Prop. 2.5)."""
    return sympy.Add(*epoch_map_terms(gs, b1, b2))


def derive_epoch_map(N: int = 3, timeout: float = 5.0, **confirm_kw) -> Claim:
    r"""Sum Inc-Adam's steps :math:`m_i / \sqrt{v_i}` (the rule itself, bound to
    sympy, with ``eta = 1``) over one period at the solved steady state and check
    the result against :func:`epoch_map_formula`."""
    gs = gradient_symbols(N)
    ms = ema_steady_state(B1, list(gs))
    vs = ema_steady_state(B2, [g**2 for g in gs])

    # One period of the registered rule: the step at sample i sees m_{i-1}, v_{i-1}.
    # Each term is checked squared (a rational function, so ``cancel`` decides it);
    # the sign and the whole sum are confirmed numerically.
    step = bind_ops(rules.adam_step, SympyOps)
    formula_terms = epoch_map_terms(gs)
    syms = [B1, B2, *gs]
    checks = []
    total = 0
    for i in range(N):
        dw, m_new, v_new = step(
            1, 1, 0, gs[i], gs[i] ** 2, ms[i - 1], vs[i - 1], B1, B2, 0, 0, 0
        )
        total -= dw
        checks.append(
            check_identity(
                f"term {i} squared",
                dw**2,
                formula_terms[i] ** 2,
                syms,
                timeout=timeout,
                simplifier=sympy.cancel,
                domains=_domains(syms),
                **confirm_kw,
            )
        )
    checks.append(
        check_identity(
            "epoch map",
            total,
            sympy.Add(*formula_terms),
            syms,
            simplifier=None,
            domains=_domains(syms),
            **confirm_kw,
        )
    )
    return Claim(
        "inc-adam epoch map",
        "sum_i m_i/sqrt(v_i) = C_inc sum_i A_i/sqrt(B_i), "
        "C_inc = (1-b1)/(1-b1^N) sqrt((1-b2^N)/(1-b2))",
        total,
        tuple(checks),
    )


# The b2 -> 1 limit: AdamProxy.


def b2_limit_errors(N: int = 3, ks=range(1, 11), dps: int = 50, seed: int = 0):
    r"""Relative error :math:`|E(b_2) - \sqrt{N} S/\sqrt{Q}|` along
    :math:`b_2 = 1 - 10^{-k}`, at random ``b1`` and gradients, in mpmath.

    Returns
    -------
    list of (int, mpmath.mpf)
        ``(k, error)``; the error falls like :math:`10^{-k}`.
    """
    rng = np.random.default_rng(seed)
    gs = gradient_symbols(N)
    fn = sympy.lambdify([B1, B2, *gs], epoch_map_formula(gs), modules="mpmath")
    with mpmath.workdps(dps):
        b1 = mpmath.mpf(float(rng.uniform(*BETA_DOMAIN)))
        grads = [mpmath.mpf(float(x)) for x in rng.uniform(-2, 2, N)]
        S, Q = mpmath.fsum(grads), mpmath.fsum(x**2 for x in grads)
        target = mpmath.sqrt(N) * S / mpmath.sqrt(Q)
        out = []
        for k in ks:
            b2 = 1 - mpmath.mpf(10) ** (-k)
            err = abs(fn(b1, b2, *grads) - target) / max(1, abs(target))
            out.append((k, +err))
    return out


def derive_b2_limit(N: int = 3, timeout: float = 10.0, **confirm_kw) -> Claim:
    r"""As :math:`b_2 \to 1`: :math:`(1-b_2^N)/(1-b_2) \to N`,
    :math:`\sum_i b_1^{(i-j) \bmod N} = (1-b_1^N)/(1-b_1)` for every ``j``, and
    :math:`E \to \sqrt{N} S / \sqrt{Q}`, independent of :math:`b_1`.

    The limit of the ratio is taken by ``sympy.limit`` for a symbolic ``N``; the
    epoch map's limit by substituting ``b2 = 1`` into the (continuous) denominators
    and the ratio's limit into :math:`C_{inc}`; both are confirmed numerically, the
    second also along :math:`b_2 = 1 - 10^{-k}` (:func:`b2_limit_errors`).
    """
    checks = []

    # The b2 factor of C_inc, with N symbolic.
    ratio = (1 - B2**N_SYM) / (1 - B2)
    lim = time_limited(sympy.limit, timeout, ratio, B2, 1, "-")
    status = "proved" if lim.status == "done" and lim.value == N_SYM else lim.status
    logger.info("limit (1-b2^N)/(1-b2) as b2 -> 1: %s (%s)", lim.value, status)
    for n in (2, 5, 12):
        checks.append(
            check_identity(
                f"ratio limit N={n}",
                sympy.limit(ratio.subs(N_SYM, n), B2, 1),
                sympy.Integer(n),
                [],
                timeout=timeout,
                n_points=1,
            )
        )

    # The b1 factors cancel: each column of the circulant sums to a geometric sum.
    gs = gradient_symbols(N)
    for j in range(N):
        col = sympy.Add(*[B1 ** ((i - j) % N) for i in range(N)])
        checks.append(
            check_identity(
                f"column sum j={j}",
                col,
                (1 - B1**N) / (1 - B1),
                [B1],
                timeout=timeout,
                simplifier=sympy.cancel,
                domains={B1: BETA_DOMAIN},
                **confirm_kw,
            )
        )

    # The epoch map at b2 = 1 is sqrt(N) S / sqrt(Q).
    S = sympy.Add(*gs)
    Q = sympy.Add(*[g**2 for g in gs])
    at_one = (
        epoch_map_formula(gs)
        .subs(sympy.sqrt((1 - B2**N) / (1 - B2)), sympy.sqrt(N))
        .subs(B2, 1)
    )
    proxy = sympy.sqrt(N) * S / sympy.sqrt(Q)
    syms = [B1, *gs]
    checks.append(
        check_identity(
            "epoch map at b2 = 1",
            at_one,
            proxy,
            syms,
            timeout=timeout,
            domains={B1: BETA_DOMAIN},
            **confirm_kw,
        )
    )
    errors = b2_limit_errors(N)
    return Claim(
        "b2 -> 1 limit",
        "E -> sqrt(N) S / sqrt(Q) as b2 -> 1, for every b1",
        {"ratio_limit": lim.value, "ratio_limit_status": status, "proxy": proxy},
        tuple(checks),
        {"b2_sequence_errors": errors},
    )


def derive_clock_conversion(timeout: float = 5.0) -> Claim:
    r"""One epoch of per-sample Adam (:math:`\sqrt N S/\sqrt Q`) equals
    :math:`N^{3/2}` AdamProxy steps on the mean loss of the same :math:`\eta`.

    The AdamProxy step is the registered rule bound to sympy, with the rule's
    ``G`` the mean gradient :math:`S/N` and ``Q`` the sum of squares.
    """
    eta = sympy.Symbol("eta", positive=True)
    S = sympy.Symbol("S", positive=True)
    (proxy_step,) = bind_ops(rules.adam_proxy_step, SympyOps)(
        eta, 1, 0, S / N_SYM, Q_SYM
    )
    epoch = -eta * sympy.sqrt(N_SYM) * S / sympy.sqrt(Q_SYM)
    ratio = sympy.simplify(epoch / proxy_step)
    check = check_identity(
        "clock",
        ratio,
        N_SYM ** sympy.Rational(3, 2),
        [N_SYM],
        timeout=timeout,
        domains={N_SYM: (1, 100)},
    )
    return Claim(
        "clock conversion",
        "one epoch of per-sample Adam = N^(3/2) AdamProxy mean-loss steps",
        ratio,
        (check,),
    )


# Full-batch Adam under a frozen gradient.


def derive_full_batch_asymptote(t_max: int = 6, timeout: float = 5.0) -> Claim:
    r"""Under a frozen gradient :math:`g` (``eps = 0``, no bias correction), from
    :math:`m_0 = v_0 = 0`: :math:`m_t = (1-b_1^t) g`, :math:`v_t = (1-b_2^t) g^2`,
    so :math:`m_t/\sqrt{v_t} = \frac{1-b_1^t}{\sqrt{1-b_2^t}} \operatorname{sign}(g)
    \to \operatorname{sign}(g)`; the fixed point is :math:`m = g`, :math:`v = g^2`.
    """
    g = sympy.Symbol("g", real=True)
    m, v = sympy.symbols("m v", real=True)
    checks = []

    # Fixed point of the moment updates; sign(g) is decided case by case, with a
    # positive and a negative symbol for g.
    fixed = sympy.solve(
        [m - B1 * m - (1 - B1) * g, v - B2 * v - (1 - B2) * g**2], [m, v]
    )
    ratio = fixed[m] / sympy.sqrt(fixed[v])
    for label, signed, dom in (
        ("g > 0", sympy.Symbol("g", positive=True), (0.01, 3)),
        ("g < 0", sympy.Symbol("g", negative=True), (-3, -0.01)),
    ):
        checks.append(
            check_identity(
                f"fixed-point ratio, {label}",
                ratio.subs(g, signed),
                sympy.sign(signed),
                [signed],
                timeout=timeout,
                domains={signed: dom},
            )
        )

    # The transient, iterating the registered rule symbolically (g > 0).
    gp = sympy.Symbol("g", positive=True)
    step = bind_ops(rules.adam_step, SympyOps)
    mt, vt = sympy.S.Zero, sympy.S.Zero
    for t in range(1, t_max + 1):
        dw, mt, vt = step(1, t, 0, gp, gp**2, mt, vt, B1, B2, 0, 0, 0)
        expected = -(1 - B1**t) / sympy.sqrt(1 - B2**t)
        checks.append(
            check_identity(
                f"transient t={t}",
                dw**2,
                expected**2,
                [B1, B2, gp],
                timeout=timeout,
                simplifier=sympy.cancel,
                domains={B1: BETA_DOMAIN, B2: BETA_DOMAIN},
            )
        )
    t = sympy.Symbol("t", positive=True)
    lim = time_limited(
        sympy.limit,
        timeout,
        (1 - sympy.Rational(9, 10) ** t)
        / sympy.sqrt(1 - sympy.Rational(999, 1000) ** t),
        t,
        sympy.oo,
    )
    return Claim(
        "full-batch asymptote",
        "m/sqrt(v) -> sign(g) under a frozen gradient (eps = 0)",
        {"fixed_point": fixed, "limit_at_b1_0.9_b2_0.999": lim.value},
        tuple(checks),
    )


# The mini-batch proxy Phi_{N,b}.


def phi_expr(N=N_SYM, b=B_SYM, S=S_SYM, Q=Q_SYM):
    r""":math:`\Phi_{N,b} = \sqrt{b(N-1)/N}\, S / \sqrt{(b-1) S^2 + (N-b) Q}`."""
    return sympy.sqrt(b * (N - 1) / N) * S / sympy.sqrt((b - 1) * S**2 + (N - b) * Q)


def derive_phi_identities(timeout: float = 5.0, n_points: int = 20) -> Claim:
    r""":math:`\Phi_{N,N} = \operatorname{sign}(S)`,
    :math:`\Phi_{N,1} = S/(\sqrt N \sqrt Q)`, and

    .. math::

        1 - \Phi_{N,b}^2 = \frac{(N-b)(N Q - S^2)}{N((b-1)S^2 + (N-b)Q)} \ge 0

    whenever :math:`1 \le b \le N` and :math:`S^2 \le N Q` (Cauchy-Schwarz).
    """
    checks = []
    dom = {N_SYM: (2, 50), Q_SYM: (0.1, 4)}

    # The two ends of the batch size.
    for label, signed, sdom in (
        ("S > 0", sympy.Symbol("S", positive=True), (0.01, 3)),
        ("S < 0", sympy.Symbol("S", negative=True), (-3, -0.01)),
    ):
        checks.append(
            check_identity(
                f"Phi_{{N,N}} = sign(S), {label}",
                phi_expr(b=N_SYM, S=signed),
                sympy.sign(signed),
                [N_SYM, signed, Q_SYM],
                timeout=timeout,
                domains={**dom, signed: sdom},
            )
        )
    checks.append(
        check_identity(
            "Phi_{N,1}",
            phi_expr(b=1),
            S_SYM / (sympy.sqrt(N_SYM) * sympy.sqrt(Q_SYM)),
            [N_SYM, S_SYM, Q_SYM],
            timeout=timeout,
            domains=dom,
        )
    )

    # The bound: a factorised form of 1 - Phi^2, checked, then evaluated at points
    # that satisfy Cauchy-Schwarz (S^2 <= N Q) with 1 <= b <= N.
    gap = (
        (N_SYM - B_SYM)
        * (N_SYM * Q_SYM - S_SYM**2)
        / (N_SYM * ((B_SYM - 1) * S_SYM**2 + (N_SYM - B_SYM) * Q_SYM))
    )
    syms = [N_SYM, B_SYM, S_SYM, Q_SYM]

    def sampler(rng):
        n = rng.randint(2, 40)
        b = rng.randint(1, n)
        q = rng.uniform(0.01, 4)
        s = rng.uniform(-1, 1) * (n * q) ** 0.5
        return [n, b, s, q]

    checks.append(
        check_identity(
            "1 - Phi^2 factorised",
            1 - phi_expr() ** 2,
            gap,
            syms,
            timeout=timeout,
            simplifier=sympy.cancel,
            sampler=sampler,
            n_points=n_points,
        )
    )
    f_phi = sympy.lambdify(syms, phi_expr(), modules="mpmath")
    rng = random.Random(1)
    with mpmath.workdps(50):
        # Excess of |Phi| over 1, at 50 digits (b = N gives |Phi| = 1 up to rounding).
        worst = max(abs(f_phi(*map(mpmath.mpf, sampler(rng)))) for _ in range(n_points))
        excess = float(worst - 1)
    return Claim(
        "Phi_{N,b} identities",
        "Phi_{N,N} = sign(S); Phi_{N,1} = S/(sqrt(N) sqrt(Q)); |Phi_{N,b}| <= 1",
        {"phi": phi_expr(), "one_minus_phi_sq": gap},
        tuple(checks),
        {"max_abs_phi_minus_1": excess},
    )


# Numeric evaluators (float64, or mpmath with a private context).


def _circulant_powers(beta, N, ctx=None):
    idx = (np.arange(N)[:, None] - np.arange(N)[None, :]) % N
    if ctx is None:
        return float(beta) ** idx.astype(float)
    b = ctx.mpf(beta)
    return np.array([[b ** int(k) for k in row] for row in idx], dtype=object)


def _as_grads(grads, ctx):
    grads = np.asarray(grads, dtype=object if ctx is not None else float)
    if grads.ndim == 1:
        grads = grads[:, None]
    if grads.ndim != 2 or grads.shape[0] < 1:
        raise ValueError(f"grads must be an (N, d) array; got shape {grads.shape}")
    if ctx is not None:
        grads = np.vectorize(ctx.mpf, otypes=[object])(grads)
    return grads


def epoch_map_numeric(grads, b1: float, b2: float, dps: int | None = None):
    r"""Inc-Adam's steady-state epoch map :math:`E = \sum_i m_i / \sqrt{v_i}`.

    Parameters
    ----------
    grads : array, shape (N, d)
        Frozen per-sample gradients :math:`\nabla L_j`, in cyclic order.
    b1, b2 : float
        Moving-average factors.
    dps : int, optional
        ``None``: float64; otherwise mpmath at ``dps`` digits (private context).

    Returns
    -------
    ndarray, shape (d,)
        One epoch moves :math:`w` by :math:`-\eta E`. Uses ``0 / 0 = 0``.
    """
    ctx = None
    if dps is not None:
        ctx = mpmath.MPContext()
        ctx.dps = dps
    G = _as_grads(grads, ctx)
    N = G.shape[0]

    # Steady-state numerators A_i and denominators B_i, one row per sample i.
    A = _circulant_powers(b1, N, ctx) @ G
    B = _circulant_powers(b2, N, ctx) @ (G * G)
    if ctx is None:
        const = (1 - b1) / (1 - b1**N) * np.sqrt((1 - b2**N) / (1 - b2))
        root = np.sqrt(B)
        ratio = np.divide(A, root, out=np.zeros_like(A), where=root > 0)
        return const * ratio.sum(axis=0)
    b1m, b2m = ctx.mpf(b1), ctx.mpf(b2)
    const = (1 - b1m) / (1 - b1m**N) * ctx.sqrt((1 - b2m**N) / (1 - b2m))
    root = np.vectorize(ctx.sqrt, otypes=[object])(B)
    ratio = np.array(
        [
            [a / r if r != 0 else ctx.mpf(0) for a, r in zip(ra, rr, strict=True)]
            for ra, rr in zip(A, root, strict=True)
        ],
        dtype=object,
    )
    return const * ratio.sum(axis=0)


def adam_proxy_direction(grads, clock: str = "epoch"):
    r"""AdamProxy's displacement direction :math:`S / \sqrt{Q}`, per coordinate.

    Parameters
    ----------
    grads : array, shape (N, d)
        Per-sample gradients.
    clock : {"epoch", "step"}
        ``"epoch"``: :math:`\sqrt{N} S/\sqrt{Q}`, the :math:`b_2 \to 1` limit of one
        epoch of per-sample Adam; ``"step"``: :math:`(1/N) S / \sqrt{Q}`, one
        AdamProxy step on the mean loss. They differ by :math:`N^{3/2}`.
    """
    G = _as_grads(grads, None)
    N = G.shape[0]
    S, Q = G.sum(axis=0), (G * G).sum(axis=0)
    root = np.sqrt(Q)
    base = np.divide(S, root, out=np.zeros_like(S), where=root > 0)
    if clock == "epoch":
        return np.sqrt(N) * base
    if clock == "step":
        return base / N
    raise ValueError(f"clock = {clock!r}; use 'epoch' or 'step'")


def phi(grads, b: int):
    r"""The mini-batch proxy :math:`\Phi_{N,b}` of per-sample gradients.

    ``b`` must divide ``N`` (random reshuffling into ``N/b`` batches). Uses
    ``0 / 0 = 0`` on coordinates with :math:`Q = 0`.
    """
    G = _as_grads(grads, None)
    N = G.shape[0]
    if not (1 <= b <= N and N % b == 0):
        raise ValueError(f"batch size b = {b} must divide N = {N} (1 <= b <= N)")
    S, Q = G.sum(axis=0), (G * G).sum(axis=0)
    den = np.sqrt((b - 1) * S**2 + (N - b) * Q)
    ratio = np.divide(S, den, out=np.zeros_like(S), where=den > 0)
    return np.sqrt(b * (N - 1) / N) * ratio


def rademacher_weights(a, g, b1: float, b2: float):
    r"""Per-sample weights of Inc-Adam's epoch map on generalised-Rademacher data.

    With :math:`|z_{jk}| = a_j` for every coordinate, :math:`(\nabla L_j)_k^2 =
    g_j^2 a_j^2` does not depend on :math:`k`, so every denominator is a scalar
    and

    .. math::

        E = \sum_j \alpha_j \nabla L_j, \qquad
        \alpha_j = C_{inc} \sum_i \frac{b_1^{(i-j) \bmod N}}
                   {\sqrt{\sum_l b_2^{(i-l) \bmod N} g_l^2 a_l^2}} > 0,

    i.e. one epoch is the weighted GD step :math:`-\eta \sum_j \alpha_j \nabla L_j`.

    Parameters
    ----------
    a : array, shape (N,)
        Magnitudes :math:`a_j > 0`.
    g : array, shape (N,)
        Loss factors :math:`g_j > 0` (:math:`\nabla L_j = -g_j z_j`).
    b1, b2 : float
        Moving-average factors in (0, 1).

    Returns
    -------
    ndarray, shape (N,)
    """
    a = np.asarray(a, dtype=float)
    g = np.asarray(g, dtype=float)
    if a.shape != g.shape or a.ndim != 1:
        raise ValueError(f"a and g must be 1-d of one length; got {a.shape}, {g.shape}")
    if np.any(a <= 0) or np.any(g <= 0):
        raise ValueError("a and g must be positive (a_j = |z_jk|, g_j in (0, 1))")
    N = a.size

    # Scalar denominators D_i, then the column sums weighted by 1 / D_i.
    D = np.sqrt(_circulant_powers(b2, N) @ (g * a) ** 2)
    const = (1 - b1) / (1 - b1**N) * np.sqrt((1 - b2**N) / (1 - b2))
    return const * (_circulant_powers(b1, N) / D[:, None]).sum(axis=0)
