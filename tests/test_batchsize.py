"""The mini-batch proxy Phi_{N,b}, its CONJECTURED fixed point, and the b sweep.

Theory.md, section 2 (``Phi_{N,b}``), claim 3 (the dual fixed point) and section 4
(the batch-size sweep). Tolerances are derived from float64's unit roundoff.
"""

import math
import warnings

import numpy as np
import pytest

from theorybox.arith import PythonOps, bind_ops, mpmath_ops
from theorybox.data import load_dataset
from theorybox.engine import run
from theorybox.engine.mp import run_mpmath
from theorybox.errors import InvalidParameterError, TheoryboxWarning
from theorybox.experiments.batchsize import batch_size_sweep, phi_proxy_config
from theorybox.optimizers import RunConfig, Schedule, get_optimizer, rules
from theorybox.proxy import metric_diag, predicted_direction, solve_fixed_point
from theorybox.proxy.batch import (
    batch_metric_diag,
    certify_batch,
    conjectured_batch_prediction,
)
from theorybox.symbolic.epoch import phi

EPS = float(np.finfo(np.float64).eps)

#: The rule forms S = N G, one product, a sum, a root, another root and a
#: division: about eight roundings of EPS / 2 each; 8 EPS leaves room.
RULE_RTOL = 8 * EPS

PHI = bind_ops(rules.phi_proxy_step, PythonOps)

#: Small dense data started past the underflow wall (every margin above 800).
Z_DENSE = np.array(
    [[1.0, 0.2, 0.1], [0.3, 1.0, -0.2], [0.5, 0.4, 1.0], [0.9, -0.1, 0.3]]
)
W0_DENSE = np.array([900.0, 850.0, 820.0])


def _phi_step(grads, b, lr=1.0, s=0.0):
    """``-lr Phi_{N,b}`` per coordinate via the rule, from per-sample gradients."""
    n = grads.shape[0]
    G = grads.mean(axis=0) * math.exp(-s)
    Q = (grads * grads).sum(axis=0) * math.exp(-2 * s)
    return np.array([PHI(lr, 1, s, g, q, n, b)[0] for g, q in zip(G, Q, strict=True)])


def _small_instance():
    data = load_dataset("gaussian", n=10, d=5, seed=0)
    return data.Z / np.abs(data.Z).max()


# Phi_{N,b} as an update rule: the symbolic evaluator and the two ends of b.


@pytest.mark.parametrize("n,b", [(4, 1), (4, 2), (4, 4), (12, 3), (12, 6), (20, 5)])
def test_rule_matches_symbolic_phi(n, b):
    rng = np.random.default_rng(n * 100 + b)
    grads = rng.normal(size=(n, 7))
    want = -phi(grads, b)
    got = _phi_step(grads, b)
    assert np.abs(got - want).max() <= RULE_RTOL * np.abs(want).max()


def test_rule_is_scale_free_in_s():
    """True values are G e^s and Q e^{2s}: passing scaled inputs changes nothing."""
    rng = np.random.default_rng(1)
    grads = rng.normal(size=(6, 5))
    base = _phi_step(grads, 3)
    for s in (-300.0, -30.0, 40.0, 300.0):
        assert np.abs(_phi_step(grads, 3, s=s) - base).max() <= RULE_RTOL


def test_phi_nn_is_sign_and_phi_n1_is_adam_proxy():
    rng = np.random.default_rng(2)
    n = 9
    grads = rng.normal(size=(n, 6))
    S, Q = grads.sum(axis=0), (grads * grads).sum(axis=0)
    assert np.abs(-_phi_step(grads, n) - np.sign(S)).max() <= RULE_RTOL
    want = S / (math.sqrt(n) * np.sqrt(Q))
    assert np.abs(-_phi_step(grads, 1) - want).max() <= RULE_RTOL * np.abs(want).max()


def test_rule_zero_over_zero_and_bound():
    """0/0 = 0, and |Phi| <= 1 up to rounding (Cauchy-Schwarz, theory.md)."""
    assert PHI(0.1, 1, 0.0, 0.0, 0.0, 10, 3) == (-0.0,)
    rng = np.random.default_rng(3)
    for n, b in [(10, 2), (10, 5), (6, 6), (30, 1)]:
        grads = rng.normal(size=(n, 50)) * rng.uniform(0, 3, size=(n, 1))
        assert np.abs(_phi_step(grads, b)).max() <= 1.0 + RULE_RTOL


