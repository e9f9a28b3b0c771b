"""The dual fixed point that predicts AdamProxy's limit direction.

Theory.md, claim 3 (Baek, Song, Yun, Thm 4.8 and Algorithm 3). For ``c`` in the
simplex,

.. math::

    M(c) = \\operatorname{diag}\\Big(\\sqrt{\\textstyle\\sum_i c_i^2 z_i^2}\\Big),
    \\qquad
    P(c):\\ \\min_w \\tfrac12 w^\\top M(c) w \\ \\text{s.t.}\\ z_i \\cdot w \\ge 1,
    \\qquad
    T(c) = \\frac{\\lambda(c)}{\\|\\lambda(c)\\|_1},

where ``lambda(c)`` are the optimal multipliers of ``P(c)`` (``z_i^2`` is
coordinate-wise) and exact duplicate rows share their group's multiplier equally.
A fixed point ``c* = T(c*)`` predicts the direction ``w(c*)``. Existence,
uniqueness and the convergence of the iteration are open, so
:func:`solve_fixed_point` iterates

.. math::

    c_{k+1} = (1 - \\delta)\\, T(c_k) + \\delta\\, c_k

for each damping ``delta`` from the uniform start and from random Dirichlet starts,
records ``r_k = ||T(c_k) - c_k||_1``, flags (and warns about) runs that do not reach
``tol``, and reports every distinct fixed point found. Being a fixed point is
necessary for a limit, not sufficient (theory.md, section 6): when the report
holds several, long AdamProxy runs decide.

Coordinates where ``M(c*)_kk = 0`` although samples touch them are left free in
``P(c)`` (``free="allow"`` of :func:`~theorybox.references.mahalanobis.
mahalanobis_margin`) and predicted by the vanishing-coordinate convention of
:mod:`theorybox.proxy.vanishing`. Features that are zero on every sample are
dropped (``w_k = 0``) and listed in :attr:`FixedPointReport.dropped`.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from theorybox.errors import InvalidParameterError, SolverError, TheoryboxWarning
from theorybox.proxy.certificate import Certificate, certify
from theorybox.proxy.vanishing import VanishingDirection, vanishing_direction
from theorybox.references.mahalanobis import MahalanobisProblem
from theorybox.references.maxmargin import _as_z

__all__ = [
    "FixedPointWarning",
    "FixedPointRun",
    "FixedPoint",
    "FixedPointReport",
    "metric_diag",
    "dual_map",
    "solve_fixed_point",
    "predicted_direction",
]

logger = logging.getLogger(__name__)


class FixedPointWarning(TheoryboxWarning):
    """A fixed-point run did not converge, or several fixed points were found."""


def metric_diag(Z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Return the diagonal of ``M(c)``: ``sqrt(sum_i c_i^2 z_ik^2)`` for each ``k``.

    .. math::

        M(c)_{kk} = \\Big(\\sum_i c_i^2 z_{ik}^2\\Big)^{1/2}
    """
    z = np.asarray(Z, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    return np.sqrt((c * c) @ (z * z))


@dataclass(frozen=True, eq=False)
class FixedPointRun:
    """One run of the (damped) iteration from one start.

    Attributes
    ----------
    start : int
        Index of the start (0 is the uniform start when it is used).
    damping : float
        ``delta``.
    c0 : numpy.ndarray
        The start.
    c : numpy.ndarray
        The last iterate ``c_k`` (the one whose residual is ``residuals[-1]``).
    w : numpy.ndarray
        The solution ``w(c_k)`` of ``P(c_k)``, data units.
    converged : bool
        ``residuals[-1] <= tol``.
    iterations : int
        Number of ``T`` evaluations.
    residuals : numpy.ndarray
        ``||T(c_k) - c_k||_1`` for ``k = 0, 1, ...``.
    point : int or None
        Index of the fixed point reached in :attr:`FixedPointReport.points`.
    error : str or None
        Why the run stopped early (a solve of ``P(c)`` failed its check).
    """

    start: int
    damping: float
    c0: np.ndarray
    c: np.ndarray
    w: np.ndarray
    converged: bool
    iterations: int
    residuals: np.ndarray
    point: int | None = None
    error: str | None = None


@dataclass(frozen=True, eq=False)
class FixedPoint:
    """A distinct fixed point ``c*`` and the direction it predicts.

    Attributes
    ----------
    c : numpy.ndarray, shape (N,)
        ``c*`` (from the run with the smallest residual in its cluster), with
        entries at or below ``tol`` set to zero and renormalised.
    w : numpy.ndarray, shape (d,)
        The predicted direction, unit l2: ``D(c*)`` with the vanishing-coordinate
        convention (equal to ``w(c*)`` normalised when nothing vanishes).
    w_support : numpy.ndarray, shape (d,)
        ``w(c*)`` normalised, with vanishing coordinates set to zero.
    residual : float
        ``||T(c*) - c*||_1``.
    iterations : tuple of int
        Iterations of each run that reached it.
    runs : tuple of int
        Indices in :attr:`FixedPointReport.runs` of the runs that reached it.
    starts : tuple of (int, float)
        ``(start, damping)`` of those runs.
    support : numpy.ndarray
        Indices with ``c*_i > 0``.
    direction_group : int
        Points with the same group have direction cosine above ``1 - cos_tol``.
    vanishing : VanishingDirection
        The convention's record: vanishing coordinates, drivers, self-consistency.
    certificate : Certificate
        High-precision certificate of ``(w, c*)``.
    """

    c: np.ndarray
    w: np.ndarray
    w_support: np.ndarray
    residual: float
    iterations: tuple[int, ...]
    runs: tuple[int, ...]
    starts: tuple[tuple[int, float], ...]
    support: np.ndarray
    direction_group: int
    vanishing: VanishingDirection
    certificate: Certificate


@dataclass(frozen=True, eq=False)
class FixedPointReport:
    """Everything :func:`solve_fixed_point` found.

    Attributes
    ----------
    points : list of FixedPoint
        The distinct fixed points, the one reached from the first start first.
    runs : list of FixedPointRun
    converged : numpy.ndarray of bool
        One flag per run.
    unique : bool
        All converged runs reached one direction (one ``direction_group``) and at
        least one run converged.
    n_directions : int
        Number of distinct predicted directions.
    dropped : tuple of int
        Features zero on every sample (``w_k = 0``, not seen by ``M``).
    settings : dict
        ``tol``, ``max_iter``, ``damping``, ``seed``, ``n_starts``, clustering
        tolerances.
    wall_time : float
        Seconds.
    """

    points: list[FixedPoint]
    runs: list[FixedPointRun]
    converged: np.ndarray
    unique: bool
    n_directions: int
    dropped: tuple[int, ...]
    settings: dict = field(default_factory=dict)
    wall_time: float = 0.0

    def summary(self) -> str:
        """A few lines: runs, convergence, distinct points and their directions."""
        lines = [
            f"{len(self.runs)} runs, {int(self.converged.sum())} converged, "
            f"{len(self.points)} distinct weight vector(s) c*, "
            f"{self.n_directions} distinct direction(s) w(c*), "
            f"unique direction={self.unique}"
        ]
        if len(self.points) > self.n_directions:
            lines.append(
                "  several c* give one direction: the fixed points form a set (for"
                " example a continuum of weights on a vanishing coordinate's support)"
            )
        for j, p in enumerate(self.points):
            lines.append(
                f"  point {j}: support {p.support.tolist()}, residual "
                f"{p.residual:.2e}, iterations {list(p.iterations)}, vanishing "
                f"{list(p.vanishing.vanishing)}, certificate ok={p.certificate.ok}"
            )
        return "\n".join(lines)


def dual_map(
    problem: MahalanobisProblem, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate ``T(c) = lambda(c) / ||lambda(c)||_1`` and ``w(c)``.

    Parameters
    ----------
    problem : MahalanobisProblem
        ``P`` on the data (no all-zero features).
    c : numpy.ndarray, shape (N,)

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``T(c)`` (duplicates split equally) and ``w(c)`` (data units).
    """
    sol = problem.solve(metric_diag(problem.Z, c), free="allow")
    lam = sol.duals
    return lam / lam.sum(), sol.w


def _starts(
    n: int, starts: Any, n_starts: int, seed: int, uniform: bool
) -> list[np.ndarray]:
    """The uniform start, the given starts and ``n_starts`` Dirichlet(1) draws."""
    out = [np.full(n, 1.0 / n)] if uniform else []
    if starts is not None:
        arr = np.atleast_2d(np.asarray(starts, dtype=np.float64))
        if arr.shape[1] != n or np.any(arr < 0) or not np.all(arr.sum(axis=1) > 0):
            raise InvalidParameterError(
                f"starts must be rows of N = {n} non-negative numbers with a positive "
                f"sum; got shape {arr.shape}."
            )
        out.extend(row / row.sum() for row in arr)
    rng = np.random.default_rng(seed)
    out.extend(rng.dirichlet(np.ones(n)) for _ in range(int(n_starts)))
    return out


def _check_search(damping: Any, tol: float, max_iter: int) -> np.ndarray:
    """The damping values as an array, after checking the search settings."""
    deltas = np.atleast_1d(np.asarray(damping, dtype=np.float64))
    if np.any(deltas < 0) or np.any(deltas >= 1) or deltas.size == 0:
        raise InvalidParameterError(
            f"damping must be values in [0, 1); got {damping!r}."
        )
    if not (tol > 0 and int(max_iter) >= 1):
        raise InvalidParameterError(
            f"need tol > 0 and max_iter >= 1; got tol={tol!r}, max_iter={max_iter!r}."
        )
    return deltas


def _cluster(cs: list[np.ndarray], converged: list[bool], cluster_tol: float):
    """Indices of the converged runs grouped by ``c`` (l1 distance to the first)."""
    clusters: list[list[int]] = []
    for j, c in enumerate(cs):
        if not converged[j]:
            continue
        for members in clusters:
            if np.abs(cs[members[0]] - c).sum() <= cluster_tol:
                members.append(j)
                break
        else:
            clusters.append([j])
    return clusters


def _iterate(
    problem: MahalanobisProblem,
    c0: np.ndarray,
    damping: float,
    tol: float,
    max_iter: int,
    dual: Callable = None,
) -> tuple[np.ndarray, np.ndarray, list[float], bool, str | None]:
    """Run ``c <- (1 - delta) T(c) + delta c`` until ``||T(c) - c||_1 <= tol``.

    ``dual(problem, c) -> (T(c), w(c))`` is the map (default :func:`dual_map`;
    the batch-size conjecture passes its own). A solve that fails its
    a-posteriori check ends the run (not the search): the run is returned
    unconverged with the error message.
    """
    dual = dual or dual_map
    c = c0.copy()
    history: list[float] = []
    w = np.zeros(problem.Z.shape[1])
    for _ in range(max_iter):
        try:
            tc, w = dual(problem, c)
        except SolverError as exc:
            return c, w, history or [float("nan")], False, str(exc)
        r = float(np.abs(tc - c).sum())
        history.append(r)
        if r <= tol:
            return c, w, history, True, None
        c = (1.0 - damping) * tc + damping * c
    return c, w, history, False, None


def solve_fixed_point(
    Z: Any,
    starts: Any = None,
    n_starts: int = 8,
    damping: Any = (0.0, 0.5),
    tol: float = 1e-10,
    max_iter: int = 500,
    seed: int = 0,
    *,
    uniform: bool = True,
    cluster_tol: float = 1e-6,
    cos_tol: float = 1e-9,
    dps: int = 50,
    solver_options: dict[str, Any] | None = None,
) -> FixedPointReport:
    """Search for the fixed points of ``T`` from many starts and dampings.

    .. math::

        c_{k+1} = (1-\\delta) T(c_k) + \\delta c_k, \\qquad
        r_k = \\|T(c_k) - c_k\\|_1 \\le \\mathrm{tol} .

    Parameters
    ----------
    Z : array_like or Dataset, shape (N, d)
        Rows ``z_i = y_i x_i``; separable.
    starts : array_like, shape (k, N), optional
        Extra starts (rows rescaled to the simplex).
    n_starts : int
        Random starts drawn from Dirichlet(1, ..., 1) with ``seed``.
    damping : float or sequence of float
        The ``delta`` values in ``[0, 1)``; every start runs with each.
    tol : float
        Convergence threshold on ``r_k``.
    max_iter : int
        Evaluations of ``T`` per run.
    seed : int
        Seed of ``numpy.random.default_rng`` for the Dirichlet starts.
    uniform : bool
        Include the uniform start ``c = 1/N`` (as start 0).
    cluster_tol : float
        Converged runs whose ``c`` differ by at most this in l1 are one point.
    cos_tol : float
        Points whose directions have cosine above ``1 - cos_tol`` share a
        ``direction_group``.
    dps : int
        Digits of the certificate of each point.
    solver_options : dict, optional
        Clarabel overrides for every ``P(c)``.

    Returns
    -------
    FixedPointReport

    Warns
    -----
    FixedPointWarning
        A run did not reach ``tol`` in ``max_iter`` iterations (it is flagged, not
        raised), or the converged runs disagree on the direction.
    """
    started = time.perf_counter()
    z_full = _as_z(getattr(Z, "Z", Z))
    n, d = z_full.shape
    deltas = _check_search(damping, tol, max_iter)

    # Drop features that are zero on every sample; M never sees them.
    keep = np.any(z_full != 0.0, axis=0)
    dropped = tuple(int(k) for k in np.flatnonzero(~keep))
    if dropped:
        logger.info("features %s are zero on every sample and are dropped", dropped)
    z = z_full[:, keep]
    problem = MahalanobisProblem(z, solver_options)

    # Iterate from every start with every damping.
    runs: list[FixedPointRun] = []
    for s, c0 in enumerate(_starts(n, starts, n_starts, seed, uniform)):
        for delta in deltas:
            c, w, hist, ok, error = _iterate(
                problem, c0, float(delta), tol, int(max_iter)
            )
            runs.append(
                FixedPointRun(
                    start=s,
                    damping=float(delta),
                    c0=c0,
                    c=c,
                    w=_expand(w, keep),
                    converged=ok,
                    iterations=len(hist),
                    residuals=np.array(hist),
                    error=error,
                )
            )
            logger.debug(
                "start %d, damping %g: converged=%s after %d iterations, r=%.3g",
                s,
                delta,
                ok,
                len(hist),
                hist[-1],
            )
            if error is not None:
                warnings.warn(
                    f"the fixed-point run from start {s} with damping {delta:g} "
                    f"stopped after a failed solve of P(c): {error}",
                    FixedPointWarning,
                    stacklevel=2,
                )
            elif not ok:
                warnings.warn(
                    f"the fixed-point iteration from start {s} with damping {delta:g} "
                    f"did not reach ||T(c) - c||_1 <= {tol:g} in {max_iter} "
                    f"iterations (last residual {hist[-1]:.3g}); slow convergence can "
                    "hint at a competing fixed point. The run is flagged in the "
                    "report.",
                    FixedPointWarning,
                    stacklevel=2,
                )

    # Cluster the converged runs by their c.
    clusters = _cluster([r.c for r in runs], [r.converged for r in runs], cluster_tol)

    # Describe each distinct point: direction, vanishing coordinates, certificate.
    points: list[FixedPoint] = []
    directions: list[np.ndarray] = []
    for members in clusters:
        best = min(members, key=lambda j: runs[j].residuals[-1])
        rb = runs[best]
        c_star = _clean(rb.c, tol)
        van = vanishing_direction(z, c_star)
        w_pred = _expand(van.direction, keep)
        w_sup = rb.w.copy()
        w_sup[_expand_idx(van.vanishing, keep)] = 0.0
        w_sup = w_sup / np.linalg.norm(w_sup)
        group = next(
            (g for g, u in enumerate(directions) if u @ w_pred > 1.0 - cos_tol), None
        )
        if group is None:
            directions.append(w_pred)
            group = len(directions) - 1
        r_star = float(rb.residuals[-1]) + float(np.abs(c_star - rb.c).sum())
        cert = certify(z_full, w_pred, c_star, dps, fp_residual=r_star)
        if not van.self_consistent:
            warnings.warn(
                "the vanishing-coordinate prediction is not self-consistent ("
                + "; ".join(van.reasons)
                + "); it is reported but not refined.",
                FixedPointWarning,
                stacklevel=2,
            )
        points.append(
            FixedPoint(
                c=c_star,
                w=w_pred,
                w_support=w_sup,
                residual=float(rb.residuals[-1]),
                iterations=tuple(runs[j].iterations for j in members),
                runs=tuple(members),
                starts=tuple((runs[j].start, runs[j].damping) for j in members),
                support=np.flatnonzero(c_star > 0.0),
                direction_group=group,
                vanishing=van,
                certificate=cert,
            )
        )
    for idx, members in enumerate(clusters):
        for j in members:
            object.__setattr__(runs[j], "point", idx)

    converged = np.array([r.converged for r in runs], dtype=bool)
    unique = bool(converged.any() and len(directions) == 1)
    if len(directions) > 1:
        warnings.warn(
            f"{len(directions)} distinct fixed-point directions were found from "
            f"{len(runs)} runs; being a fixed point is necessary, not sufficient: "
            "settle which one is reached with long AdamProxy runs.",
            FixedPointWarning,
            stacklevel=2,
        )
    report = FixedPointReport(
        points=points,
        runs=runs,
        converged=converged,
        unique=unique,
        n_directions=len(directions),
        dropped=dropped,
        settings={
            "tol": float(tol),
            "max_iter": int(max_iter),
            "damping": deltas.tolist(),
            "seed": int(seed),
            "n_starts": int(n_starts),
            "uniform": bool(uniform),
            "cluster_tol": float(cluster_tol),
            "cos_tol": float(cos_tol),
        },
        wall_time=time.perf_counter() - started,
    )
    logger.info("fixed point search: %s", report.summary())
    return report


def _clean(c: np.ndarray, tol: float) -> np.ndarray:
    """Zero the entries of a converged ``c`` below ``tol`` and renormalise.

    ``T(c)`` is exactly zero off the active set, but a damped iterate keeps a
    geometrically shrinking remainder there; entries at or below ``tol`` are
    within the convergence residual, and zeroing them makes ``supp(c*)`` and the
    vanishing coordinates exact. The change (at most ``N tol`` in l1) is added to
    the residual the certificate allows for.
    """
    out = np.where(c > tol, c, 0.0)
    return out / out.sum()


def _expand(v: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Put a vector over the kept features back into all ``d`` features."""
    out = np.zeros(keep.shape[0])
    out[keep] = v
    return out


def _expand_idx(idx: tuple[int, ...], keep: np.ndarray) -> np.ndarray:
    """Map indices over the kept features to indices over all features."""
    return np.flatnonzero(keep)[list(idx)] if idx else np.zeros(0, dtype=np.int64)


def predicted_direction(
    report: FixedPointReport, point: int | None = None
) -> np.ndarray:
    """Return the unit-l2 direction predicted by a fixed point of ``report``.

    Parameters
    ----------
    report : FixedPointReport
    point : int, optional
        Which point. By default the unique one; when there are several, the one
        reached from the first start (the uniform start), with a
        :class:`FixedPointWarning`.

    Returns
    -------
    numpy.ndarray, shape (d,)

    Raises
    ------
    InvalidParameterError
        No run converged, or ``point`` is out of range.
    """
    if not report.points:
        raise InvalidParameterError(
            "no fixed-point run converged, so there is no prediction; raise "
            "max_iter, try other dampings, or inspect report.runs[j].residuals."
        )
    if point is not None:
        if not 0 <= point < len(report.points):
            raise InvalidParameterError(
                f"point = {point} is out of range; the report has "
                f"{len(report.points)} point(s)."
            )
        return report.points[point].w.copy()
    if not report.unique:
        first = next((r.point for r in report.runs if r.point is not None), 0)
        warnings.warn(
            f"the report holds {report.n_directions} distinct directions; returning "
            f"point {first} (reached from the earliest converged start).",
            FixedPointWarning,
            stacklevel=2,
        )
        return report.points[first].w.copy()
    return report.points[0].w.copy()
