"""Property tests of the theory on data built by :mod:`theorybox.strategies`.

The default Hypothesis profile (tests/conftest.py) is small and derandomised, so
these tests are deterministic; ``THEORYBOX_HYPOTHESIS_PROFILE=large`` runs many
more examples (minutes). Each test body takes well under a second per example.

Invariances, decided from the math (documented in docs/checks.md):

* **Flipping a label with its point**, ``(x_i, y_i) -> (-x_i, -y_i)``, leaves
  ``z_i = y_i x_i`` unchanged: every optimizer's run is identical, bit for bit.
* **Permuting samples** leaves every full-batch method unchanged up to the
  rounding of the sum's order (per-sample methods with the cyclic order do
  depend on the order: their epoch maps differ, their limits need not).
* **Uniform scaling** ``z -> c z`` with ``w' = w / c`` keeps every margin: the
  sign methods, Adam with ``eps = 0`` and AdamProxy are equivariant with the step
  ``eta / c``, GD with ``eta / c^2`` (exact for ``c`` a power of two).
* **Per-coordinate positive scaling** ``z -> D z`` is *not* a symmetry of any of
  them: sign-type steps do not see ``D`` (their step is the same in every
  coordinate), so the iterate is not ``D^{-1} w``; the l_inf max-margin direction
  itself changes. What sign methods and Adam with ``eps = 0`` are invariant to is
  a positive rescaling of each coordinate's *gradient*: tested on the rules.
* **Signed coordinate permutations** ``z -> P S z`` are symmetries of every
  coordinate-wise method (``w' = P S w``); orthogonal maps are symmetries of GD
  only.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from theorybox.arith.ops import PythonOps, bind_ops
from theorybox.engine import run
from theorybox.optimizers import Batching, RunConfig, Schedule, rules
from theorybox.proxy import certify, solve_fixed_point
from theorybox.references import compute_references, linf_gap
from theorybox.strategies import (
    awkward_datasets,
    integer_separable_datasets,
    rademacher_datasets,
    rational_separable_datasets,
)

#: Fewer examples for the expensive properties (a fifth of the profile's).
FEW = max(4, settings.default.max_examples // 5)

FULL_BATCH = ("gd", "signgd", "signum", "adam", "adamproxy")
ALL = (*FULL_BATCH, "adam-ps", "sgd")
SCHEDULE = Schedule(0.1, 1.0, 0.5)


def _final(Z, name, steps, schedule=None, **hyper):
    schedule = SCHEDULE if schedule is None else schedule
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(Z, RunConfig(name, steps, hyper=hyper, schedule=schedule),
                   checkpoints=[steps]).w.copy()


# The dual fixed point: when the iteration converges, the certificate holds.


@given(integer_separable_datasets(n=st.integers(2, 6), d=st.integers(2, 4)))
@settings(max_examples=FEW, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
def test_fixed_point_certificate_holds_when_converged(ds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = solve_fixed_point(ds.Z, n_starts=1, damping=(0.0, 0.5))
    for point in report.points:
        assert point.certificate.ok, point.certificate
        # Recomputing the certificate independently gives the same answer.
        again = certify(ds.Z, point.w, point.c, fp_residual=point.residual)
        assert again.ok


# l_inf limits: Signum for several batch sizes, full-batch Adam.


def _linf_gap_final(Z, config) -> tuple[float, float]:
    refs = compute_references(Z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = run(Z, config, checkpoints=[config.steps]).w
    return linf_gap(Z, w, refs.face.gamma), refs.face.gamma


@given(rademacher_datasets(n=st.integers(2, 6), d=st.integers(2, 4)),
       st.sampled_from(["1", "half", "full"]))
@settings(max_examples=FEW, deadline=None)
def test_signum_reaches_linf_for_batch_sizes(ds, which):
    n = ds.n
    b = {"1": 1, "half": max(1, n // 2), "full": n}[which]
    batching = None if b == n else Batching("reshuffle", b)
    config = RunConfig("signum", 200_000, hyper={"beta": 0.99}, batching=batching,
                       schedule=Schedule(0.1, 1.0, 0.5))
    gap, gamma = _linf_gap_final(ds.Z, config)
    assert gap <= 0.05 * gamma, (gap, gamma, b)


@given(rademacher_datasets(n=st.integers(2, 6), d=st.integers(2, 4)))
@settings(max_examples=FEW, deadline=None)
def test_full_batch_adam_reaches_linf(ds):
    config = RunConfig("adam", 200_000, schedule=Schedule(0.1, 1.0, 0.5))
    gap, gamma = _linf_gap_final(ds.Z, config)
    assert gap <= 0.05 * gamma, (gap, gamma)


# Invariances.


@given(integer_separable_datasets(), st.data())
@settings(deadline=None)
def test_flipping_a_label_with_its_point_changes_nothing(ds, data):
    flip = np.array(data.draw(st.lists(st.booleans(), min_size=ds.n,
                                       max_size=ds.n)))
    s = np.where(flip, -1.0, 1.0)
    X2, y2 = s[:, None] * ds.X, s * ds.y
    Z2 = y2[:, None] * X2
    assert np.array_equal(Z2, ds.Z)
    for name in ALL:
        assert np.array_equal(_final(ds.Z, name, 500), _final(Z2, name, 500))


@given(integer_separable_datasets(n=st.integers(2, 8)), st.data())
@settings(deadline=None)
def test_full_batch_methods_ignore_sample_order(ds, data):
    perm = np.array(data.draw(st.permutations(range(ds.n))))
    for name in FULL_BATCH:
        a, b = _final(ds.Z, name, 300), _final(ds.Z[perm], name, 300)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=name)


@given(rational_separable_datasets(n=st.integers(2, 6), d=st.integers(1, 4)),
       st.integers(-3, 3))
@settings(deadline=None)
def test_uniform_scaling_equivariance_with_rescaled_step(ds, k):
    c = 2.0**k
    for name in ("signgd", "signum", "adam", "adamproxy", "gd"):
        power = 2 if name == "gd" else 1
        base = _final(ds.Z, name, 300, Schedule(0.1, 1.0, 0.5))
        scaled = _final(c * ds.Z, name, 300, Schedule(0.1 / c**power, 1.0, 0.5))
        np.testing.assert_allclose(scaled, base / c, rtol=1e-12, atol=1e-300,
                                   err_msg=name)


@given(integer_separable_datasets(n=st.integers(2, 6), d=st.integers(2, 4)),
       st.data())
@settings(deadline=None)
def test_signed_coordinate_permutations_are_symmetries(ds, data):
    perm = np.array(data.draw(st.permutations(range(ds.d))))
    signs = np.where(np.array(data.draw(st.lists(st.booleans(), min_size=ds.d,
                                                 max_size=ds.d))), -1.0, 1.0)
    Z2 = (ds.Z * signs)[:, perm]
    for name in ALL:
        w = _final(ds.Z, name, 300)
        w2 = _final(Z2, name, 300)
        np.testing.assert_allclose(w2, (w * signs)[perm], rtol=1e-12, atol=0,
                                   err_msg=name)


@given(st.floats(1e-3, 1e3), st.floats(-1e3, 1e3).filter(lambda g: g != 0))
@settings(deadline=None)
def test_adam_and_sign_rules_ignore_gradient_scale(c, g):
    """eps = 0: scaling a coordinate's gradients by c > 0 leaves the step alone."""
    adam = bind_ops(rules.adam_step, PythonOps)
    sign = bind_ops(rules.sign_step, PythonOps)
    proxy = bind_ops(rules.adam_proxy_step, PythonOps)
    m = v = 0.0
    mc = vc = 0.0
    for t in range(1, 6):
        gt = g * (1 + 0.1 * t)
        dw, m, v = adam(0.1, t, 0.0, gt, gt * gt, m, v, 0.9, 0.999, 0.0, 0, 0)
        dwc, mc, vc = adam(0.1, t, 0.0, c * gt, (c * gt) ** 2, mc, vc, 0.9, 0.999,
                           0.0, 0, 0)
        assert dwc == pytest.approx(dw, rel=1e-13)
    assert sign(0.1, 1, 0.0, c * g, 0.0) == sign(0.1, 1, 0.0, g, 0.0)
    assert proxy(0.1, 1, 0.0, c * g, (c * g) ** 2)[0] == pytest.approx(
        proxy(0.1, 1, 0.0, g, g * g)[0], rel=1e-13)


