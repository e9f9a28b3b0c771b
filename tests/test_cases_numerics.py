"""The numerical cases of cases.md (K1, K2, K3, K4, K6, K17) with their numbers.

theorybox's ``G`` is the gradient of the *mean* loss over the batch, so the
"mean-loss gradient" of a case is what the engine sees with full batching.
Values printed in a case are checked to half a unit in their last digit shown.
"""

import math
import warnings
from decimal import Decimal

import mpmath
import numpy as np
import pytest

from theorybox.engine import EngineState, advance, run
from theorybox.engine.mp import run_mpmath
from theorybox.errors import PrecisionWarning
from theorybox.losses import log_weight
from theorybox.optimizers import Batching, RunConfig, Schedule, list_optimizers, rules

EPS = float(np.finfo(np.float64).eps)


def half_unit(text):
    """Half a unit in the last digit of a printed number: its implied tolerance."""
    return 0.5 * 10.0 ** Decimal(text).as_tuple().exponent


def ulp(x):
    return math.ulp(float(x))


def const(lr):
    return Schedule(lr, 1.0, 0.0)


def one_step(Z, optimizer, w0, lr, hyper=None, batching=None):
    """The engine's first step dw (and the new iterate) from w0."""
    config = RunConfig(optimizer, 1, hyper=hyper or {}, batching=batching,
                       schedule=const(lr))
    state = EngineState.initial(np.asarray(w0, dtype=np.float64),
                                len(config.spec.state))
    dw = advance(Z, config, state, 1)[0].copy()
    return dw, state.w[0].copy()


def mean_gradient(Z, w):
    """grad L(w) = -(1/N) sum_i g_i z_i, with g_i from the log-domain weights."""
    g = np.exp(log_weight(Z @ w))
    return -(g[:, None] * Z).mean(axis=0)


ADAM_THEORY = {"b1": 0.9, "b2": 0.999, "eps": 0.0, "bias_correction": 0}


# K1. Gradient exactly zero or NaN at large margins.

Z_K1 = np.array([[800.0, 0.0], [790.0, 10.0]])
W0_K1 = np.array([1.0, 0.0])


def test_k1_signgd_step():
    _, w1 = one_step(Z_K1, "signgd", W0_K1, 0.01)
    assert w1.tolist() == [1.0 + 0.01, 0.01]
    assert abs(w1[0] - 1.01) <= ulp(1.01)


def test_k1_adam_step_is_finite_and_full_size():
    dw, w1 = one_step(Z_K1, "adam", W0_K1, 0.01, hyper=ADAM_THEORY)
    assert np.isfinite(w1).all()
    for k in range(2):
        assert abs(dw[k] - 0.0316227766) <= half_unit("0.0316227766")


def test_k1_gd_reports_that_it_cannot_move():
    """exp(-790) underflows; GD with lr 1 cannot change w = (1, 0) in float64, and
    the result says so, with the first such step (0-based, as in Schedule)."""
    config = RunConfig("gd", 25, schedule=Schedule(1.0, 1, 0))
    with pytest.warns(PrecisionWarning, match="step 0"):
        result = run(Z_K1, config, w0=W0_K1)
    assert result.status == "stalled"
    assert result.stall_step == 0
    assert result.stall_count == 25
    assert result.w.tolist() == W0_K1.tolist()
    assert any("step 0" in message for message in result.messages)


def test_k1_normalised_gradient_direction():
    """-grad L / ||grad L|| = (0.9999199, 0.0126566), from the log-domain weights
    (the raw gradient underflows to 0) and, independently, at 30 digits."""
    lg = log_weight(Z_K1 @ W0_K1)
    direction = (np.exp(lg - lg.max())[:, None] * Z_K1).sum(axis=0)
    direction /= np.linalg.norm(direction)
    expected = (0.9999199, 0.0126566)
    assert np.abs(direction - expected).max() <= 1e-6

    ctx = mpmath.MPContext()
    ctx.dps = 30
    g = [1 / (1 + ctx.exp(ctx.mpf(s))) for s in (800, 790)]
    grad = [-(g[0] * 800 + g[1] * 790) / 2, -(g[1] * 10) / 2]
    norm = ctx.sqrt(grad[0] ** 2 + grad[1] ** 2)
    assert grad[0] != 0
    for k in range(2):
        assert abs(float(-grad[k] / norm) - direction[k]) <= 4 * EPS
        assert abs(float(-grad[k] / norm) - expected[k]) <= half_unit("0.0126566")
    assert math.exp(-800.0) == 0.0  # the hazard itself


