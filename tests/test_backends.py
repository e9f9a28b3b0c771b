"""The high-precision backends: intervals enclose mpmath, precision stays per run.

Covers cases.md K10 (precision leaks, decimal inputs, real metrics) and K11 (ball
arithmetic: enclosures, radius against steps, undetermined signs), and checks the
float64 engine against :func:`run_precise` past the underflow wall.
"""

import warnings
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import flint
import mpmath
import numpy as np
import pytest

from theorybox.arith import bind_ops
from theorybox.arith import interval as interval_module
from theorybox.arith.interval import (
    ArbContext,
    IntervalDomainError,
    IvContext,
    interval_context,
    interval_ops,
)
from theorybox.engine import run
from theorybox.engine.backends import (
    EnclosureTooWideError,
    UndeterminedSignError,
    precise_cosine,
    run_mpmath,
    run_precise,
    to_float_array,
)
from theorybox.engine.mp import to_mp
from theorybox.errors import InvalidDataError, PrecisionWarning, TheoryboxError
from theorybox.optimizers import rules
from theorybox.optimizers.config import Batching, RunConfig, Schedule
from theorybox.optimizers.registry import list_optimizers

EPS = float(np.finfo(np.float64).eps)
FLINT_PREC = flint.ctx.prec

#: Small dense data, started where every margin is above 800 (past exp's wall).
Z_DENSE = np.array(
    [
        [1.0, 0.5, 0.25],
        [0.75, 0.25, 0.625],
        [0.5, 0.25, 1.0],
        [1.0, -0.125, 0.75],
        [0.25, 1.0, 0.5],
        [0.5, 0.75, 0.25],
    ]
)
W0_DENSE = np.array([620.0, 520.0, 420.0])

#: K17: coordinate 3 is touched only by sample 3, whose margin pulls away.
Z_K17 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [2.0, 2.0, 1.0]])
W0_K17 = np.array([900.0, 850.0, 0.5])

DATA = {"dense": (Z_DENSE, W0_DENSE), "K17": (Z_K17, W0_K17)}
SCHEDULE = Schedule(0.1, 1.0, 0.5)
STEPS = 200
RECORD = (1, 2, 5, 10, 20, 50, 100, 150, 200)

#: Every registered optimizer, with a batching that fits N = 3 where needed.
OPTIMIZERS = list_optimizers()


def _config(opt, n, steps=STEPS, **hyper):
    batching = Batching("reshuffle", 2) if opt == "adam-mb" and n < 5 else None
    return RunConfig(opt, steps, hyper=hyper, batching=batching, schedule=SCHEDULE,
                     seed=3)


@pytest.fixture(autouse=True)
def _flint_precision_unchanged():
    """Like conftest's mpmath guard, for python-flint's global precision."""
    yield
    leaked = flint.ctx.prec
    if leaked != FLINT_PREC:
        flint.ctx.prec = FLINT_PREC
        pytest.fail(f"the test left flint.ctx.prec = {leaked} (was {FLINT_PREC})")


def _encloses(ivrun, mprun):
    """Whether every recorded ball of ``ivrun`` contains ``mprun``'s value."""
    with ivrun.ctx.precision():
        return all(
            ivrun.ctx.contains(ball, value)
            for step in mprun.steps
            for ball, value in zip(ivrun.history[step], mprun.history[step],
                                   strict=True)
        )


def _fingerprint(result):
    """Exact, comparable form of a run's final iterate (balls: mid and radius)."""
    if result.backend == "mpmath":
        return [x.man_exp if x else (0, 0) for x in result.w]
    with result.ctx.precision():
        return [(x.mid().man_exp(), x.rad().man_exp()) for x in result.w]