def test_per_coordinate_scaling_is_not_a_symmetry():
    """A counterexample: D = diag(1, 4) changes SignGD's direction and l_inf's.

    On ``z = [[1, 0], [0, 1], [1, 1]]`` both coordinates sit on the l_inf box, so
    ``w_inf* = (1, 1)`` before and after scaling, and SignGD moves both
    coordinates alike in both cases: mapped back, ``D (1, 1)`` is not ``(1, 1)``.
    """
    Z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    D = np.array([1.0, 4.0])
    w = _final(Z, "signgd", 2000)
    w_scaled = _final(Z * D, "signgd", 2000)
    u, u2 = w / np.linalg.norm(w), (w_scaled * D) / np.linalg.norm(w_scaled * D)
    assert np.linalg.norm(u - u2) > 1e-2
    refs, refs_d = compute_references(Z), compute_references(Z * D)
    a = refs.linf.w / np.linalg.norm(refs.linf.w)
    b = refs_d.linf.w * D / np.linalg.norm(refs_d.linf.w * D)
    assert np.linalg.norm(a - b) > 1e-2


def test_orthogonal_maps_are_symmetries_of_gd_only():
    rng = np.random.default_rng(0)
    Z = np.array([[1.0, 2.0, 0.5], [2.0, -1.0, 1.0], [1.0, 1.0, -0.5]])
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    np.testing.assert_allclose(_final(Z @ Q, "gd", 500), Q.T @ _final(Z, "gd", 500),
                               rtol=1e-10, atol=1e-12)
    sign = _final(Z @ Q, "signgd", 500)
    assert np.linalg.norm(sign - Q.T @ _final(Z, "signgd", 500)) > 1e-3


