"""The l_inf max-margin face, and the reference bundle built on it.

The l_inf max margin is often attained on a whole face, not at one point
(theory, section 6). With ``gamma_inf`` the l_inf max margin, the face is

.. math::

    F = \\{ w : \\|w\\|_\\infty \\le 1,\\ Z w \\ge \\gamma_\\infty (1 - \\rho) \\},

where the relaxation ``rho = 1e-9`` (``relax``) keeps ``F`` well-posed in floating
point: ``gamma_inf`` is recomputed in numpy from an LP vertex, and without the
relaxation the face would be a set that rounding (and the LP solvers' own
feasibility tolerances) can shrink or empty. Points of ``F`` are l_inf optimal to
within a relative ``1e-9``, far below any tolerance used to judge convergence;
the ranges over the unrelaxed face are bounded separately (``width_bound``).

Solvers. Three kinds of solve build a face.

* An exact vertex and ``gamma_inf``: the margin-form LP ``max t s.t. Z w >= t,
  ||w||_inf <= 1`` by HiGHS's dual simplex through :func:`scipy.optimize.linprog`
  (options :data:`HIGHS_OPTIONS`), certified by its duals and required to agree
  with the pinned Clarabel solution of :func:`max_margin` to ``1e-7 max|z|``. The
  simplex margin is used because an interior-point margin is only accurate to
  about ``1e-9``, and on ill-conditioned data that error alone widens the face by
  ``1e-5``.
* The ``2 d`` coordinate ranges, also by dual simplex, not by Clarabel: these
  programs are degenerate by nature (the optimum of a free coordinate is itself
  a face), and on them Clarabel ended ``optimal_inaccurate`` in about a third of
  the solves with certified errors up to ``1e-6``, while the simplex method
  returned exact vertices with certified errors near ``2e-9``, four times faster.
  Each range is certified by weak duality: for the multipliers ``mu >= 0`` of
  ``Z w >= g`` and any margin ``g``,
  ``min {c . w : w in F(g)} >= g sum(mu) - ||c - Z^T mu||_1``. Evaluated at the
  unrelaxed ``gamma_inf`` this also bounds each range over the exact face
  (``width_bound``), which is what decides fixed and free coordinates.
* A centre for the dimension estimate: the zero-objective LP over the face by the
  pinned Clarabel solver, whose interior-point answer lies near the centre. On
  the thin relaxed face it often ends ``optimal_inaccurate``; as it is no
  reference, a feasible answer is then used with a log entry, not a warning (the
  status stays in ``centre_info``).

Projections onto the face are computed exactly by a dual active-set method in
numpy, and their KKT conditions are checked before they are returned.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np
import scipy
from scipy.optimize import linprog

from theorybox.errors import InvalidDataError, SolverError
from theorybox.references.maxmargin import (
    CHECK_TOLERANCES,
    MaxMargin,
    SolveInfo,
    _as_vector,
    _as_z,
    _options,
    _run,
    cosine,
    linf_gap,
    max_margin,
)

__all__ = [
    "FACE_RELAX",
    "HIGHS_OPTIONS",
    "LinfFace",
    "References",
    "linf_face",
    "project_to_face",
    "face_distance",
    "face_cosine",
    "compute_references",
]

logger = logging.getLogger(__name__)

#: Relative relaxation of the face's margin constraint (see the module docstring).
FACE_RELAX = 1e-9

#: Options of the coordinate-range LPs (HiGHS dual simplex via scipy).
HIGHS_OPTIONS: dict[str, Any] = {
    "method": "highs-ds",
    "primal_feasibility_tolerance": 1e-10,
    "dual_feasibility_tolerance": 1e-10,
    "presolve": True,
}


@dataclass(frozen=True, eq=False)
class LinfFace:
    """The set of l_inf max-margin directions, described coordinate by coordinate.

    Attributes
    ----------
    Z : numpy.ndarray
        The data, as given (a copy).
    gamma : float
        ``gamma_inf``: the margin of an exact simplex vertex (data units),
        certified by its duals and checked against the Clarabel solution.
    gamma_face : float
        ``gamma * (1 - relax)``: the margin every point of the face reaches.
    relax : float
        The relative relaxation ``rho``.
    lower, upper : numpy.ndarray
        For each coordinate, its minimum and maximum over the relaxed face,
        attained by points in ``points`` (certified to ``1e-7``).
    width_bound : numpy.ndarray
        For each coordinate, an upper bound on its range over the unrelaxed face
        ``rho = 0``, from the range LPs' duals (weak duality). On ill-conditioned
        data the relaxation alone can widen a range by ``rho gamma`` times the
        duals' sum, which reached ``1e-5`` on Gaussian data; this bound removes
        that artefact.
    fixed : numpy.ndarray of bool
        ``width_bound <= fix_tol``: the coordinate has one value on the face.
    free : numpy.ndarray of int
        Indices of the coordinates that are not fixed.
    dimension : int
        Estimate of the face's dimension (0 for a point): ``d`` minus the rank of
        the constraints within ``fix_tol`` of tight at the centre, and at most
        ``len(free)``. It is exact when the centre lies in the relative interior
        and no constraint that is not tight on the whole face passes within
        ``fix_tol`` of it.
    is_point : bool
        Every coordinate is fixed: the l_inf max-margin direction is unique.
    vertex : numpy.ndarray
        The exact simplex vertex of the face (unit l_inf norm).
    centre : numpy.ndarray
        A point of the face near its centre (interior-point LP, zero objective).
    fix_tol : float
        The tolerance on ranges (and on tightness, as distance to a hyperplane).
    linf : MaxMargin
        The Clarabel l_inf solve the face was checked against.
    info : SolveInfo
        Summary record of the ``2 d`` HiGHS range LPs (count, total time, worst
        residuals; ``max_certified_gap`` bounds the error of every range).
    vertex_info : SolveInfo
        Record of the simplex l_inf LP that gives ``vertex`` and ``gamma``.
    centre_info : SolveInfo
        Record of the Clarabel centre LP.
    points : numpy.ndarray, shape (2 d + 2, d)
        Every point of the face found: the vertex, the range LP vertices, and the
        centre (last row).
    """

    Z: np.ndarray
    gamma: float
    gamma_face: float
    relax: float
    lower: np.ndarray
    upper: np.ndarray
    width_bound: np.ndarray
    fixed: np.ndarray
    free: np.ndarray
    dimension: int
    is_point: bool
    vertex: np.ndarray
    centre: np.ndarray
    fix_tol: float
    linf: MaxMargin
    info: SolveInfo
    vertex_info: SolveInfo
    centre_info: SolveInfo
    points: np.ndarray = field(repr=False)


@dataclass(frozen=True, eq=False)
class References:
    """The reference directions of one dataset.

    Attributes
    ----------
    l2 : MaxMargin
        ``w_2*`` (unit l2 norm) and ``gamma_2``.
    linf : MaxMargin
        One l_inf max-margin direction (unit l_inf norm) and ``gamma_inf``.
    face : LinfFace
        The whole l_inf max-margin set.
    l2_linf_gap : float
        The l_inf margin gap of ``w_2*``: ``gamma_inf - min_i z_i . w_2* /
        ||w_2*||_inf`` (data units).
    discriminating : bool
        ``l2_linf_gap > 1e-6 gamma_inf``: ``w_2*`` is not l_inf optimal, so
        convergence to l2 and to l_inf can be told apart on these data.
    nearest : numpy.ndarray
        The point of the face nearest to ``w_2* / ||w_2*||_inf``.
    d2inf : float
        ``|| w_2*/||w_2*||_2 - nearest/||nearest||_2 ||_2``: how far (as unit
        vectors) ``w_2*`` is from the l_inf face; a yardstick for "near l2" versus
        "near l_inf".
    """

    l2: MaxMargin
    linf: MaxMargin
    face: LinfFace
    l2_linf_gap: float
    discriminating: bool
    nearest: np.ndarray
    d2inf: float


def _feasibility(z: np.ndarray, x: np.ndarray, g_face: float) -> float:
    """Largest violation of ``||x||_inf <= 1`` and ``z x >= g_face`` (scaled)."""
    return max(0.0, float(np.abs(x).max()) - 1.0, g_face - float((z @ x).min()))


def _highs(
    c: np.ndarray, a_ub: np.ndarray, b_ub: np.ndarray, bounds: Any, what: str
) -> tuple[np.ndarray, np.ndarray, SolveInfo]:
    """Solve ``min c x s.t. a_ub x <= b_ub`` with HiGHS; return x, mu >= 0, record.

    ``mu`` are the multipliers of the inequalities written as ``-a_ub x >= -b_ub``.
    """
    opts = dict(HIGHS_OPTIONS)
    method = opts.pop("method")
    start = time.perf_counter()
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method=method, options=opts)
    wall = time.perf_counter() - start
    if res.status != 0 or res.x is None:
        raise SolverError(
            f"HiGHS ended the {what} with status {res.status} ({res.message}); the "
            "face is non-empty by construction, so this is a solver failure. "
            "Rescale features of very different sizes, or recompute the l_inf "
            "reference."
        )
    mu = np.clip(-np.asarray(res.ineqlin.marginals, dtype=np.float64), 0.0, None)
    info = SolveInfo(
        problem=what,
        solver="HIGHS",
        solver_version=f"scipy {scipy.__version__}",
        cvxpy_version=str(cp.__version__),
        options=dict(HIGHS_OPTIONS),
        status="optimal",
        solve_time=None,
        wall_time=wall,
        iterations=int(res.nit),
    )
    return np.asarray(res.x, dtype=np.float64), mu, info


def _verify(info: SolveInfo, residuals: dict[str, float], what: str) -> SolveInfo:
    """Check a HiGHS answer's violation and certified gap; return the record."""
    limits = {
        "primal_infeasibility": CHECK_TOLERANCES["feasibility_atol"],
        "certified_gap": CHECK_TOLERANCES["certificate_atol"],
        "margin_mismatch": CHECK_TOLERANCES["margin_atol"],
    }
    bad = [
        f"{k} = {v:.3g} > {limits[k]:g}"
        for k, v in residuals.items()
        if not abs(v) <= limits[k]
    ]
    if bad:
        raise SolverError(
            f"the {what} failed the a-posteriori check ({'; '.join(bad)}); it is "
            "not used. Rescale features of very different sizes."
        )
    return SolveInfo(**{**info.to_dict(), "residuals": dict(residuals)})