def test_rule_mpmath_keeps_integer_hyperparameters_exact():
    """On mpmath the factor sqrt(b (N - 1)) is formed from integers (no float)."""
    import mpmath

    ctx = mpmath.MPContext()
    ctx.dps = 50
    rule = bind_ops(rules.phi_proxy_step, mpmath_ops(ctx))
    G, Q = ctx.mpf(1) / 3, ctx.mpf(2) / 7
    (dw,) = rule(ctx.mpf(1), 1, 0, G, Q, 20, 5)
    S = 20 * G
    want = -ctx.sqrt(ctx.mpf(5) * 19 / 20) * S / ctx.sqrt(4 * S**2 + 15 * Q)
    assert abs(dw - want) <= ctx.mpf(10) ** -45 * abs(want)


def test_registry_checks_n_and_b():
    spec = get_optimizer("phi-proxy")
    assert spec.scheme == "full" and set(spec.hyper) == {"n", "b"}
    for bad in (
        {"n": 10, "b": 0},
        {"n": 10, "b": 11},
        {"n": 10, "b": 2.5},
        {"n": 1, "b": 1},
        {"n": 7.5, "b": 1},
    ):
        with pytest.raises(InvalidParameterError):
            RunConfig("phi-proxy", 10, hyper=bad)
    with pytest.warns(TheoryboxWarning, match="does not divide"):
        RunConfig("phi-proxy", 10, hyper={"n": 10, "b": 3})
    with pytest.raises(InvalidParameterError, match="n must equal N"):
        phi_proxy_config(Z_DENSE, 2, 10, hyper={"n": 5})
    assert phi_proxy_config(Z_DENSE, 2, 10).hyper == {"n": 4, "b": 2}


# Phi_{N,b} in the engine: the two ends of b, and mpmath past the wall.


def test_engine_phi_nn_is_signgd_step_for_step():
    """|Phi_{N,N}| = 1 up to a few roundings, so the iterates differ by at most
    RULE_RTOL * sum_t eta_t per coordinate (plus the rounding of w + dw)."""
    Z, n, steps = Z_DENSE, 4, 300
    sched = Schedule(0.1, 1.0, 0.5)
    checkpoints = [1, 10, 100, 300]
    a = run(
        Z,
        phi_proxy_config(Z, n, steps, sched),
        checkpoints=checkpoints,
        metrics=lambda Z, w, t: {"w": w.copy()},
    )
    s = run(
        Z,
        RunConfig("signgd", steps, schedule=sched),
        checkpoints=checkpoints,
        metrics=lambda Z, w, t: {"w": w.copy()},
    )
    eta_sum = sum(sched(t) for t in range(steps))
    for ra, rs in zip(a.metrics, s.metrics, strict=True):
        tol = RULE_RTOL * eta_sum + 2 * EPS * steps * np.abs(rs["w"]).max()
        assert np.abs(ra["w"] - rs["w"]).max() <= tol


def test_engine_phi_n1_is_adamproxy_up_to_the_clock():
    """Phi_{N,1} = sqrt(N) G / sqrt(Q): phi-proxy with eta0 / sqrt(N) is AdamProxy
    with eta0, step for step."""
    Z, n, steps = Z_DENSE, 4, 300
    a = run(
        Z,
        phi_proxy_config(Z, 1, steps, Schedule(0.1 / math.sqrt(n), 1.0, 0.5)),
        checkpoints=[steps],
    )
    p = run(
        Z,
        RunConfig("adamproxy", steps, schedule=Schedule(0.1, 1.0, 0.5)),
        checkpoints=[steps],
    )
    tol = 4 * EPS * steps * max(1.0, float(np.abs(p.w).max()))
    assert np.abs(a.w - p.w).max() <= tol


@pytest.mark.parametrize("b", [1, 2, 4])
def test_engine_agrees_with_mpmath_past_the_wall(b):
    """Start with margins above 800 (exp underflows in float64). Tolerance
    4 EPS T max|w| as in test_backends: each step rounds w + dw (EPS/2 |w|) and
    forms dw to RULE_RTOL relative with |dw| << |w|."""
    Z, w0, steps = Z_DENSE, W0_DENSE, 200
    assert (Z @ w0).min() > 800
    config = phi_proxy_config(Z, b, steps, Schedule(0.1, 1.0, 0.5))
    mp = run_mpmath(Z, config, w0=w0, dps=60, hyper_as="binary")
    result = run(Z, config, w0=w0, checkpoints=[steps])
    want = mp.as_float()
    assert result.status == "ok"
    assert np.abs(result.w - w0).max() > 1.0  # it moved, past the wall
    tol = 4 * EPS * steps * float(np.abs(want).max())
    assert np.abs(result.w - want).max() <= tol


