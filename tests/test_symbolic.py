"""Symbolic maps and epoch maps (issue 3, items 3 and 4; cases.md K12).

Each symbolic result is tied to numbers: the symbolic update maps against the same
rule on Python floats, the EMA steady state and the epoch map against simulations
of the rule over many periods, the b2 -> 1 limit along a sequence of b2, and the
Rademacher weights as code against the direct epoch map. Tolerances follow
float64's unit roundoff or the mpmath working precision.
"""

import math
import random
import time

import mpmath
import numpy as np
import pytest
import sympy

from theorybox.arith import PythonOps, bind_ops
from theorybox.optimizers import rules
from theorybox.optimizers.registry import get_optimizer
from theorybox.symbolic import (
    SympyOpsPiecewise,
    adam_proxy_direction,
    check_identity,
    confirm,
    derive_b2_limit,
    derive_clock_conversion,
    derive_ema_steady_state,
    derive_epoch_map,
    derive_full_batch_asymptote,
    derive_phi_identities,
    ema_closed_form,
    epoch_map_numeric,
    lambdify_agreement,
    phi,
    rademacher_weights,
    sympy_ops,
    time_limited,
    update_map,
)
from theorybox.symbolic.epoch import B1, gradient_symbols

EPS = 2.0**-52
#: A handful of rounded operations per evaluation, as in test_rules.
RTOL = 16 * EPS


def _assert_claim(claim, proved=None):
    assert claim.ok, [(c.name, c.numeric) for c in claim.checks]
    for check in claim.checks:
        assert check.numeric.max_rel_err <= check.numeric.rtol
        if proved is not None and check.name in proved:
            assert check.symbolic == "proved", check


# The sympy ops namespace and the time limit.


def test_sympy_ops_namespace():
    a, b = sympy.symbols("a b")
    assert SympyOpsPiecewise.div0(a, sympy.S.Zero) == 0
    assert sympy_ops().div0(a, b) == a / b
    assert sympy_ops().mulexp(a, 0) == a
    with pytest.raises(ValueError, match="div0"):
        sympy_ops("nan")


def test_time_limited_reports_timeout_and_errors():
    assert time_limited(time.sleep, 0.05, 2).status == "timeout"
    res = time_limited(lambda: 1 / 0, 1.0)
    assert res.status == "error" and "ZeroDivisionError" in res.error
    assert time_limited(sympy.cancel, 5.0, (B1**2 - 1) / (B1 - 1)).value == B1 + 1


def test_confirm_rejects_a_false_identity():
    x = sympy.Symbol("x", real=True)
    bad = check_identity(
        "sqrt(x^2) = x", sympy.sqrt(x**2), x, [x], domains={x: (-2, -1)}
    )
    assert not bad.ok
    good = confirm(sympy.sqrt(x**2), -x, [x], domains={x: (-2, -1)})
    assert good.ok and good.max_rel_err <= good.rtol


# Update maps from the rule definitions.


def test_update_map_is_printable():
    um = update_map("adam-ps")
    text = str(um)
    assert "dw =" in text and "m' =" in text and "v' =" in text
    assert um.latex().startswith("\\begin{aligned}") and "\\Delta w" in um.latex()
    assert set(um.hyper) == set(get_optimizer("adam-ps").hyper)
    symbolic_n = update_map("adam", per_sample=False)
    assert "Sum" in str(symbolic_n) and symbolic_n.N == sympy.Symbol(
        "N", positive=True, integer=True
    )
    with pytest.raises(ValueError, match="no hyperparameter"):
        update_map("adam", hyper={"beta": 0.5})