def _linf_vertex(z: np.ndarray) -> tuple[np.ndarray, float, SolveInfo]:
    """An exact l_inf max-margin vertex by simplex: ``max t, Z w >= t, |w| <= 1``."""
    n, d = z.shape
    c = np.zeros(d + 1)
    c[-1] = -1.0
    a_ub = np.hstack([-z, np.ones((n, 1))])
    bounds = [(-1.0, 1.0)] * d + [(None, None)]
    what = "l_inf margin-form LP (simplex)"
    x, mu, info = _highs(c, a_ub, np.zeros(n), bounds, what)
    v = x[:d]
    gamma = float((z @ v).min())
    upper = float(np.abs(z.T @ mu).sum() / mu.sum()) if mu.sum() > 0 else np.inf
    res = {
        "primal_infeasibility": max(0.0, float(np.abs(v).max()) - 1.0),
        "certified_gap": upper - gamma,
    }
    return v, gamma, _verify(info, res, what)


def _summary(infos: list[SolveInfo], what: str) -> SolveInfo:
    """Fold several solve records into one (summed times, worst residuals)."""
    iters = [i.iterations for i in infos if i.iterations is not None]
    keys = sorted({k for i in infos for k in i.residuals})
    first = infos[0]
    return SolveInfo(
        problem=what,
        solver=first.solver,
        solver_version=first.solver_version,
        cvxpy_version=first.cvxpy_version,
        options=first.options,
        status=first.status,
        solve_time=None,
        wall_time=float(sum(i.wall_time for i in infos)),
        iterations=max(iters) if iters else None,
        residuals={
            f"max_{k}": max(i.residuals.get(k, 0.0) for i in infos) for k in keys
        },
        n_solves=len(infos),
    )