# The CONJECTURED fixed point.


def test_conjectured_metric_ends():
    """M_1 = sqrt(N - 1) M (claim 3's metric) and M_N = sqrt(N - 1) |h|."""
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(7, 4))
    c = rng.dirichlet(np.ones(7))
    m1 = batch_metric_diag(Z, c, 1)
    assert np.allclose(m1, math.sqrt(6) * metric_diag(Z, c), rtol=4 * EPS, atol=0)
    mn = batch_metric_diag(Z, c, 7)
    assert np.allclose(mn, math.sqrt(6) * np.abs(c @ Z), rtol=4 * EPS, atol=0)
    with pytest.raises(InvalidParameterError):
        batch_metric_diag(Z, c, 8)


def test_conjecture_at_b1_is_the_proxy_fixed_point():
    Z = _small_instance()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TheoryboxWarning)
        want = predicted_direction(solve_fixed_point(Z, n_starts=1))
        pred = conjectured_batch_prediction(Z, 1, n_starts=1)
    assert pred.label == "CONJECTURE" and pred.certified
    assert 1.0 - pred.w @ want <= 1e-9


@pytest.mark.parametrize("b", [2, 5])
def test_conjectured_fixed_point_is_certified(b):
    """Where the iteration converges its point passes the M_b certificate, and a
    wrong direction (the b = 1 prediction) does not."""
    Z = _small_instance()
    pred = conjectured_batch_prediction(Z, b, n_starts=1)
    assert pred.converged
    point = pred.points[0]
    cert = point.certificate
    assert cert.ok and cert.alpha > 0
    assert cert.stationarity <= cert.tolerance
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TheoryboxWarning)
        other = conjectured_batch_prediction(Z, 1, n_starts=0).points[0]
    if 1.0 - other.w @ point.w > 1e-6:
        assert not certify_batch(Z, other.w, point.c, b).ok


# The sweep: from the per-sample prediction (b = 1) to l_inf (b = N).


def test_sweep_moves_from_the_prediction_to_linf():
    """Horizon: 2,000 epochs (b = 1: 20,000 Adam steps; b = N: 2,000), eta_t =
    0.1 (t + 1)^{-1/2}, b1 = 0.9, b2 = 0.999, on gaussian(n=10, d=5, seed=0)."""
    Z = _small_instance()
    n = Z.shape[0]
    sweep = batch_size_sweep(Z, bs=(1, n), epochs=2_000, conjecture=False)
    first, last = sweep.rows
    assert (first["b"], last["b"]) == (1, n)
    assert last["adam_gap_inf"] < first["adam_gap_inf"]
    assert first["adam_dist_pred1"] < last["adam_dist_pred1"]
    assert last["phi_gap_inf"] < first["phi_gap_inf"]
    assert first["phi_dist_pred1"] < last["phi_dist_pred1"]


@pytest.mark.slow
def test_conjecture_at_b_equal_n_lies_on_the_linf_face():
    """M_N(c) = sqrt(N - 1) |h(c)| makes stationarity the l_inf KKT condition."""
    from theorybox.metrics import direction_distance
    from theorybox.references import compute_references, project_to_face

    Z = _small_instance()
    refs = compute_references(Z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TheoryboxWarning)
        pred = conjectured_batch_prediction(Z, Z.shape[0], n_starts=2, max_iter=300)
    assert pred.certified
    u = pred.w
    assert direction_distance(u, project_to_face(refs.face, u)) <= 1e-8


@pytest.mark.slow
def test_run_batch_experiment_quick_rows_and_records():
    from theorybox.experiments.batchsize import TABLE_COLUMNS, run_batch_experiment

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TheoryboxWarning)
        rows, records, series = run_batch_experiment(quick=True, epochs=200)
    assert [r["b"] for r in rows] == [1, 2, 5, 10, 20]
    assert list(rows[0])[: len(TABLE_COLUMNS)] == list(TABLE_COLUMNS)
    assert all(r.kind == "sweep-row" for r in records) and len(records) == 5
    assert any("CONJECTURE" in note for note in records[0].notes)
    assert len(series) == 10