@pytest.mark.parametrize(
    ("name", "per_sample"),
    [
        ("adam-ps", True),
        ("adam", False),
        ("adamproxy", False),
        ("signum", True),
        ("gd", False),
    ],
)
def test_symbolic_map_matches_python_rule(name, per_sample):
    spec = get_optimizer(name)
    N = 3
    um = update_map(name, per_sample=per_sample, N=N)
    rule = bind_ops(spec.rule, PythonOps)
    rng = random.Random(7)
    for _ in range(5):
        # Random data, moments and real hyperparameters.
        vals = {s: rng.uniform(0.05, 1.0) for s in um.free_symbols}
        for s in um.free_symbols:
            if s.name.startswith("z"):
                vals[s] = rng.uniform(-2, 2)
            if s.name == "m":
                vals[s] = rng.uniform(-1, 1)
        hyper = {
            k: (vals[v] if isinstance(v, sympy.Symbol) else float(v))
            for k, v in um.hyper.items()
        }
        for k in ("eps_mode", "bias_correction"):
            if k in hyper:
                hyper[k] = int(hyper[k])
        G = float(um.G.subs(vals))
        Q = float(um.Q.subs(vals))
        state = [vals.get(s, 0.0) for s in um.state_symbols.values()]
        eta = vals.get(sympy.Symbol("eta", positive=True), 1.0)

        # The same rule on Python floats.
        out = rule(eta, 1, 0.0, G, Q, *state, *hyper.values())
        syms = sorted(um.free_symbols, key=str)
        exprs = [um.dw, *um.new_state.values()]
        for expr, number in zip(exprs, out, strict=True):
            got = float(
                sympy.lambdify(syms, expr, modules="mpmath")(*[vals[s] for s in syms])
            )
            assert got == pytest.approx(number, rel=RTOL, abs=RTOL)


# The EMA steady state.


def test_ema_steady_state_claim():
    claim = derive_ema_steady_state(N=4)
    _assert_claim(claim, proved={c.name for c in claim.checks})


def test_ema_steady_state_matches_cyclic_simulation():
    N, beta, periods = 5, 0.8, 60
    rng = np.random.default_rng(3)
    grads = rng.uniform(-1, 1, N)
    gs = gradient_symbols(N)
    formula = [
        float(e.subs({B1: beta, **dict(zip(gs, grads, strict=True))}))
        for e in ema_closed_form(B1, list(gs))
    ]

    # Simulate m_i = beta m_{i-1} + (1 - beta) g_i from m = 0 for many periods.
    m, last = 0.0, []
    for _ in range(periods):
        last = []
        for gi in grads:
            m = beta * m + (1 - beta) * gi
            last.append(m)

    # Transient beta^(N periods) times the scale, plus rounding of N*periods steps.
    tol = beta ** (N * periods) * np.abs(grads).max() + 4 * N * EPS / (1 - beta)
    assert np.max(np.abs(np.array(last) - formula)) <= tol


# Inc-Adam's epoch map.


def test_epoch_map_claim():
    claim = derive_epoch_map(N=3)
    _assert_claim(claim, proved={"term 0 squared", "term 1 squared", "term 2 squared"})


def test_epoch_map_matches_simulated_inc_adam():
    N, d, b1, b2, periods = 4, 3, 0.7, 0.8, 200
    rng = np.random.default_rng(11)
    grads = rng.normal(size=(N, d))
    step = bind_ops(rules.adam_step, PythonOps)
    total = np.zeros(d)
    for k in range(d):
        m = v = 0.0
        for p in range(periods):
            for i in range(N):
                dw, m, v = step(
                    1.0, 1, 0.0, grads[i, k], grads[i, k] ** 2, m, v, b1, b2, 0.0, 0, 0
                )
                if p == periods - 1:
                    total[k] -= dw
    predicted = epoch_map_numeric(grads, b1, b2)
    # The transient decays like b2^(N periods) (b1 < b2); the rest is rounding.
    tol = N * (b2 ** (N * periods) + 64 * EPS) * np.abs(predicted).max()
    assert np.max(np.abs(total - predicted)) <= tol
    hi = epoch_map_numeric(grads, b1, b2, dps=40)
    assert np.max(np.abs(np.array(hi, dtype=float) - predicted)) <= 64 * N * EPS


# The b2 -> 1 limit and the clocks.