BUILTIN = ["gd", "sgd", "signgd", "signum", "adam", "adam-ps", "adam-mb", "adamproxy"]


def test_builtin_list_is_the_registry():
    assert set(BUILTIN) <= set(list_optimizers())


@pytest.mark.parametrize("optimizer", BUILTIN)
def test_k1_no_nan_at_margins_of_1e5(optimizer):
    """Margins of +1e5 and -1e5 (w0 misclassifies one sample badly): no entry
    point returns NaN, on the engine or on mpmath."""
    Z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    w0 = np.array([1e5, -1e5 - 5.0])
    batching = Batching("reshuffle", 2) if optimizer == "adam-mb" else None
    config = RunConfig(optimizer, 6, batching=batching, schedule=const(0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        result = run(Z, config, w0=w0, checkpoints=range(1, 7))
    assert result.status != "nonfinite"
    assert all(np.isfinite(row["w"]).all() for row in result.metrics)
    assert np.isfinite(result.state.moments).all()
    mp = run_mpmath(Z, config, w0=w0, dps=30)
    assert all(mpmath.isfinite(x) for x in mp.w)


# K2. Cancellation near margin 37.


def test_k2_weight_at_40():
    value = float(np.exp(log_weight(40.0)))
    assert abs(value - 4.248354255291589e-18) <= 1e-15 * 4.248354255291589e-18
    assert np.exp(log_weight(37.5)) != 0.0
    # The naive sigmoid(s) - 1 form cancels to exactly 0 here.
    assert 1.0 / (1.0 + math.exp(-37.5)) - 1.0 == 0.0


Z_K2 = np.eye(2)
W0_K2 = np.array([38.0, 40.0])


def test_k2_mean_gradient_is_not_zero():
    grad = mean_gradient(Z_K2, W0_K2)
    for got, text in zip(grad, ("-1.570e-17", "-2.124e-18"), strict=True):
        assert abs(got - float(text)) <= half_unit(text)
    # The engine's GD step is exactly -lr times it (lr = 1: exact).
    dw, _ = one_step(Z_K2, "gd", W0_K2, 1.0)
    np.testing.assert_allclose(dw, -grad, rtol=4 * EPS, atol=0)


def test_k2_sign_adam_and_proxy_move():
    _, w1 = one_step(Z_K2, "signgd", W0_K2, 0.1)
    assert abs(w1[0] - 38.1) <= ulp(38.1)
    assert abs(w1[1] - 40.1) <= ulp(40.1)

    lr = 0.1
    dw, _ = one_step(Z_K2, "adam", W0_K2, lr, hyper=ADAM_THEORY)
    for k in range(2):
        assert abs(dw[k] / lr - 3.16227766) <= half_unit("3.16227766")

    # AdamProxy: G_k = -g_k / 2 and Q_k = g_k^2, so each coordinate moves lr / 2.
    dw, w1 = one_step(Z_K2, "adamproxy", W0_K2, lr)
    np.testing.assert_allclose(dw, [lr / 2, lr / 2], rtol=4 * EPS, atol=0)
    assert (w1 > W0_K2).all()


# K3. The tie point s = 0.


def test_k3_gd_from_zero():
    Z = np.array([[1.0, 2.0], [3.0, -1.0]])
    dw, w1 = one_step(Z, "gd", np.zeros(2), 1.0)
    assert mean_gradient(Z, np.zeros(2)).tolist() == [-1.0, -0.25]
    assert dw.tolist() == [1.0, 0.25]
    assert w1.tolist() == [1.0, 0.25]


def test_k3_log_weight_at_zero():
    assert float(log_weight(0.0)) == math.log(0.5)
    assert float(log_weight(-0.0)) == math.log(0.5)


# K4. 0/0 in Adam, and v underflowing before m.


def test_k4_convention_is_documented():
    assert "0 / 0 = 0" in rules.__doc__
    assert "sign(0) = 0" in rules.__doc__


@pytest.mark.parametrize("bias_correction", [0, 1])
@pytest.mark.parametrize("optimizer", ["adam", "adam-ps"])
def test_k4_zero_column_stays_zero(optimizer, bias_correction):
    Z = np.array([[1.0, 0.0], [2.0, 0.0]])
    config = RunConfig(optimizer, 10_000,
                       hyper={**ADAM_THEORY, "bias_correction": bias_correction},
                       schedule=Schedule(0.1, 1.0, 0.5))
    result = run(Z, config)
    assert result.status == "ok"
    for row in result.metrics:
        assert row["w"][1] == 0.0
        assert np.isfinite(row["w"]).all()
    assert np.isfinite(result.state.moments).all()
    assert (result.state.moments[0, :, 1] == 0.0).all()
    assert result.w[0] > 1.0


Z_K4 = np.array([[100.0, 1.0]])
W0_K4 = np.array([4.0, 0.0])

#: (1 - b1) / sqrt(1 - b2) for the binary floats 0.9 and 0.999, and for the decimals.
RATIO_BINARY = 3.1622776601683773
RATIO_DECIMAL_TEXT = "3.16227766016837933"


def test_k4_hazard_in_plain_float64():
    g = 1.0 / (1.0 + math.exp(400.0)) * 100.0
    assert 1e-173 < g < 1e-171
    assert g * g == 0.0


@pytest.mark.parametrize("optimizer", ["adam", "adam-ps"])
def test_k4_first_step_ratio_float64(optimizer):
    """dw / lr = (1-b1)/sqrt(1-b2) per coordinate at margin 400 (bias correction
    off), for the binary b1, b2 the engine computes with: within 2 ulps, which
    excludes the decimal value 5 ulps away; and 1 with bias correction on."""
    lr = 1.0
    dw, _ = one_step(Z_K4, optimizer, W0_K4, lr, hyper=ADAM_THEORY)
    for k in range(2):
        assert abs(dw[k] / lr - RATIO_BINARY) <= 2 * ulp(RATIO_BINARY)
    assert abs(float(RATIO_DECIMAL_TEXT) - RATIO_BINARY) > 4 * ulp(RATIO_BINARY)

    dw, _ = one_step(Z_K4, optimizer, W0_K4, lr,
                     hyper={**ADAM_THEORY, "bias_correction": 1})
    for k in range(2):
        assert abs(dw[k] / lr - 1.0) <= 2 * EPS


def test_k4_first_step_ratio_mpmath():
    """At 30 digits: the decimal hyperparameters give 3.16227766016837933...,
    the binary ones the float64 value; the run records which."""
    config = RunConfig("adam", 1, hyper=ADAM_THEORY, schedule=const(1.0))
    dec = run_mpmath(Z_K4, config, w0=W0_K4, dps=30, hyper_as="decimal")
    binary = run_mpmath(Z_K4, config, w0=W0_K4, dps=30, hyper_as="binary")
    assert dec.hyper_as == "decimal"
    assert binary.hyper_as == "binary"

    ctx = mpmath.MPContext()
    ctx.dps = 30
    tol = ctx.mpf(10) ** -27
    exact_dec = (1 - ctx.mpf("0.9")) / ctx.sqrt(1 - ctx.mpf("0.999"))
    exact_bin = (1 - ctx.mpf(0.9)) / ctx.sqrt(1 - ctx.mpf(0.999))
    for k in range(2):
        step_dec = dec.w[k] - W0_K4[k]
        step_bin = binary.w[k] - W0_K4[k]
        assert abs(step_dec - exact_dec) <= tol
        assert abs(step_dec - ctx.mpf(RATIO_DECIMAL_TEXT)) <= half_unit(
            RATIO_DECIMAL_TEXT
        )
        assert abs(step_bin - exact_bin) <= tol
        assert float(step_bin) == RATIO_BINARY

    config_bc = RunConfig("adam", 1, hyper={**ADAM_THEORY, "bias_correction": 1},
                          schedule=const(1.0))
    bc = run_mpmath(Z_K4, config_bc, w0=W0_K4, dps=30)
    for k in range(2):
        assert abs(bc.w[k] - W0_K4[k] - 1) <= tol


# K6. sign(0).


def test_k6_signgd_second_coordinate_exactly_zero():
    Z = np.array([[1.0, 1.0], [1.0, -1.0]])
    config = RunConfig("signgd", 20, schedule=const(0.1))
    result = run(Z, config, checkpoints=range(1, 21))
    assert result.status == "ok"
    x = 0.0
    for t, row in enumerate(result.metrics, start=1):
        x += 0.1
        assert row["t"] == t
        assert row["w"][1] == 0.0
        assert row["w"][0] == x  # the same repeated addition, bit for bit
        assert abs(row["w"][0] - 0.1 * t) <= t * ulp(0.1 * t)


@pytest.mark.parametrize(
    ("optimizer", "hyper"),
    [
        ("signum", {"beta": 0.9}),
        ("adam", ADAM_THEORY),
        ("adam", {**ADAM_THEORY, "bias_correction": 1}),
        ("adamproxy", {}),
    ],
)
def test_k6_symmetric_coordinate_stays_zero(optimizer, hyper):
    """Full batch: G_2 = 0 exactly at every step, so sign(0) = 0 and 0/0 = 0 keep
    coordinate 2 at exactly 0 for the momentum and ratio methods too."""
    Z = np.array([[1.0, 1.0], [1.0, -1.0]])
    config = RunConfig(optimizer, 200, hyper=hyper, schedule=Schedule(0.1, 1, 0.5))
    result = run(Z, config)
    assert all(row["w"][1] == 0.0 for row in result.metrics)
    assert result.w[0] > 0.5


# K17. A coordinate only non-support samples touch.

Z_K17 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [2.0, 2.0, 1.0]])
#: Margins 400, 400, 1600: sample 3's margin gap is 1200 (> 800).
W0_K17 = np.array([400.0, 400.0, 0.0])