# K11: the enclosure contains the 60-digit trajectory at every recorded step.


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("opt", ["adam", "adam-ps", "signgd", "adamproxy", "gd"])
def test_interval_encloses_the_mpmath_trajectory(opt, data):
    """Both runs take the float hyperparameters as their exact binary values, so
    they follow the same recurrence: the 60-digit run is within ~1e-55 of the
    exact one, and the 200-bit balls are rigorous, so they must contain it."""
    Z, w0 = DATA[data]
    assert (Z @ w0).min() > 800
    config = _config(opt, len(Z))
    mp = run_precise(Z, config, w0=w0, dps=60, record=RECORD, hyper_as="binary")
    iv = run_precise(Z, config, w0=w0, backend="interval", prec=200, record=RECORD,
                     hyper_as="binary")
    assert iv.steps == mp.steps == list(RECORD)
    assert _encloses(iv, mp)
    assert iv.complete and iv.steps_done == STEPS
    assert len(iv.radius) == len(RECORD)
    assert 0 < max(iv.radius) < 1e-40
    assert mp.radius == [] and mp.backend == "mpmath"
    assert (iv.backend, iv.implementation, iv.prec) == ("interval", "arb", 200)


def test_interval_with_decimal_inputs_encloses_the_exact_decimal_run():
    """With hyper_as="decimal" the ball for b2 contains the exact 0.999; the
    60-digit run (0.999 rounded at 203 bits) stays inside the 200-bit balls."""
    config = _config("adam-ps", 3)
    mp = run_precise(Z_K17, config, w0=W0_K17, dps=60, record=RECORD)
    iv = run_precise(Z_K17, config, w0=W0_K17, backend="interval", record=RECORD)
    assert iv.hyper_as == mp.hyper_as == "decimal"
    assert _encloses(iv, mp)


def test_mpmath_interval_fallback_encloses_and_says_so(monkeypatch):
    """Without python-flint, "auto" picks mpmath's interval context."""
    monkeypatch.setattr(interval_module, "HAVE_FLINT", False)
    assert isinstance(interval_context(100), IvContext)
    config = _config("adam-ps", 3, steps=60)
    mp = run_precise(Z_K17, config, w0=W0_K17, dps=60, record=(1, 30, 60),
                     hyper_as="binary")
    iv = run_precise(Z_K17, config, w0=W0_K17, backend="interval", prec=200,
                     record=(1, 30, 60), hyper_as="binary")
    assert iv.implementation == "mpmath-iv"
    assert _encloses(iv, mp)
    assert 0 < iv.radius[-1] < 1e-40
    assert mpmath.mp.prec == 53


# K11: radius against steps, doubling precision, too-wide enclosures.


def test_radius_grows_with_steps_and_shrinks_with_precision():
    config = _config("adam-ps", 3)
    low = run_precise(Z_K17, config, w0=W0_K17, backend="interval", prec=100,
                      record=RECORD)
    high = run_precise(Z_K17, config, w0=W0_K17, backend="interval", prec=200,
                       record=RECORD)
    radius = np.array(low.radius)
    assert radius[-1] > radius[0]
    # Non-decreasing up to the growth of |mid| (relative radius can dip a little).
    assert (radius[1:] >= radius[:-1] / 2).all(), radius
    # Doubling the precision shrinks the radius by about 2^-100.
    assert high.radius[-1] <= low.radius[-1] * 2.0**-90
    assert (high.prec, high.dps) == (200, 59) and low.prec == 100


def test_enclosure_too_wide_names_the_step_and_keeps_the_partial_run():
    config = _config("adam-ps", 3)
    with pytest.raises(EnclosureTooWideError) as info:
        run_precise(Z_K17, config, w0=W0_K17, backend="interval", prec=40,
                    radius_limit=1e-9, record=range(1, STEPS + 1))
    err = info.value
    assert isinstance(err, TheoryboxError)
    assert 1 < err.step < STEPS and err.radius > err.limit == 1e-9
    assert f"step {err.step} of {STEPS}" in str(err)
    partial = err.partial
    assert partial.steps_done == err.step and not partial.complete
    assert partial.steps == list(range(1, err.step + 1))
    assert partial.radius[-1] == err.radius
    assert partial.history[err.step] == partial.w
    assert flint.ctx.prec == FLINT_PREC


# K11: undetermined signs are errors, never an else branch.