# Exact zeros: explicit examples (random floats almost never hit them).


K6 = np.array([[1.0, 1.0], [1.0, -1.0]])
ZERO_COLUMN = np.array([[1.0, 0.0], [2.0, 0.0]])


@pytest.mark.parametrize("name", FULL_BATCH)
def test_k6_second_coordinate_exactly_zero(name):
    w = _final(K6, name, 2000)
    assert w[1] == 0.0 and w[0] > 0 and np.isfinite(w).all()


def test_k6_signgd_exact_path():
    for t in (1, 10, 100):
        w = _final(K6, "signgd", t, Schedule(0.1, 1.0, 0.0))
        assert w[1] == 0.0
        assert w[0] == pytest.approx(0.1 * t, rel=1e-13)


@pytest.mark.parametrize("name", ALL)
def test_zero_column_stays_exactly_zero(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(ZERO_COLUMN, RunConfig(name, 10_000), checkpoints=[10_000])
    assert result.w[1] == 0.0
    assert np.isfinite(result.w).all() and np.isfinite(result.state.moments).all()


@given(awkward_datasets(kinds=["zero_gradient_coordinate"]))
@settings(deadline=None)
def test_mirrored_coordinate_gradient_exactly_zero(ds):
    Z = ds.Z
    k = next(j for j in range(ds.d) if np.array_equal(Z[0::2, j], -Z[1::2, j]))
    for name in FULL_BATCH:
        assert _final(Z, name, 500)[k] == 0.0, name


@given(awkward_datasets())
@settings(deadline=None)
def test_awkward_data_never_give_nan(ds):
    for name in ALL:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run(ds.Z, RunConfig(name, 2000), checkpoints=[2000])
        assert np.isfinite(result.w).all(), (name, ds.spec)
        assert np.isfinite(result.state.moments).all(), (name, ds.spec)