#: Small steps, so that w barely changes over the memory 1/(1-b2) of v: the regime
#: of the epoch-wise view (theory.md Prop. 2.5), where a coordinate driven by one
#: sample per epoch moves like any other.
K17_SCHEDULE = Schedule(1e-3, 1.0, 0.5)
K17_CONFIGS = {
    "adam-ps": {"b1": 0.9, "b2": 0.999, "eps": 0.0},
    "adamproxy": {},
}
K17_STEPS = 3000


def _k17_config(optimizer, steps):
    return RunConfig(optimizer, steps, hyper=K17_CONFIGS[optimizer],
                     schedule=K17_SCHEDULE)


@pytest.mark.parametrize("optimizer", list(K17_CONFIGS))
def test_k17_engine_matches_mpmath(optimizer):
    """Tolerance as in test_engine: 2 EPS T max|w| bounds T roundings of
    ``w + dw`` and the rule's few-EPS relative errors in ``dw``."""
    steps = 200
    config = _k17_config(optimizer, steps)
    mp = run_mpmath(Z_K17, config, w0=W0_K17, dps=60, hyper_as="binary")
    result = run(Z_K17, config, w0=W0_K17, checkpoints=[steps])
    want = mp.as_float()
    assert np.abs(result.w - want).max() <= 2 * EPS * steps * np.abs(want).max()
    assert want[2] > 0