def test_b2_limit_claim_and_sequence():
    claim = derive_b2_limit(N=3)
    _assert_claim(claim, proved={"epoch map at b2 = 1", "column sum j=0"})
    errors = [float(e) for _, e in claim.data["b2_sequence_errors"]]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False))
    # The error is first order in 1 - b2.
    for k, err in claim.data["b2_sequence_errors"]:
        assert err <= 10.0 ** (1 - k)


def test_b2_limit_is_adam_proxy_for_any_b1():
    rng = np.random.default_rng(5)
    grads = rng.normal(size=(6, 4))
    target = adam_proxy_direction(grads)
    for b1 in (0.1, 0.5, 0.9):
        got = np.array(epoch_map_numeric(grads, b1, "0.999999999999", dps=40), float)
        np.testing.assert_allclose(got, target, rtol=1e-10)


def test_clock_conversion():
    claim = derive_clock_conversion()
    _assert_claim(claim, proved={"clock"})
    grads = np.random.default_rng(1).normal(size=(7, 3))
    ratio = adam_proxy_direction(grads, "epoch") / adam_proxy_direction(grads, "step")
    np.testing.assert_allclose(ratio, 7**1.5, rtol=RTOL)


# Full-batch Adam and the mini-batch proxy.


def test_full_batch_asymptote():
    claim = derive_full_batch_asymptote(t_max=5)
    _assert_claim(claim, proved={c.name for c in claim.checks})
    step = bind_ops(rules.adam_step, PythonOps)
    for g in (0.3, -2e-7):
        m = v = 0.0
        for _ in range(30000):
            dw, m, v = step(1.0, 1, 0.0, g, g * g, m, v, 0.9, 0.999, 0.0, 0, 0)
        # |dw + sign(g)| <= |1 - (1 - b1^t)/sqrt(1 - b2^t)| ~ b2^t / 2 at t = 3e4.
        assert abs(dw + math.copysign(1, g)) <= 0.999**30000


def test_phi_identities():
    claim = derive_phi_identities()
    _assert_claim(claim)
    # Within the 50-digit working precision of the check.
    assert claim.data["max_abs_phi_minus_1"] <= 1e-45
    rng = np.random.default_rng(2)
    for N in (2, 6, 12):
        grads = rng.normal(size=(N, 5))
        S = grads.sum(0)
        np.testing.assert_allclose(phi(grads, N), np.sign(S), rtol=4 * EPS)
        np.testing.assert_allclose(
            phi(grads, 1), adam_proxy_direction(grads) / N, rtol=8 * EPS
        )
        for b in range(1, N + 1):
            if N % b == 0:
                assert np.abs(phi(grads, b)).max() <= 1 + 4 * EPS
    with pytest.raises(ValueError, match="divide"):
        phi(grads, 5)


# Generalised-Rademacher data.


@pytest.mark.parametrize("seed", range(4))
def test_rademacher_weights_reproduce_epoch_map(seed):
    rng = np.random.default_rng(seed)
    N, d = int(rng.integers(2, 9)), int(rng.integers(1, 6))
    a = rng.uniform(0.2, 3, N)
    g = rng.uniform(0.01, 1, N)
    signs = rng.choice([-1.0, 1.0], size=(N, d))
    z = a[:, None] * signs
    grads = -g[:, None] * z
    b1, b2 = rng.uniform(0.1, 0.9), rng.uniform(0.9, 0.999)
    alpha = rademacher_weights(a, g, b1, b2)
    assert np.all(alpha > 0)
    direct = epoch_map_numeric(grads, b1, b2)
    np.testing.assert_allclose(alpha @ grads, direct, rtol=64 * N * EPS, atol=0)
    hi = np.array(epoch_map_numeric(grads, b1, b2, dps=40), dtype=float)
    np.testing.assert_allclose(alpha @ grads, hi, rtol=64 * N * EPS)


# cases.md K12.


def test_k12_lambdify_keeps_precision_only_with_mpmath():
    digits = lambdify_agreement(dps=50)
    assert digits["mpmath"] >= 45
    # Documented hazard: the default module is float64.
    assert 13 <= digits["numpy"] <= 17
    assert mpmath.mp.prec == 53
