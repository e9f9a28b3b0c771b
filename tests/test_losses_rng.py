"""Log-domain losses at extreme margins, and the counter-based random stream.

The losses are checked against 50-digit mpmath (a private context) on a grid
that straddles every float64 hazard of theory.md section 5: ``sigmoid(s) - 1``
cancelling near 37, ``exp`` overflowing near 709 and underflowing near 745, and
margins of +-1e5. The stream is checked for agreement between its Python and numba
versions, which the engine and the mpmath backend rely on to draw the same batches.
"""

import math

import mpmath
import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from theorybox.losses import (
    EXP_ZERO,
    LOSS_CODES,
    SOFTPLUS_LINEAR,
    exp_or_zero,
    log_loss,
    log_weight,
    log_weight_scalar,
    mean_log_loss,
    weights,
)
from theorybox.rng import (
    draw_indices,
    epoch_key,
    epoch_key_nb,
    permutation,
    permutation_nb,
    uniform,
    uniform_nb,
)

EPS = float(np.finfo(np.float64).eps)

#: The functions are a handful of correctly rounded or faithfully rounded libm
#: calls (exp, log1p, log, logaddexp), each within an ulp or two; 4 EPS relative
#: bounds their composition.
LOSS_RTOL = 4 * EPS

MARGINS = [
    -1e5, -1000.0, -746.0, -745.0, -710.0, -40.0, -37.5, -1.0, -1e-20, 0.0, 1e-20,
    0.5, 1.0, 20.0, 37.5, 40.0, 709.0, 710.0, 745.0, 746.0, 1000.0, 1e5,
]


def _ctx():
    ctx = mpmath.MPContext()
    ctx.dps = 50
    return ctx


def _exact_log_weight(ctx, s, loss):
    s = ctx.mpf(s)
    if loss == "exponential":
        return -s
    return -ctx.log1p(ctx.exp(s))


def _exact_log_loss(ctx, s, loss):
    s = ctx.mpf(s)
    if loss == "exponential":
        return -s
    return ctx.log(ctx.log1p(ctx.exp(-s)))


def _close(got, want, rtol=LOSS_RTOL):
    """float64 result within rtol of an mpf (compared after rounding it)."""
    want = float(want)
    return abs(float(got) - want) <= rtol * abs(want)


@pytest.mark.parametrize("loss", ["logistic", "exponential"])
def test_log_weight_matches_mpmath(loss):
    ctx = _ctx()
    got = log_weight(np.array(MARGINS), loss)
    assert np.isfinite(got).all()
    for s, value in zip(MARGINS, got, strict=True):
        assert _close(value, _exact_log_weight(ctx, s, loss)), (s, value)


@pytest.mark.parametrize("loss", ["logistic", "exponential"])
def test_numba_log_weight_matches_mpmath(loss):
    ctx = _ctx()
    for s in MARGINS:
        value = log_weight_scalar(s, LOSS_CODES[loss])
        assert math.isfinite(value)
        assert _close(value, _exact_log_weight(ctx, s, loss)), (s, value)


@pytest.mark.parametrize("loss", ["logistic", "exponential"])
def test_log_loss_matches_mpmath(loss):
    ctx = _ctx()
    got = log_loss(np.array(MARGINS), loss)
    assert np.isfinite(got).all()
    for s, value in zip(MARGINS, got, strict=True):
        assert _close(value, _exact_log_loss(ctx, s, loss)), (s, value)


def test_loss_at_margins_of_1000_and_1e5():
    """cases.md K1: the loss at s = -1000 is 1000 (log loss log 1000) to 1e-15."""
    assert abs(log_loss(-1000.0) - math.log(1000.0)) <= 1e-15 * math.log(1000.0)
    assert abs(math.exp(log_loss(-1000.0)) - 1000.0) <= 1e-15 * 1000.0
    assert abs(math.exp(log_loss(-1e5)) - 1e5) <= 1e-15 * 1e5
    assert log_loss(1000.0) == -1000.0  # l = e^-1000 (1 - e^-1000 / 2 ...)
    assert log_loss(1e5) == -1e5
    for s in (-1e5, -1000.0, 1000.0, 1e5):
        for loss in ("logistic", "exponential"):
            assert np.isfinite(log_loss(s, loss))
            assert np.isfinite(log_weight(s, loss))
            assert np.isfinite(weights(np.array([s, 0.0]), loss)).all()
            assert np.isfinite(mean_log_loss(np.array([s, 0.0]), loss))