def _centre(
    z: np.ndarray, g_face: float, opts: dict[str, Any]
) -> tuple[np.ndarray, SolveInfo]:
    """Return an interior-point solution of the zero-objective LP over the face."""
    d = z.shape[1]
    x = cp.Variable(d)
    problem = cp.Problem(cp.Minimize(0), [z @ x >= g_face, x <= 1, x >= -1])
    info = _run(problem, "l_inf face centre LP", opts)
    xv = None if x.value is None else np.asarray(x.value, dtype=np.float64)
    infeas = None if xv is None else _feasibility(z, xv, g_face)
    _accept(info, xv, infeas, "l_inf face centre LP")
    res = {"primal_infeasibility": float(infeas)}
    return np.clip(xv, -1.0, 1.0), SolveInfo(**{**info.to_dict(), "residuals": res})


def _accept(info: SolveInfo, x: Any, infeas: float | None, what: str) -> None:
    """Apply the status policy to the Clarabel centre solve (raise on failure)."""
    if info.status not in ("optimal", "optimal_inaccurate") or x is None:
        raise SolverError(
            f"Clarabel ended the {what} with status '{info.status}' after "
            f"{info.iterations} iterations; the face is non-empty by construction, "
            "so this is a solver failure. Raise 'max_iter' in solver_options or "
            "recompute the l_inf reference."
        )
    limit = CHECK_TOLERANCES["feasibility_atol"]
    if infeas is None or not infeas <= limit:
        raise SolverError(
            f"the {what} ended '{info.status}' with a point outside the face "
            f"(violation {infeas:.3g} > {limit:g} max|z|); it is not used. Raise "
            "'max_iter' in solver_options."
        )
    if info.status == "optimal_inaccurate":
        # The centre only feeds the dimension estimate and is no reference, so a
        # feasible inaccurate answer is logged (and kept in centre_info), not
        # warned about: on the thin relaxed face it is the common case.
        logger.info("%s ended 'optimal_inaccurate'; feasible, used", what)


