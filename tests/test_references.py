"""Tests of theorybox.references: max-margin directions and the l_inf face.

Closed-form answers are checked to ``1e-7`` (the solvers are interior-point
methods run to ``1e-8``); certificates and scalings follow cases K7, K8 and K9 of
the project's case list.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import clarabel
import cvxpy as cp
import mpmath
import numpy as np
import pytest

import theorybox.references.maxmargin as mm
from theorybox.errors import (
    InvalidDataError,
    NotSeparableError,
    SolverAccuracyWarning,
    SolverError,
)
from theorybox.references import (
    CHECK_TOLERANCES,
    SOLVER_OPTIONS,
    compute_references,
    cosine,
    face_cosine,
    face_distance,
    hinge_slack,
    is_linf_optimal,
    linf_face,
    linf_gap,
    max_margin,
    merge_duplicate_duals,
    normalised_margin,
    project_to_face,
)

ATOL = 1e-7
PS = [2, "inf", 1]
FORMS = ["norm", "margin"]
IDENTITY = np.array([[1.0, 0.0], [0.0, 1.0]])
DUPLICATED = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
SPARSE3 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [2.0, 2.0, 1.0]])
CONTRADICTION = np.array([[1.0, 0.0], [-1.0, 0.0]])


def _xor() -> np.ndarray:
    x = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    y = x[:, 0] * x[:, 1]
    return y[:, None] * x


def _gaussian(n: int, d: int, seed: int) -> np.ndarray:
    """Separable Gaussian data with a margin pushed off the boundary."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    direction = rng.standard_normal(d)
    s = x @ direction
    y = np.where(s >= 0, 1.0, -1.0)
    x += 0.3 * y[:, None] * direction / np.linalg.norm(direction)
    return y[:, None] * x