@pytest.mark.parametrize("optimizer", list(K17_CONFIGS))
def test_k17_third_coordinate_moves_at_full_speed(optimizer):
    checkpoints = [K17_STEPS // 3, K17_STEPS]
    result = run(Z_K17, _k17_config(optimizer, K17_STEPS), w0=W0_K17,
                 checkpoints=checkpoints)
    assert result.status == "ok"
    start, end = (row["w"] for row in result.metrics)
    # Still past the wall at the end: sample 3's margin gap exceeds 800.
    margins = Z_K17 @ end
    assert margins[2] - margins[:2].min() > 800
    step = end - start
    assert step[0] > 0 and step[1] > 0
    if optimizer == "adamproxy":
        # G_k / sqrt(Q_k) = 1/3 for coordinates 1 and 3 alike (sample 3's share
        # in coordinate 1 is e^-1200): equal increments, up to the roundings of
        # w + dw at |w| = 400.
        assert abs(step[2] - step[0]) <= 2 * EPS * K17_STEPS * np.abs(end).max()
    else:
        # Every coordinate is driven by exactly one sample per epoch, so the
        # frozen-w view predicts equal increments; sample 3's faster-decaying
        # weight makes v lag and coordinate 3 a little slower. A frozen coordinate
        # would give 0.
        assert 0.5 <= step[2] / step[0] <= 2.0


def _shared_scale_run(optimizer, w0, steps):
    """The failure mode the engine avoids: plain float64 with ONE log-scale.

    Weights are taken relative to the largest weight of the whole data set (the
    best a single shared scale can do), and the moments are stored on that scale.
    Returns the iterate and the moments after ``steps`` steps.
    """
    b1, b2 = 0.9, 0.999
    n, d = Z_K17.shape
    w = np.array(w0, dtype=np.float64)
    m = np.zeros(d)
    v = np.zeros(d)
    shared = None
    for t in range(steps):
        lr = K17_SCHEDULE(t)
        lg = log_weight(Z_K17 @ w)
        top = lg.max()
        if shared is not None:
            m *= math.exp(shared - top)
            v *= math.exp(2 * (shared - top))
        shared = top
        e = np.exp(lg - shared)  # e_3 = e^-gap: 0 once the gap passes ~745
        with np.errstate(divide="ignore", invalid="ignore"):
            if optimizer == "adamproxy":
                G = -(e[:, None] * Z_K17).mean(axis=0)
                Q = ((e[:, None] * Z_K17) ** 2).sum(axis=0)
                step = np.where(Q > 0, G / np.sqrt(Q), 0.0)
            else:
                i = t % n
                G = -e[i] * Z_K17[i]
                m = b1 * m + (1 - b1) * G
                v = b2 * v + (1 - b2) * G**2  # (1-b2) G^2 underflows at gap ~372
                step = np.where(v > 0, m / np.sqrt(v), 0.0)
        w = w - lr * step
    return w, m, v


@pytest.mark.parametrize("optimizer", list(K17_CONFIGS))
def test_k17_one_shared_scale_freezes_coordinate_3(optimizer):
    naive, _, _ = _shared_scale_run(optimizer, W0_K17, K17_STEPS)
    engine = run(Z_K17, _k17_config(optimizer, K17_STEPS), w0=W0_K17,
                 checkpoints=[K17_STEPS]).w
    assert naive[2] == 0.0  # frozen, silently
    assert naive[0] > W0_K17[0]  # while the support coordinates move
    assert engine[2] > 0.25 * (engine[0] - W0_K17[0])


def test_k17_v_underflows_before_m_with_a_shared_scale():
    """At a gap of 600 (margins 200, 200, 800) the shared-scale gradient of sample 3
    is e^-600 ~ 1e-261, representable; its square is not: after one epoch
    m_3 != 0 but v_3 == 0. The engine moves coordinate 3 from the start."""
    w0 = np.array([200.0, 200.0, 0.0])
    _, m, v = _shared_scale_run("adam-ps", w0, 3)
    assert m[2] != 0.0
    assert v[2] == 0.0
    state = EngineState.initial(w0, 2)
    advance(Z_K17, _k17_config("adam-ps", 3), state, 3)
    assert state.w[0, 2] > 0.0


@pytest.mark.parametrize("optimizer", ["adam", "adam-ps", "adamproxy", "signum"])
@pytest.mark.parametrize("scale", [1e-170, 1e-300, 1e200])
def test_data_of_extreme_magnitude_match_mpmath(optimizer, scale):
    """Columns far from 1 in magnitude: z^2 (and Adam's v) would underflow or
    overflow whatever the loss weights; the engine rescales such columns by an
    exact power of 2. Tolerance: 2 eps per step on |w| (as for the wall tests)."""
    Z = np.array([[1.0, 2.0, 0.5], [0.5, -1.0, 2.0], [2.0, 0.25, 1.0]]) * scale
    config = RunConfig(optimizer, steps=30)
    engine = run(Z, config)
    exact = run_mpmath(Z, config, dps=40, hyper_as="binary").as_float()
    assert engine.status == "ok"
    tol = 2 * np.finfo(float).eps * 30 * np.abs(exact).max()
    np.testing.assert_allclose(engine.w, exact, rtol=0, atol=tol)