@pytest.mark.parametrize(
    "margins",
    [
        [0.0, 0.0, 0.0],
        [1000.0, 2000.0],
        [-1000.0, 1000.0],
        [-1e5, 1e5],
        [745.0, 745.0, 746.0, 1e5],
        [-40.0, 37.5, 0.5],
        [1e5] * 4,
    ],
)
@pytest.mark.parametrize("loss", ["logistic", "exponential"])
def test_mean_log_loss_matches_mpmath(margins, loss):
    """log((1/N) sum_i l(s_i)); its rounding error is a few EPS of the largest term
    of its log-sum-exp, so the tolerance is absolute: 8 EPS max(1, |value|)."""
    ctx = _ctx()
    exact = ctx.log(
        ctx.fsum(ctx.exp(_exact_log_loss(ctx, s, loss)) for s in margins)
        / len(margins)
    )
    got = mean_log_loss(np.array(margins), loss)
    assert math.isfinite(got)
    assert abs(got - float(exact)) <= 8 * EPS * max(1.0, abs(float(exact)))


@pytest.mark.parametrize("loss", ["logistic", "exponential"])
def test_weights_match_mpmath_and_sum_to_one(loss):
    ctx = _ctx()
    s = np.array([-3.0, 0.0, 0.5, 40.0, 745.0, 1e5])
    got = weights(s, loss)
    g = [ctx.exp(_exact_log_weight(ctx, x, loss)) for x in s]
    total = ctx.fsum(g)
    for value, gi in zip(got, g, strict=True):
        assert abs(value - float(gi / total)) <= 4 * EPS
    assert abs(got.sum() - 1.0) <= len(s) * EPS


_margin = st.floats(-1e5, 1e5, allow_nan=False)


@given(st.lists(_margin, min_size=1, max_size=20), st.sampled_from(list(LOSS_CODES)))
def test_losses_finite_everywhere(margins, loss):
    s = np.array(margins)
    w = weights(s, loss)
    assert np.isfinite(w).all() and (w >= 0).all()
    assert abs(w.sum() - 1.0) <= len(s) * EPS
    assert np.isfinite(log_loss(s, loss)).all()
    assert np.isfinite(log_weight(s, loss)).all()
    assert math.isfinite(mean_log_loss(s, loss))


@given(_margin, _margin)
def test_log_loss_and_weight_are_non_increasing(a, b):
    lo, hi = min(a, b), max(a, b)
    assert log_loss(hi) <= log_loss(lo)
    assert log_weight(hi) <= log_weight(lo)
    assert log_weight(lo) <= 0.0


@given(_margin)
def test_numba_and_numpy_log_weight_agree(s):
    for loss, code in LOSS_CODES.items():
        a = log_weight_scalar(s, code)
        b = float(log_weight(s, loss))
        assert abs(a - b) <= 2 * LOSS_RTOL * abs(b)


@numba.njit(cache=False)
def _softplus_in_full(s):
    """``log g(s)`` of the logistic loss without the kernel's shortcuts."""
    if s > 0.0:
        return -(s + math.log1p(math.exp(-s)))
    return -math.log1p(math.exp(s))


def test_kernel_shortcuts_keep_every_bit():
    """The compiled weight and exp skip work, never change a result.

    ``log_weight_scalar`` returns ``-s`` past SOFTPLUS_LINEAR and ``exp_or_zero``
    returns 0 below EXP_ZERO; on a grid straddling both thresholds (and the
    thresholds' neighbours in float64) the bits equal the full evaluation.
    """
    edges = [SOFTPLUS_LINEAR, -SOFTPLUS_LINEAR, EXP_ZERO, -EXP_ZERO, 0.0, 37.4]
    grid = np.concatenate([
        np.linspace(-800.0, 800.0, 40001),
        np.geomspace(1e-300, 1e5, 2001),
        -np.geomspace(1e-300, 1e5, 2001),
        [np.nextafter(e, side) for e in edges for side in (-np.inf, np.inf)],
        edges,
    ])
    code = LOSS_CODES["logistic"]
    for s in grid:
        s = float(s)
        assert log_weight_scalar(s, code) == _softplus_in_full(s), s
        if s < 709.0:  # math.exp raises OverflowError above 709.78
            assert exp_or_zero(s) == math.exp(s), s
        assert math.copysign(1.0, log_weight_scalar(s, code)) == math.copysign(
            1.0, _softplus_in_full(s)), s


# The random stream.

SEEDS = [0, 1, 7, 2**32 + 5, 2**63 - 1]


def _nb_permutation(seed, run, epoch, n):
    """The kernel's call ``permutation_nb(epoch_key_nb(seed, run, epoch), perm)``,
    with the key kept as the uint64 the kernel holds it in."""
    key = np.uint64(epoch_key_nb(np.uint64(seed), np.int64(run), np.int64(epoch)))
    perm = np.empty(n, dtype=np.int64)
    permutation_nb(key, perm)
    return perm