@pytest.fixture(autouse=True)
def _accuracy_warnings_are_errors():
    """No test may pass by silently accepting an inaccurate answer."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SolverAccuracyWarning)
        yield


# ---------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_l2_identity_direction_margin_and_duals(form):
    # K7: w* = (1, 1) for the unnormalised problem, duals (1, 1), w* = sum l_i z_i.
    r = max_margin(IDENTITY, 2, form=form)
    np.testing.assert_allclose(r.w, np.ones(2) / math.sqrt(2), atol=ATOL)
    assert r.gamma == pytest.approx(1 / math.sqrt(2), abs=ATOL)
    np.testing.assert_allclose(r.duals, [1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(IDENTITY.T @ r.duals, [1.0, 1.0], atol=1e-6)
    assert r.duals_unique
    assert list(r.support) == [0, 1]
    assert r.p == 2 and r.form == form


@pytest.mark.parametrize("form", FORMS)
def test_linf_identity(form):
    r = max_margin(IDENTITY, "inf", form=form)
    np.testing.assert_allclose(r.w, [1.0, 1.0], atol=ATOL)
    assert r.gamma == pytest.approx(1.0, abs=ATOL)
    # LP strong duality: sum of the norm-form duals is ||v||_inf = 1 / gamma.
    assert r.duals.sum() == pytest.approx(1.0, abs=1e-6)
    assert not r.duals_unique


def test_single_point_l2_and_linf():
    r2 = max_margin([[3.0, 4.0]], 2)
    np.testing.assert_allclose(r2.w, [0.6, 0.8], atol=ATOL)
    assert r2.gamma == pytest.approx(5.0, abs=ATOL)
    np.testing.assert_allclose(r2.duals, [1 / 25], atol=1e-9)

    # max 3 w1 + 4 w2 over the unit l_inf ball: the corner (1, 1), margin 7.
    rinf = max_margin([[3.0, 4.0]], "inf")
    np.testing.assert_allclose(rinf.w, [1.0, 1.0], atol=ATOL)
    assert rinf.gamma == pytest.approx(7.0, abs=ATOL)
    face = linf_face([[3.0, 4.0]], ref=rinf)
    assert face.is_point and face.dimension == 0
    np.testing.assert_allclose(face.vertex, [1.0, 1.0], atol=1e-12)


@pytest.mark.parametrize(
    ("z", "w", "gamma"),
    [([[1.0, 2.0]], [0.0, 1.0], 2.0), ([[3.0, 4.0]], [0.0, 1.0], 4.0)],
)
@pytest.mark.parametrize("form", FORMS)
def test_l1_closed_form(z, w, gamma, form):
    r = max_margin(z, 1, form=form)
    np.testing.assert_allclose(r.w, w, atol=ATOL)
    assert r.gamma == pytest.approx(gamma, abs=ATOL)
    assert np.abs(r.w).sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("p", PS)
def test_margin_form_matches_norm_form(p):
    z = _gaussian(25, 4, seed=1)
    a = max_margin(z, p, form="norm")
    b = max_margin(z, p, form="margin")
    assert a.gamma == pytest.approx(b.gamma, rel=1e-7)
    if p == 2:
        np.testing.assert_allclose(a.w, b.w, atol=1e-6)
        np.testing.assert_allclose(a.duals, b.duals, atol=1e-5)


@pytest.mark.parametrize("p", PS)
def test_certificate_brackets_margin(p):
    z = _gaussian(40, 6, seed=2)
    r = max_margin(z, p)
    scale = np.abs(z).max()
    assert r.gamma <= r.gamma_upper + 1e-12 * scale
    assert r.gamma_upper - r.gamma <= CHECK_TOLERANCES["certificate_atol"] * scale
    assert abs(r.gamma - r.gamma_solver) <= 1e-7 * scale
    assert r.gamma == pytest.approx(normalised_margin(z, r.w, p), rel=1e-14)
    assert np.linalg.norm(r.w, {2: 2, "inf": np.inf, 1: 1}[p]) == pytest.approx(1.0)
    margins = z @ r.w
    assert np.all(margins[r.support] <= r.gamma * (1 + 1e-6))


def test_l2_stationarity_w_is_combination_of_support():
    z = _gaussian(30, 5, seed=3)
    r = max_margin(z, 2)
    v = z.T @ r.duals
    np.testing.assert_allclose(v / np.linalg.norm(v), r.w, atol=1e-7)
    # ||v|| = 1 / gamma for the unnormalised problem.
    assert np.linalg.norm(v) == pytest.approx(1 / r.gamma, rel=1e-6)
    off_support = np.setdiff1d(np.arange(z.shape[0]), r.support)
    assert np.all(np.abs(r.duals[off_support]) <= 1e-6 * r.duals.max())


# ---------------------------------------------------------------------------
# duplicates (K7)
# ---------------------------------------------------------------------------


def test_duplicate_rows_merge_duals_and_flag_non_unique():
    r = max_margin(DUPLICATED, 2)
    np.testing.assert_allclose(r.w, np.ones(2) / math.sqrt(2), atol=ATOL)
    assert not r.duals_unique
    merged = merge_duplicate_duals(DUPLICATED, r.duals)
    assert list(merged.first) == [0, 2]
    assert list(merged.inverse) == [0, 0, 1]
    np.testing.assert_allclose(merged.duals, [1.0, 1.0], atol=1e-6)


def test_merge_treats_signed_zeros_as_equal():
    z = np.array([[0.0, 1.0], [1.0, -0.0], [1.0, 0.0]])
    merged = merge_duplicate_duals(z, [0.25, 0.5, 0.25])
    assert list(merged.first) == [0, 1]
    np.testing.assert_allclose(merged.duals, [0.25, 0.75])


def test_merge_rejects_wrong_length():
    with pytest.raises(InvalidDataError, match="one multiplier per row"):
        merge_duplicate_duals(DUPLICATED, [1.0, 1.0])


def test_linf_duals_on_duplicates_only_their_total_is_meaningful():
    r = max_margin(DUPLICATED, "inf")
    assert not r.duals_unique
    assert r.duals.sum() == pytest.approx(1.0 / r.gamma, rel=1e-6)


def test_degenerate_support_is_not_claimed_unique():
    # Three tied support vectors in R^2: the l2 duals form a segment.
    z = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    r = max_margin(z, 2)
    np.testing.assert_allclose(r.w, np.ones(2) / math.sqrt(2), atol=ATOL)
    assert len(r.support) == 3
    assert not r.duals_unique


# ---------------------------------------------------------------------------
# non-separable data (K9)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("z", "slack"), [(CONTRADICTION, 2.0), (_xor(), 4.0)])
@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("form", FORMS)
def test_non_separable_raises_with_best_margin_zero(z, slack, p, form):
    with pytest.raises(NotSeparableError, match="not linearly separable") as info:
        max_margin(z, p, form=form)
    assert info.value.best_margin == 0.0
    assert info.value.hinge_slack == pytest.approx(slack, abs=1e-6)


@pytest.mark.parametrize("z", [CONTRADICTION, _xor()])
def test_non_separable_face_and_references_raise(z):
    with pytest.raises(NotSeparableError):
        linf_face(z)
    with pytest.raises(NotSeparableError):
        compute_references(z)


def test_hinge_slack_is_zero_on_separable_data():
    assert hinge_slack(_gaussian(20, 3, seed=4)) == pytest.approx(0.0, abs=1e-7)


# ---------------------------------------------------------------------------
# scaling, forced poor solves, solver records (K8)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("factor", [1e6, 1e-6])
def test_scaling_the_data_leaves_directions_unchanged(p, factor):
    z = _gaussian(30, 5, seed=5)
    base = max_margin(z, p)
    scaled = max_margin(z * factor, p)
    np.testing.assert_allclose(scaled.w, base.w, atol=1e-7)
    assert scaled.gamma == pytest.approx(base.gamma * factor, rel=1e-7)
    power = 2 if p == 2 else 1
    np.testing.assert_allclose(
        scaled.duals * factor**power, base.duals, atol=1e-7 * base.duals.max()
    )


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("form", FORMS)
def test_forced_poor_solve_is_flagged(p, form):
    with pytest.raises(SolverError, match="user_limit|a-posteriori"):
        max_margin(
            _gaussian(30, 5, seed=6), p, form=form, solver_options={"max_iter": 2}
        )


def test_status_is_not_a_certificate(monkeypatch):
    # An 'optimal' status with a perturbed answer must fail the check.
    real_run = mm._run

    def perturbed(problem, what, opts):
        info = real_run(problem, what, opts)
        w = problem.variables()[0]
        w.value = w.value * (1 + 1e-4 * np.arange(w.size))
        return info

    monkeypatch.setattr(mm, "_run", perturbed)
    with pytest.raises(SolverError, match="a-posteriori"):
        max_margin(_gaussian(20, 4, seed=7), 2)


def test_inaccurate_status_with_good_answer_warns(monkeypatch):
    real_run = mm._run

    def relabelled(problem, what, opts):
        info = real_run(problem, what, opts)
        return dataclasses.replace(info, status="optimal_inaccurate")

    monkeypatch.setattr(mm, "_run", relabelled)
    with pytest.warns(SolverAccuracyWarning, match="optimal_inaccurate"):
        r = max_margin(IDENTITY, "inf")
    assert r.info.status == "optimal_inaccurate"
    np.testing.assert_allclose(r.w, [1.0, 1.0], atol=ATOL)


def test_solve_info_is_recorded():
    r = max_margin(IDENTITY, 2, solver_options={"max_iter": 150})
    info = r.info
    assert info.solver == "CLARABEL"
    assert info.solver_version == clarabel.__version__
    assert info.cvxpy_version == cp.__version__
    assert info.options == {**SOLVER_OPTIONS, "max_iter": 150}
    assert info.status == "optimal"
    assert isinstance(info.iterations, int) and info.iterations > 0
    assert info.solve_time is not None and info.solve_time >= 0
    assert info.wall_time >= info.solve_time
    assert {"primal_infeasibility", "margin_mismatch", "certified_gap"} <= set(
        info.residuals
    )
    json.dumps(info.to_dict())
    assert SOLVER_OPTIONS["max_iter"] == 200  # the override did not leak


def test_unknown_solver_option_is_rejected():
    with pytest.raises(InvalidDataError, match="max_iters"):
        max_margin(IDENTITY, 2, solver_options={"max_iters": 5})


# ---------------------------------------------------------------------------
# the l_inf face
# ---------------------------------------------------------------------------


def test_face_of_single_axis_point_is_a_segment():
    # z = [[1, 0]]: every w = (1, t), t in [-1, 1], is l_inf optimal.
    face = linf_face([[1.0, 0.0]])
    assert face.gamma == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(face.lower, [1.0, -1.0], atol=1e-8)
    np.testing.assert_allclose(face.upper, [1.0, 1.0], atol=1e-8)
    assert list(face.free) == [1]
    assert list(face.fixed) == [True, False]
    assert face.dimension == 1
    assert not face.is_point

    # Projection: a point inside is its own projection; outside, the nearest.
    np.testing.assert_array_equal(project_to_face(face, [2.0, 0.6]), [1.0, 0.3])
    np.testing.assert_allclose(project_to_face(face, [0.5, 2.0]), [1.0, 1.0], atol=1e-8)
    assert face_distance(face, [0.5, 2.0]) == pytest.approx(0.75, abs=1e-8)
    assert face_cosine(face, [1.0, -0.5]) == 1.0
    assert face_cosine(face, [0.5, 2.0]) == pytest.approx(
        (0.5 + 2.0) / (math.hypot(0.5, 2.0) * math.sqrt(2)), abs=1e-8
    )


def test_face_with_coordinate_touched_only_off_support():
    # K17's data: w_3 is free on the l_inf face, and w_2* lies in the face.
    face = linf_face(SPARSE3)
    assert list(face.free) == [2]
    assert face.dimension == 1
    np.testing.assert_allclose(face.lower, [1.0, 1.0, -1.0], atol=1e-8)
    np.testing.assert_allclose(face.upper, [1.0, 1.0, 1.0], atol=1e-8)
    refs = compute_references(SPARSE3)
    np.testing.assert_allclose(refs.l2.w, [1 / math.sqrt(2)] * 2 + [0.0], atol=ATOL)
    assert not refs.discriminating
    assert refs.d2inf == pytest.approx(0.0, abs=1e-7)


def test_discriminating_instance():
    z = np.array([[1.0, 0.5]])
    refs = compute_references(z)
    assert refs.face.is_point
    assert refs.l2_linf_gap == pytest.approx(1.5 - 1.25, abs=1e-7)
    assert refs.discriminating
    a = np.array([1.0, 0.5]) / math.hypot(1.0, 0.5)
    b = np.ones(2) / math.sqrt(2)
    assert refs.d2inf == pytest.approx(np.linalg.norm(a - b), abs=1e-7)
    np.testing.assert_allclose(refs.nearest, [1.0, 1.0], atol=1e-8)


def test_face_of_gaussian_data_is_a_certified_point():
    z = _gaussian(40, 8, seed=8)
    ref = max_margin(z, "inf")
    face = linf_face(z, ref=ref)
    assert face.is_point and face.dimension == 0
    assert face.width_bound.max() <= 1e-7
    np.testing.assert_allclose(face.vertex, ref.w, atol=1e-6)
    assert face.gamma == pytest.approx(ref.gamma, rel=1e-7)
    assert face.info.n_solves == 2 * z.shape[1]
    assert face.info.residuals["max_certified_gap"] <= 1e-7
    assert face.vertex_info.solver == "HIGHS"


def test_face_rejects_reference_from_other_data():
    ref = max_margin(_gaussian(20, 3, seed=9), "inf")
    with pytest.raises(InvalidDataError, match="other data"):
        linf_face(_gaussian(20, 3, seed=10), ref=ref)
    with pytest.raises(InvalidDataError, match="max_margin"):
        linf_face(IDENTITY, ref=max_margin(IDENTITY, 2))


def test_projection_onto_a_triangle_face_closed_form():
    # z = [[1, 0, 0], [0, 1, 1]]: gamma_inf = 1 and the face is w1 = 1 with
    # (w2, w3) in the triangle w2 + w3 >= 1, w2 <= 1, w3 <= 1.
    z = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    face = linf_face(z)
    assert face.gamma == pytest.approx(1.0, abs=1e-12)
    assert face.dimension == 2 and list(face.free) == [1, 2]
    np.testing.assert_allclose(face.lower, [1.0, 0.0, 0.0], atol=1e-8)
    np.testing.assert_allclose(face.upper, [1.0, 1.0, 1.0], atol=1e-8)

    # Onto the hypotenuse, onto a corner, and a point already inside.
    np.testing.assert_allclose(
        project_to_face(face, [1.0, 0.0, 0.0]), [1.0, 0.5, 0.5], atol=1e-8
    )
    np.testing.assert_allclose(
        project_to_face(face, [1.0, -1.0, 0.2]), [1.0, 0.0, 1.0], atol=1e-8
    )
    assert face_distance(face, [1.0, -1.0, 0.2]) == pytest.approx(
        math.hypot(1.0, 0.8), abs=1e-8
    )
    assert face_distance(face, [2.0, 1.8, 1.0]) == 0.0


def test_projection_is_no_farther_than_an_interior_point_qp():
    z = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.3, -0.2]])
    face = linf_face(z)
    scale = np.abs(z).max()
    rng = np.random.default_rng(11)
    for _ in range(5):
        u = rng.standard_normal(4)
        x = project_to_face(face, u)
        target = u / np.abs(u).max()
        assert np.abs(x).max() <= 1 + 1e-12
        assert (z @ x).min() >= face.gamma_face - 1e-10 * scale

        # Clarabel's answer to the same QP (feasible only to ~1e-8) is no nearer;
        # it agrees only to about the square root of its tolerance where the
        # projection is degenerate.
        y = cp.Variable(4)
        cp.Problem(
            cp.Minimize(cp.sum_squares(y - target)),
            [z @ y >= face.gamma_face, cp.norm(y, "inf") <= 1],
        ).solve(solver=cp.CLARABEL)
        assert np.linalg.norm(x - target) <= np.linalg.norm(y.value - target) + 1e-7
        np.testing.assert_allclose(x, y.value, atol=1e-3)


def test_linf_gap_and_optimality():
    z = [[1.0, 0.0]]
    assert linf_gap(z, [1.0, 0.3], 1.0) == pytest.approx(0.0, abs=1e-15)
    assert is_linf_optimal(z, [2.0, -2.0], 1.0)
    assert linf_gap(z, [0.5, 1.0], 1.0) == pytest.approx(0.5)
    assert not is_linf_optimal(z, [0.5, 1.0], 1.0)
    assert is_linf_optimal(z, [0.5, 1.0], 1.0, tol=0.6)


# ---------------------------------------------------------------------------
# helpers and validation
# ---------------------------------------------------------------------------


def test_normalised_margin_closed_forms_and_spellings():
    z = [[3.0, 4.0]]
    assert normalised_margin(z, [3.0, 4.0], 2) == pytest.approx(5.0)
    assert normalised_margin(z, [1.0, 1.0], "inf") == pytest.approx(7.0)
    assert normalised_margin(z, [1.0, 1.0], np.inf) == pytest.approx(7.0)
    assert normalised_margin(z, [0.0, 1.0], 1) == pytest.approx(4.0)
    assert normalised_margin(z, [3e300, 4e300], 2) == pytest.approx(5.0)
    with pytest.raises(InvalidDataError, match="p = 3"):
        normalised_margin(z, [1.0, 1.0], 3)
    with pytest.raises(InvalidDataError, match="zero vector"):
        normalised_margin(z, [0.0, 0.0], 2)


def test_cosine_never_leaves_unit_interval():
    rng = np.random.default_rng(12)
    for _ in range(200):
        a = rng.standard_normal(7) * 10.0 ** rng.integers(-150, 150)
        c = cosine(a, a)
        assert c <= 1.0 and c == pytest.approx(1.0)
        assert cosine(a, -a) >= -1.0
    c = cosine([1e-300, 1e-300], [1e300, 1e300])
    assert c <= 1.0 and c == pytest.approx(1.0, abs=1e-15)
    assert cosine([1.0, 0.0], [0.0, 1.0]) == 0.0


def test_cosine_on_mpmath_values_is_a_real_float():
    with mpmath.workdps(50):
        a = [mpmath.mpf(1) / 3, mpmath.sqrt(2)]
        c = cosine(a, a)
    assert isinstance(c, float) and c <= 1.0
    with pytest.raises(InvalidDataError, match="complex"):
        cosine(np.array([1 + 1e-20j, 1.0]), [1.0, 1.0])
    with pytest.raises(InvalidDataError, match="zero vector"):
        cosine([0.0, 0.0], [1.0, 1.0])


@pytest.mark.parametrize(
    ("z", "message"),
    [
        ([1.0, 2.0], "2-D"),
        (np.zeros((0, 2)), "at least one sample"),
        ([[1.0, np.nan]], r"Z\[0, 1\] = nan"),
        ([[0.0, 0.0]], "all zeros"),
        ([["a", "b"]], "float64"),
    ],
)
def test_invalid_data_is_named(z, message):
    with pytest.raises(InvalidDataError, match=message):
        max_margin(z, 2)


def test_unknown_form_and_p_are_rejected():
    with pytest.raises(InvalidDataError, match="form"):
        max_margin(IDENTITY, 2, form="dual")
    with pytest.raises(InvalidDataError, match="p = 'l3'"):
        max_margin(IDENTITY, "l3")