@pytest.mark.parametrize("impl", ["arb", "mpmath-iv"])
def test_signum_on_a_momentum_ball_straddling_zero_is_undetermined(impl):
    ctx = interval_context(100, impl)
    step = bind_ops(rules.signum_step, interval_ops(ctx))
    with ctx.precision():
        if impl == "arb":
            m = flint.arb(1e-30, 1e-25)
        else:
            m = ctx.iv.mpf([1e-30 - 1e-25, 1e-30 + 1e-25])
        with pytest.raises(UndeterminedSignError, match="sign undetermined"):
            step(ctx.mpf(0.1), 1, 0, ctx.mpf(0), ctx.mpf(0), m, ctx.mpf("0.9"))
        # A ball that decides the sign gives it; an exact zero gives 0 (beta = 1
        # keeps m as given).
        dw, _ = step(1, 1, 0, ctx.mpf(0), ctx.mpf(0), ctx.mpf(-1e-30), 1)
        assert dw == 1
        dw, _ = step(1, 1, 0, ctx.mpf(0), ctx.mpf(0), ctx.mpf(0), 1)
        assert dw == 0


def test_undetermined_sign_inside_a_run_reports_the_step():
    """Two samples with the same margin give the same g ball twice; coordinate 2's
    gradient g - g is exactly 0 but a ball around 0: SignGD cannot decide it,
    while mpmath (exact zero) takes sign 0."""
    Z = np.array([[1.0, 1.0], [1.0, -1.0]])
    config = RunConfig("signgd", 5, schedule=SCHEDULE)
    with pytest.raises(UndeterminedSignError) as info:
        run_precise(Z, config, w0=[0.3, 0.0], backend="interval", prec=80)
    assert info.value.step == 1
    assert info.value.partial.steps_done == 0
    assert flint.ctx.prec == FLINT_PREC
    mp = run_precise(Z, config, w0=[0.3, 0.0], dps=30)
    assert mp.w[1] == 0


@pytest.mark.parametrize("impl", ["arb", "mpmath-iv"])
def test_interval_sqrt_and_div0_conventions(impl):
    ctx = interval_context(64, impl)
    ops = interval_ops(ctx)
    with ctx.precision():
        straddle = (flint.arb(0, 1e-20) if impl == "arb"
                    else ctx.iv.mpf([-1e-20, 1e-20]))
        root = ops.sqrt(straddle)
        assert not ctx.negative(root) and ctx.contains(root, 0)
        assert ctx.contains(root, 1e-11)
        with pytest.raises(IntervalDomainError):
            ops.sqrt(ctx.mpf(-1))
        assert ctx.is_exact_zero(ops.div0(ctx.mpf(0), ctx.mpf(0)))
        assert ctx.is_exact_zero(ops.div0(ctx.mpf(0), straddle))
        with pytest.raises(UndeterminedSignError, match="denominator"):
            ops.div0(ctx.mpf(1), straddle)
        assert ctx.contains(ops.div0(ctx.mpf(1), ctx.mpf(4)), 0.25)
        assert ctx.is_exact_zero(ops.mulexp(0, 10**6))
        assert ctx.contains(ops.mulexp(ctx.mpf(2), ctx.mpf(0)), 2)


# K10: precision is per run, never global.


def test_setting_the_module_attribute_dps_changes_nothing(monkeypatch):
    config = _config("adam-ps", 3, steps=50)
    before = run_precise(Z_K17, config, w0=W0_K17, dps=30)
    monkeypatch.setattr(mpmath, "dps", 60, raising=False)
    after = run_precise(Z_K17, config, w0=W0_K17, dps=30)
    assert mpmath.mp.prec == 53
    assert _fingerprint(before) == _fingerprint(after)
    assert after.prec == before.prec == 103


def test_precision_restored_after_an_error_inside_a_run():
    config = _config("adam", 3)
    with pytest.raises(EnclosureTooWideError):
        run_precise(Z_K17, config, w0=W0_K17, backend="interval", prec=30,
                    radius_limit=1e-12)
    assert flint.ctx.prec == FLINT_PREC and mpmath.mp.prec == 53
    with pytest.raises(TheoryboxError):
        run_precise(Z_K17, config, w0=W0_K17, backend="interval", prec=100,
                    exact_hyper={"b2": "not a number"})
    assert flint.ctx.prec == FLINT_PREC and mpmath.mp.prec == 53