def linf_face(
    Z: Any,
    ref: MaxMargin | None = None,
    *,
    relax: float = FACE_RELAX,
    fix_tol: float = 1e-6,
    solver_options: dict[str, Any] | None = None,
) -> LinfFace:
    """Describe the l_inf max-margin face of ``Z`` coordinate by coordinate.

    .. math::

        F = \\{ w : \\|w\\|_\\infty \\le 1,\\ Z w \\ge \\gamma_\\infty (1 - \\rho) \\},
        \\qquad [\\min_F w_k, \\max_F w_k] \\text{ for each } k .

    Parameters
    ----------
    Z : array_like, shape (N, d)
        Rows ``z_i = y_i x_i``.
    ref : MaxMargin, optional
        A result of ``max_margin(Z, "inf")`` on the same data, to reuse instead of
        solving again.
    relax : float
        The relative relaxation ``rho`` of the margin constraint.
    fix_tol : float
        A coordinate whose range is at most ``fix_tol`` counts as fixed.
    solver_options : dict, optional
        Overrides of the pinned Clarabel options (l_inf solve and centre).

    Returns
    -------
    LinfFace
        Coordinate ranges, fixed and free coordinates, dimension estimate.

    Raises
    ------
    NotSeparableError
        The data are not separable (from the l_inf solve).
    SolverError
        A range LP failed or did not verify.
    InvalidDataError
        ``ref`` is not an l_inf result for these data.
    """
    z0 = _as_z(Z)
    n, d = z0.shape
    scale = float(np.abs(z0).max())
    z = z0 / scale
    opts = _options(solver_options)

    # The l_inf solution: Clarabel's (solved or reused), checked against an exact
    # simplex vertex whose margin becomes the face's gamma.
    if ref is None:
        ref = max_margin(z0, "inf", solver_options=solver_options)
    elif ref.p != "inf" or ref.w.shape != (d,):
        raise InvalidDataError(
            f"ref has p = {ref.p!r} and {ref.w.size} coordinates; pass the result "
            f"of max_margin(Z, 'inf') for these data (d = {d})."
        )
    vertex, g_v, vertex_info = _linf_vertex(z)
    if abs(g_v * scale - ref.gamma) > CHECK_TOLERANCES["margin_atol"] * scale:
        raise InvalidDataError(
            f"ref.gamma = {ref.gamma:.9g} but the simplex l_inf margin of these data "
            f"is {g_v * scale:.9g}; ref was computed on other data or is "
            "inaccurate. Pass ref=None to solve afresh."
        )
    g_face = g_v * (1.0 - relax)

    # Coordinate ranges over the relaxed face, each with simplex duals mu.
    points = [vertex]
    infos = []
    bound_lo = np.empty(d)
    bound_hi = np.empty(d)
    for k in range(d):
        for sign in (1.0, -1.0):
            c = np.zeros(d)
            c[k] = sign
            what = f"l_inf face {'min' if sign > 0 else 'max'} w[{k}] LP"
            x, mu, info = _highs(c, -z, np.full(n, -g_face), (-1.0, 1.0), what)

            # Weak duality at any margin g: min_F(g) c.x >= g sum(mu) - |c - Z^T mu|_1.
            slack = float(np.abs(c - z.T @ mu).sum())
            res = {
                "primal_infeasibility": _feasibility(z, x, g_face),
                "certified_gap": float(c @ x) - (g_face * float(mu.sum()) - slack),
            }
            infos.append(_verify(info, res, what))
            at_vertex = g_v * float(mu.sum()) - slack
            if sign > 0:
                bound_lo[k] = at_vertex
            else:
                bound_hi[k] = -at_vertex
            points.append(np.clip(x, -1.0, 1.0))
    summary = _summary(infos, "l_inf face coordinate ranges")

    # The centre, from the interior-point solver.
    centre, centre_info = _centre(z, g_face, opts)
    points.append(centre)
    pts = np.array(points)

    # Ranges over the relaxed face are attained by the points found; the widths
    # over the unrelaxed face are bounded by the duals evaluated at gamma.
    lower = pts.min(axis=0)
    upper = pts.max(axis=0)
    width_bound = np.clip(
        np.minimum(bound_hi, upper) - np.maximum(bound_lo, lower), 0.0, None
    )
    fixed = width_bound <= fix_tol
    free = np.flatnonzero(~fixed)

    # Dimension: d minus the rank of the constraints tight at the centre (a lower
    # bound, exact when the centre is in the relative interior), at most len(free).
    row_norms = np.linalg.norm(z, axis=1)
    tight = (z @ centre - g_face) <= fix_tol * row_norms
    tight_rows = z[tight] / row_norms[tight, None]
    tight_box = np.eye(d)[(1.0 - np.abs(centre)) <= fix_tol]
    active = np.vstack([tight_rows, tight_box])
    rank_active = int(np.linalg.matrix_rank(active)) if active.size else 0
    dimension = min(free.size, d - rank_active)
    logger.debug(
        "l_inf face: %d free of %d coordinates, dimension %d, %d tight constraints",
        free.size,
        d,
        dimension,
        active.shape[0],
    )
    return LinfFace(
        Z=z0,
        gamma=g_v * scale,
        gamma_face=g_face * scale,
        relax=float(relax),
        lower=lower,
        upper=upper,
        width_bound=width_bound,
        fixed=fixed,
        free=free,
        dimension=int(dimension),
        is_point=bool(free.size == 0),
        vertex=vertex,
        centre=centre,
        fix_tol=float(fix_tol),
        linf=ref,
        info=summary,
        vertex_info=vertex_info,
        centre_info=centre_info,
        points=pts,
    )