@pytest.mark.parametrize("seed", SEEDS)
def test_python_and_numba_permutations_agree(seed):
    for run in (0, 1, 5):
        for epoch in (0, 1, 2, 1000):
            for n in (1, 2, 3, 10, 37):
                want = permutation(seed, run, epoch, n)
                np.testing.assert_array_equal(
                    _nb_permutation(seed, run, epoch, n), want
                )
                assert sorted(want.tolist()) == list(range(n))


@given(
    st.integers(0, 2**63 - 1),
    st.integers(0, 10_000),
    st.integers(0, 10**9),
    st.integers(1, 60),
)
def test_permutation_property(seed, run, epoch, n):
    want = permutation(seed, run, epoch, n)
    assert sorted(want.tolist()) == list(range(n))
    np.testing.assert_array_equal(_nb_permutation(seed, run, epoch, n), want)


#: Seeds whose epoch-0 key (run 0) is below 2**63, and one above.
LOW_KEY_SEEDS = [s for s in range(40) if epoch_key(s, 0, 0) < 2**63][:3]
HIGH_KEY_SEED = next(s for s in range(40) if epoch_key(s, 0, 0) >= 2**63)


@pytest.mark.parametrize("seed", [*LOW_KEY_SEEDS, HIGH_KEY_SEED])
def test_numba_stream_does_not_depend_on_the_key_integer_type(seed):
    """``permutation_nb(epoch_key_nb(...))`` called from Python: numba hands the
    uint64 key back as a Python int, which it types as int64 when the key is below
    2**63 (about half of all keys). The stream must not change with that type."""
    key = epoch_key_nb(seed, 0, 0)
    assert key == epoch_key(seed, 0, 0)
    for n in (2, 5, 10):
        perm = np.empty(n, dtype=np.int64)
        permutation_nb(key, perm)
        np.testing.assert_array_equal(perm, permutation(seed, 0, 0, n))
    for j in (0, 1, 2):
        assert uniform_nb(key, j) == uniform(key, j)


@given(st.integers(0, 2**63 - 1), st.integers(0, 10**4), st.integers(0, 10**9))
def test_epoch_key_and_uniform_agree(seed, run, epoch):
    key = epoch_key(seed, run, epoch)
    assert 0 <= key < 2**64
    assert int(epoch_key_nb(seed, run, epoch)) == key
    assert int(epoch_key_nb(np.uint64(seed), np.int64(run), np.int64(epoch))) == key
    for j in (0, 1, 17, 10**6):
        u = uniform(key, j)
        assert 0.0 <= u < 1.0
        assert uniform_nb(np.uint64(key), np.int64(j)) == u


def test_different_epochs_runs_and_seeds_differ():
    n = 10
    by_epoch = [tuple(permutation(3, 0, e, n)) for e in range(20)]
    assert len(set(by_epoch)) == 20
    assert tuple(permutation(3, 1, 0, n)) != by_epoch[0]
    assert tuple(permutation(4, 0, 0, n)) != by_epoch[0]
    assert epoch_key(3, 0, 0) != epoch_key(3, 0, 1) != epoch_key(3, 1, 0)


def test_uniform_draws_look_uniform():
    """Mean and decile counts of 20000 draws within 5 standard deviations (fixed
    key, so this is deterministic; the bound only guards against gross bias)."""
    key = epoch_key(12345, 0, 0)
    draws = np.array([uniform(key, j) for j in range(20_000)])
    assert (draws >= 0).all() and (draws < 1).all()
    n = draws.size
    assert abs(draws.mean() - 0.5) <= 5 * math.sqrt(1 / 12 / n)
    counts = np.bincount((draws * 10).astype(np.int64), minlength=10)
    expected = n / 10
    assert np.abs(counts - expected).max() <= 5 * math.sqrt(expected * 0.9)


def test_permutation_first_position_is_uniform():
    n, epochs = 4, 4000
    firsts = np.bincount(
        [permutation(1, 0, e, n)[0] for e in range(epochs)], minlength=n
    )
    expected = epochs / n
    assert np.abs(firsts - expected).max() <= 5 * math.sqrt(expected * (1 - 1 / n))


@given(
    st.integers(0, 2**63 - 1),
    st.integers(0, 10**6),
    st.integers(0, 100),
    st.integers(1, 20),
    st.integers(1, 50),
)
def test_draw_indices_in_range(seed, epoch, start, b, n):
    idx = draw_indices(seed, 0, epoch, start, b, n)
    assert idx.shape == (b,)
    assert ((idx >= 0) & (idx < n)).all()
    key = epoch_key(seed, 0, epoch)
    assert idx.tolist() == [int(uniform(key, start + q) * n) for q in range(b)]