def test_concurrent_runs_at_different_precisions_equal_sequential_ones():
    config = _config("adam-ps", 3, steps=80)
    jobs = [
        {"backend": "interval", "prec": 64},
        {"backend": "interval", "prec": 256},
        {"backend": "mpmath", "dps": 20},
        {"backend": "mpmath", "prec": 300},
    ] * 2

    def job(kwargs):
        return run_precise(Z_K17, config, w0=W0_K17, record=(40, 80), **kwargs)

    sequential = [_fingerprint(job(kwargs)) for kwargs in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = [_fingerprint(r) for r in pool.map(job, jobs)]
    assert concurrent == sequential
    assert sequential[0] != sequential[1]
    assert flint.ctx.prec == FLINT_PREC and mpmath.mp.prec == 53


def test_mpmath_at_53_bits_runs_and_records_53_bits():
    config = _config("adam-ps", 3, steps=50)
    result = run_precise(Z_K17, config, w0=W0_K17, prec=53)
    assert (result.prec, result.dps, result.implementation) == (53, 15, "mpmath")
    reference = run_precise(Z_K17, config, w0=W0_K17, dps=60)
    np.testing.assert_allclose(result.as_float(), reference.as_float(),
                               rtol=100 * 50 * EPS)


def test_prec_and_dps_together_are_rejected():
    with pytest.raises(TheoryboxError, match="not both"):
        run_precise(Z_K17, _config("gd", 3, 1), prec=60, dps=20)
    with pytest.raises(TheoryboxError, match="backend"):
        run_precise(Z_K17, _config("gd", 3, 1), backend="float128")


# K10: decimal inputs.


def test_float_hyperparameters_enter_as_decimals_or_binaries():
    ctx = mpmath.MPContext()
    ctx.dps = 60
    assert to_mp(ctx, 0.999, "decimal") == ctx.mpf("0.999")
    binary = to_mp(ctx, 0.999, "binary")
    assert binary == ctx.mpf(0.999) != ctx.mpf("0.999")
    assert str(binary).startswith("0.998999999999999999111821580299")
    assert to_mp(ctx, 0.1, "binary") - ctx.mpf("0.1") > ctx.mpf("5.5e-18")


def test_decimal_eta0_equals_the_exact_string_and_differs_from_binary():
    config = _config("adam-ps", 3, steps=40)
    decimal = run_precise(Z_K17, config, w0=W0_K17, dps=40)
    exact = run_precise(Z_K17, config, w0=W0_K17, dps=40, hyper_as="binary",
                        exact_hyper={"eta0": "0.1", "b1": Fraction(9, 10),
                                     "b2": "999/1000"})
    binary = run_precise(Z_K17, config, w0=W0_K17, dps=40, hyper_as="binary")
    assert decimal.hyper_as == "decimal" and binary.hyper_as == "binary"
    assert exact.exact_hyper == {"eta0": "0.1", "b1": "9/10", "b2": "999/1000"}
    diff = max(abs(x - y) for x, y in zip(decimal.w, exact.w, strict=True))
    assert diff < mpmath.mpf(10) ** -35
    gap = max(abs(x - y) for x, y in zip(decimal.w, binary.w, strict=True))
    assert gap > mpmath.mpf(10) ** -20


def test_exact_hyper_is_validated():
    config = _config("adam", 3, steps=1)
    with pytest.raises(TheoryboxError, match="no entry 'beta'"):
        run_precise(Z_K17, config, exact_hyper={"beta": "0.9"})
    with pytest.raises(TheoryboxError, match="outside"):
        run_precise(Z_K17, config, exact_hyper={"b2": "1.5"})
    with pytest.raises(TheoryboxError, match="integer flag"):
        run_precise(Z_K17, config, exact_hyper={"eps_mode": "1"})


def test_run_mpmath_is_a_wrapper_of_run_precise():
    config = _config("signum", 3, steps=30)
    old = run_mpmath(Z_K17, config, w0=W0_K17, dps=30, record=(10, 30))
    new = run_precise(Z_K17, config, w0=W0_K17, dps=30, record=(10, 30))
    assert _fingerprint(old) == _fingerprint(new)
    assert sorted(old.history) == [10, 30] and old.prec == 103


# K10: metrics never complex.


def test_to_float_array_takes_mpf_balls_and_intervals():
    ctx = mpmath.MPContext()
    ctx.prec = 100
    values = [[ctx.mpf(1) / 3, ctx.mpf(2)], [flint.arb(0.5, 1e-20), 0.25]]
    got = to_float_array(values)
    np.testing.assert_array_equal(got, [[1 / 3, 2.0], [0.5, 0.25]])
    assert got.dtype == np.float64
    with pytest.raises(InvalidDataError, match="complex"):
        to_float_array([ctx.mpc(1, 1)])


def test_cosine_a_hair_above_one_is_clipped_and_stays_real():
    ctx = mpmath.MPContext()
    ctx.prec = 53
    rng = np.random.default_rng(0)

    # Find parallel vectors whose rounded cosine exceeds 1.
    for _ in range(2000):
        a = rng.normal(size=5)
        b = 3.0 * a
        dot = ctx.fsum(ctx.mpf(x) * y for x, y in zip(a, b, strict=True))
        raw = dot / (ctx.sqrt(ctx.fsum(ctx.mpf(x) ** 2 for x in a))
                     * ctx.sqrt(ctx.fsum(ctx.mpf(y) ** 2 for y in b)))
        if raw > 1:
            break
    assert raw > 1
    assert isinstance(ctx.sqrt(1 - raw**2), ctx.mpc)
    cosine = precise_cosine(a, b, ctx)
    assert cosine == 1
    assert isinstance(ctx.sqrt(1 - cosine**2), ctx.mpf)

    # Balls: the enclosure of the cosine keeps only its part inside [-1, 1].
    arb_ctx = ArbContext(53)
    ball = precise_cosine(a, b, arb_ctx)
    with arb_ctx.precision():
        # arb rounds radii upward, so the upper end may pass 1 by a hair of the
        # radius; the ball is no wider than its part inside [-1, 1] otherwise.
        assert ball.contains(1) and not ball > 1
    with interval_module.arb_precision(200):
        assert ball.upper() - 1 <= 2.0**-29 * ball.rad()
    with arb_ctx.precision():
        assert not (1 - ball**2).nonnegative_part().sqrt().is_nan()
    with pytest.raises(InvalidDataError):
        precise_cosine([0.0, 0.0], [1.0, 2.0], ctx)


# The float64 engine agrees with 60-digit mpmath past the underflow wall.


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_engine_agrees_with_run_precise_past_the_wall(opt, data):
    """Tolerance 4 EPS T max|w|: each engine step rounds ``w + dw`` (EPS/2 |w|)
    and forms ``dw`` to a few EPS relative with |dw| << |w|; margins of 800+
    make g ~ e^-800 so an error in w barely feeds back. Errors therefore add up
    to at most about T (EPS/2 |w| + c EPS |dw|) over T steps; 4 EPS T max|w|
    bounds that with room. mpmath takes the hyperparameters as their exact
    binaries, so both compute the same recurrence."""
    Z, w0 = DATA[data]
    config = _config(opt, len(Z))
    mp = run_precise(Z, config, w0=w0, dps=60, hyper_as="binary")
    with warnings.catch_warnings():
        # GD-type steps of e^-800 cannot move w in float64: the engine says so.
        warnings.simplefilter("ignore", PrecisionWarning)
        result = run(Z, config, w0=w0, checkpoints=[STEPS])
    want = mp.as_float()
    tol = 4 * EPS * STEPS * float(np.abs(want).max())
    assert np.abs(result.w - want).max() <= tol, (result.w, want, tol)


def test_a_diverging_mpmath_run_raises_with_what_it_computed():
    """Exponential loss with a large constant step on data with a negative
    margin: the weights e^-s explode within two steps and step 3 cannot be
    formed. The error names the step and keeps the steps before it (found by a
    helper: a raw ``OverflowError`` from inside mpmath)."""
    from theorybox.errors import DivergedError

    Z = np.array([[-1.0], [-1.0], [3.0], [0.0]])
    config = RunConfig("sgd", 30, batching=Batching("full"), loss="exponential",
                       schedule=Schedule(0.5, 1.0, 0.0))
    with pytest.raises(DivergedError, match="step 3 of 30") as caught:
        run_precise(Z, config, w0=np.array([6000.0]), dps=30)
    assert caught.value.step == 3
    assert caught.value.partial.steps_done == 2
    assert not caught.value.partial.complete
    assert len(str(caught.value)) < 600      # magnitudes as 10^(...), not digits