def _dual_active_set(
    a: np.ndarray, b: np.ndarray, target: np.ndarray, max_iter: int
) -> tuple[np.ndarray, np.ndarray, list[int], int]:
    """Project ``target`` onto ``{x : a x >= b}`` by a dual active-set method.

    The Goldfarb-Idnani scheme with identity Hessian: start at the unconstrained
    minimum ``x = target``; while a constraint ``p`` is violated, move along the
    part of ``a_p`` orthogonal to the active normals ``N`` (keeping the active
    constraints tight and ``x = target + N u`` with ``u >= 0``), dropping an active
    constraint whose multiplier reaches zero first, or, when ``a_p`` depends on
    the active normals, taking a pure dual step that drops one. The working set
    stays linearly independent, so the final point satisfies the KKT conditions
    to rounding, degenerate vertices included.

    Returns
    -------
    x, u, active, iterations
        The projection, the multipliers, the active indices, the steps taken.
    """
    x = target.copy()
    active: list[int] = []
    u = np.zeros(0)
    norms = np.linalg.norm(a, axis=1)
    for it in range(max_iter):
        # Step 1: the most violated constraint (by distance to its hyperplane).
        s = (a @ x - b) / norms
        p = int(np.argmin(s))
        if s[p] >= -1e-13:
            return (*_refine(a[active], b[active], target, x, u), active, it)
        u_p = 0.0

        # Step 2: move until p is tight, dropping blocking multipliers.
        while True:
            n_p = a[p]
            if active:
                nmat = a[active].T
                r = np.linalg.lstsq(nmat, n_p, rcond=None)[0]
                step_dir = n_p - nmat @ r
            else:
                r = np.zeros(0)
                step_dir = n_p.copy()
            pos = r > 1e-14
            t1, drop = np.inf, -1
            if pos.any():
                ratios = np.full(r.size, np.inf)
                ratios[pos] = u[pos] / r[pos]
                drop = int(np.argmin(ratios))
                t1 = float(ratios[drop])
            zz = float(step_dir @ step_dir)
            slack = float(n_p @ x - b[p])
            t2 = -slack / zz if zz > 1e-24 * float(n_p @ n_p) else np.inf
            if not np.isfinite(min(t1, t2)):
                raise SolverError(
                    "the face projection found the face empty (constraint "
                    f"{p} cannot be satisfied); recompute the face."
                )
            t = min(t1, t2)
            x = x + (0.0 if not np.isfinite(t2) else t) * step_dir
            u = u - t * r
            u_p += t
            if t2 <= t1:
                active.append(p)
                u = np.append(np.clip(u, 0.0, None), u_p)
                break
            del active[drop]
            u = np.delete(u, drop)
    raise SolverError(
        f"the face projection did not finish in {max_iter} active-set steps; "
        "rescale features of very different sizes."
    )


def _refine(
    rows: np.ndarray, rhs: np.ndarray, target: np.ndarray, x: np.ndarray, u: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two rounds of iterative refinement of ``rows x = rhs``, ``x - target =
    rows^T u`` on the final working set (its rows can be ill-conditioned)."""
    if rows.shape[0] == 0:
        return x, u
    for _ in range(2):
        dx = np.linalg.lstsq(rows, rhs - rows @ x, rcond=None)[0]
        x = x + dx
        u = u + np.linalg.lstsq(rows.T, x - target - rows.T @ u, rcond=None)[0]
    return x, u


def project_to_face(face: LinfFace, u: Any) -> np.ndarray:
    """Return the point of the face nearest to ``u / ||u||_inf``.

    .. math::

        \\operatorname{proj}_F(u) = \\arg\\min_{x \\in F}
        \\| x - u / \\|u\\|_\\infty \\|_2 .

    Solved exactly by a dual active-set method in numpy (no interior-point
    tolerance: the face is often a degenerate point, where an interior-point
    answer is only accurate to the square root of its tolerance). The answer is
    then certified by its KKT conditions (feasibility, ``mu >= 0``,
    complementarity relative to ``max(1, max mu)``, and stationarity, each to
    ``1e-10``).

    Parameters
    ----------
    face : LinfFace
        The face, from :func:`linf_face`.
    u : array_like, shape (d,)
        A nonzero direction (its scale does not matter).

    Returns
    -------
    numpy.ndarray
        The nearest point (unit l_inf scale); ``u / ||u||_inf`` itself when it is
        already in the face.

    Raises
    ------
    SolverError
        The projection did not finish or did not verify.
    """
    z0 = face.Z
    n, d = z0.shape
    scale = float(np.abs(z0).max())
    z = z0 / scale
    g_face = face.gamma_face / scale
    target = _as_vector(u, d, "u")
    target = target / np.abs(target).max()

    # A direction already in the face is its own projection.
    if _feasibility(z, target, g_face) == 0.0:
        return target

    # Constraints a x >= b: margins, then x <= 1 and x >= -1.
    eye = np.eye(d)
    a = np.vstack([z, -eye, eye])
    b = np.concatenate([np.full(n, g_face), -np.ones(d), -np.ones(d)])
    x, mu, active, steps = _dual_active_set(a, b, target, 20 * (n + 2 * d))
    active = np.asarray(active, dtype=int)

    # Certify: the KKT conditions of min 1/2 ||x - target||^2 s.t. a x >= b.
    kkt = {
        "primal_infeasibility": float(max(0.0, (b - a @ x).max())),
        "dual_negativity": float(max(0.0, -mu.min())) if mu.size else 0.0,
        "complementarity": float(
            np.abs(mu * (a[active] @ x - b[active])).max() / max(1.0, mu.max())
        )
        if mu.size
        else 0.0,
        "stationarity": float(np.abs(x - target - a[active].T @ mu).max())
        if mu.size
        else float(np.abs(x - target).max()),
    }
    if max(kkt.values()) > 1e-10:
        raise SolverError(
            f"the l_inf face projection did not verify (KKT residuals {kkt}); "
            "rescale features of very different sizes."
        )
    logger.debug("face projection: %d steps, %d active, KKT %s", steps, mu.size, kkt)
    return np.clip(x, -1.0, 1.0)


def face_distance(face: LinfFace, u: Any) -> float:
    """Return the l2 distance from ``u / ||u||_inf`` to the l_inf face.

    Parameters
    ----------
    face : LinfFace
        The face, from :func:`linf_face`.
    u : array_like, shape (d,)
        A nonzero direction.

    Returns
    -------
    float
        ``|| proj_F(u) - u / ||u||_inf ||_2``; zero when the direction is l_inf
        optimal (to the relaxation ``face.relax``).
    """
    target = _as_vector(u, face.Z.shape[1], "u")
    target = target / np.abs(target).max()
    return float(np.linalg.norm(project_to_face(face, target) - target))


def face_cosine(face: LinfFace, w: Any) -> float:
    """Return the cosine between ``w`` and its nearest point of the l_inf face.

    Parameters
    ----------
    face : LinfFace
        The face, from :func:`linf_face`.
    w : array_like, shape (d,)
        A nonzero direction.

    Returns
    -------
    float
        In ``[-1, 1]``; exactly 1 when ``w`` is in the face.
    """
    x = project_to_face(face, w)
    target = _as_vector(w, x.shape[0], "w")
    if np.array_equal(x, target / np.abs(target).max()):
        # w is in the face: its projection is w itself, up to scale.
        return 1.0
    return cosine(w, x)


def compute_references(
    Z: Any,
    *,
    solver_options: dict[str, Any] | None = None,
    discriminating_rtol: float = 1e-6,
) -> References:
    """Compute ``w_2*``, the l_inf face, and how far apart they are.

    Parameters
    ----------
    Z : array_like, shape (N, d)
        Rows ``z_i = y_i x_i``.
    solver_options : dict, optional
        Overrides of the pinned Clarabel options, for every solve.
    discriminating_rtol : float
        ``w_2*`` counts as not l_inf optimal when its l_inf gap exceeds
        ``discriminating_rtol * gamma_inf``.

    Returns
    -------
    References
        The l2 and l_inf results, the face, and the discrimination figures.
    """
    z = _as_z(Z)

    # The two max-margin problems, then the face around the l_inf solution.
    l2 = max_margin(z, 2, solver_options=solver_options)
    linf = max_margin(z, "inf", solver_options=solver_options)
    face = linf_face(z, ref=linf, solver_options=solver_options)

    # How far w_2* is from being l_inf optimal, in margin and in direction.
    gap = linf_gap(z, l2.w, face.gamma)
    nearest = project_to_face(face, l2.w)
    a = l2.w / np.linalg.norm(l2.w)
    b = nearest / np.linalg.norm(nearest)
    d2inf = float(np.linalg.norm(a - b))
    discriminating = bool(gap > discriminating_rtol * face.gamma)
    logger.info(
        "references: gamma_2 %.6g, gamma_inf %.6g, l_inf gap of w_2* %.3g, "
        "d2inf %.3g, face dimension %d",
        l2.gamma,
        face.gamma,
        gap,
        d2inf,
        face.dimension,
    )
    return References(
        l2=l2,
        linf=linf,
        face=face,
        l2_linf_gap=float(gap),
        discriminating=discriminating,
        nearest=nearest,
        d2inf=d2inf,
    )
