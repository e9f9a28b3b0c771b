"""Max margin in a diagonal Mahalanobis norm, with its dual multipliers.

For data ``Z`` (rows ``z_i = y_i x_i``) and a diagonal ``M = diag(m) >= 0`` the
program is

.. math::

    P(M): \\quad \\min_w \\tfrac12 w^\\top M w
    \\quad \\text{s.t.} \\quad z_i \\cdot w \\ge 1 \\quad (i = 1..N),

with multipliers ``lambda_i >= 0``. Its KKT conditions are the a-posteriori checks
made after every solve:

.. math::

    M w = \\sum_i \\lambda_i z_i, \\qquad z_i \\cdot w \\ge 1, \\qquad
    \\lambda_i (z_i \\cdot w - 1) = 0 .

Names: ``mdiag`` is the diagonal ``m``, ``w`` the primal solution, ``duals`` the
multipliers ``lambda``.

**Singular metrics.** Where ``m_k = 0`` the objective does not see ``w_k``. If no
sample touches coordinate ``k`` (``z_ik = 0`` for all ``i``) the coordinate is
*unused*: ``w_k = 0`` and nothing else changes. If some sample touches it, ``w_k``
is *free*: the optimal value and (generically) the multipliers are still defined,
and stationarity on that coordinate reads ``sum_i lambda_i z_ik = 0``, but the
optimal ``w`` is not unique (it can slide along ``e_k``). By default this raises
:class:`SingularMetricError`. With ``free="allow"`` the coordinate is left free in
the program, the multipliers are returned, and ``w_k`` is *one* point of the
optimal set (the solver's choice), listed in :attr:`MahalanobisMargin.free`; the
dual fixed point (:mod:`theorybox.proxy.fixedpoint`) then chooses ``w_k`` by the
vanishing-coordinate convention of theory.md, claim 3.

**Polishing.** The interior-point multipliers are accurate to the solver's
tolerance (about ``1e-8``). They are then polished: on the active set ``S`` (the
constraints tight to ``active_rtol``) the KKT system

.. math::

    \\begin{pmatrix} M & -Z_S^\\top \\\\ Z_S & 0 \\end{pmatrix}
    \\begin{pmatrix} w \\\\ \\lambda_S \\end{pmatrix}
    = \\begin{pmatrix} 0 \\\\ 1 \\end{pmatrix}

is solved by least squares (minimum norm, so exact duplicate rows share their
multiplier equally), and the polished pair is kept only when its KKT residuals are
no larger than the solver's. This brings the multipliers to near machine precision,
which the fixed-point iteration needs to reach residuals of ``1e-10``.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import clarabel
import cvxpy as cp
import numpy as np

from theorybox.errors import (
    InvalidDataError,
    NotSeparableError,
    SolverAccuracyWarning,
    SolverError,
    TheoryboxError,
)
from theorybox.references.maxmargin import (
    CHECK_TOLERANCES,
    SOLVER,
    SolveInfo,
    _as_z,
    _options,
    hinge_slack,
)

__all__ = [
    "SingularMetricError",
    "MahalanobisMargin",
    "MahalanobisProblem",
    "mahalanobis_margin",
    "group_mean_duals",
]

logger = logging.getLogger(__name__)

_ACCEPTED = ("optimal", "optimal_inaccurate")
_INFEASIBLE = ("infeasible", "infeasible_inaccurate")


class SingularMetricError(TheoryboxError):
    """``M_kk = 0`` on a coordinate that some sample touches: ``w_k`` is not unique.

    Attributes
    ----------
    coords : tuple of int
        The free coordinates.
    """

    def __init__(self, message: str, coords: tuple[int, ...] = ()):
        super().__init__(message)
        self.coords = tuple(coords)


@dataclass(frozen=True, eq=False)
class MahalanobisMargin:
    """The solution of ``P(M)`` for one diagonal ``M``.

    Attributes
    ----------
    w : numpy.ndarray, shape (d,)
        The minimiser of ``1/2 w^T M w`` subject to ``Z w >= 1``, data units
        (on free coordinates: one point of the optimal set).
    duals : numpy.ndarray, shape (N,)
        Multipliers ``lambda >= 0``, polished; exact duplicate rows carry equal
        values (group means).
    objective : float
        ``1/2 w^T M w``.
    support : numpy.ndarray
        Indices with ``z_i . w <= 1 + active_rtol``.
    free : tuple of int
        Coordinates with ``m_k = 0`` that some sample touches.
    unused : tuple of int
        Coordinates no sample touches (``w_k = 0``).
    polished : bool
        Whether the polished KKT solution replaced the solver's.
    info : SolveInfo
        Solver record; ``residuals`` holds the a-posteriori checks (relative, on
        data scaled to ``max|z| = 1``).
    """

    w: np.ndarray
    duals: np.ndarray
    objective: float
    support: np.ndarray
    free: tuple[int, ...]
    unused: tuple[int, ...]
    polished: bool
    info: SolveInfo


def group_mean_duals(Z: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Replace the multipliers of each group of exactly equal rows by their mean.

    With duplicate rows only the group's sum is determined; ``M(c)`` depends on
    ``c_i^2``, so the split matters for the fixed point and the convention is the
    equal split (theory.md, claim 3). Rows are never merged.

    Parameters
    ----------
    Z : numpy.ndarray, shape (N, d)
        Rows ``z_i`` (compared bit for bit, ``-0.0`` taken as ``+0.0``).
    lam : numpy.ndarray, shape (N,)

    Returns
    -------
    numpy.ndarray, shape (N,)
    """
    z = np.asarray(Z, dtype=np.float64) + 0.0
    lam = np.asarray(lam, dtype=np.float64)
    _, inverse, counts = np.unique(z, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    if counts.max() == 1:
        return lam.copy()
    sums = np.zeros(counts.size)
    np.add.at(sums, inverse, lam)
    return (sums / counts)[inverse]


class MahalanobisProblem:
    """A reusable ``P(M)`` on fixed data: only ``M`` changes between solves.

    The cvxpy problem is built once with ``sqrt(m)`` as a parameter (DPP), so
    repeated solves (the fixed-point iteration makes hundreds) skip cvxpy's
    compilation. The data are rescaled to ``max|z| = 1`` inside; results are in
    data units.

    Parameters
    ----------
    Z : array_like, shape (N, d)
        Rows ``z_i = y_i x_i``.
    solver_options : dict, optional
        Clarabel settings overriding :data:`~theorybox.references.SOLVER_OPTIONS`.
    active_rtol : float
        A constraint is active when ``z_i . w <= 1 + active_rtol`` (scaled data).
    """

    def __init__(
        self,
        Z: Any,
        solver_options: dict[str, Any] | None = None,
        active_rtol: float = 1e-6,
    ):
        self.Z = _as_z(Z)
        self.scale = float(np.abs(self.Z).max())
        self.z = self.Z / self.scale
        self.opts = _options(solver_options)
        self.active_rtol = float(active_rtol)
        self.touched = np.any(self.z != 0.0, axis=0)
        n, d = self.z.shape
        self._sqrt_m = cp.Parameter(d, nonneg=True)
        self._w = cp.Variable(d)
        self._con = self.z @ self._w >= 1
        objective = cp.Minimize(
            0.5 * cp.sum_squares(cp.multiply(self._sqrt_m, self._w))
        )
        self._problem = cp.Problem(objective, [self._con])

    def solve(self, mdiag: Any, free: str = "raise") -> MahalanobisMargin:
        """Solve ``P(diag(mdiag))``; see :func:`mahalanobis_margin`."""
        z = self.z
        n, d = z.shape
        m = np.array(mdiag, dtype=np.float64).reshape(-1)
        if m.shape[0] != d or not np.all(np.isfinite(m)) or np.any(m < 0):
            raise InvalidDataError(
                f"mdiag must be {d} finite non-negative numbers (the diagonal of M); "
                f"got {m!r}."
            )
        if free not in ("raise", "allow"):
            raise InvalidDataError(f"free = {free!r}; use 'raise' or 'allow'.")

        # Classify the zero diagonal entries: unused or free coordinates.
        zero = m == 0.0
        free_k = tuple(int(k) for k in np.flatnonzero(zero & self.touched))
        unused_k = tuple(int(k) for k in np.flatnonzero(~self.touched))
        if free_k and free == "raise":
            raise SingularMetricError(
                f"M_kk = 0 on coordinates {list(free_k)}, which samples touch, so "
                "w_k is not determined by P(M); pass free='allow' to get the "
                "multipliers and one optimal w, or use the dual fixed point's "
                "vanishing-coordinate convention (theorybox.proxy).",
                coords=free_k,
            )

        # Solve with the pinned solver; the metric is relative to max|z| = 1.
        m_s = m / self.scale
        self._sqrt_m.value = np.sqrt(m_s)
        what = "Mahalanobis QP P(M)"
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                self._problem.solve(solver=cp.CLARABEL, verbose=False, **self.opts)
        except cp.error.SolverError as exc:
            raise SolverError(
                f"Clarabel failed on the {what} ({exc}); check the data's scaling or "
                "raise 'max_iter' in solver_options."
            ) from exc
        wall = time.perf_counter() - start
        status = str(self._problem.status)
        if status in _INFEASIBLE:
            slack = hinge_slack(z)
            raise NotSeparableError(
                f"the {what} ended '{status}': Z (N = {n}, d = {d}) is not linearly "
                f"separable through the origin (hinge slack {slack:.3g}); check the "
                "labels or add a bias feature.",
                best_margin=0.0,
                hinge_slack=slack,
            )
        if status not in _ACCEPTED or self._w.value is None:
            raise SolverError(
                f"Clarabel ended the {what} with status '{status}'; no solution is "
                "returned. Raise 'max_iter' or loosen the tolerances in "
                "solver_options."
            )
        w_s = np.asarray(self._w.value, dtype=np.float64).copy()
        w_s[~self.touched] = 0.0
        lam_s = np.clip(np.asarray(self._con.dual_value, dtype=np.float64), 0.0, None)

        # Polish on the active set; keep whichever pair has the smaller residuals.
        res_solver = _kkt_residuals(z, m_s, w_s, lam_s)
        polished = False
        w_p, lam_p = _polish(z, m_s, w_s, lam_s, self.active_rtol, np.array(zero))
        if w_p is not None:
            res_p = _kkt_residuals(z, m_s, w_p, lam_p)
            if max(res_p.values()) <= max(res_solver.values()):
                w_s, lam_s, polished = w_p, lam_p, True
        lam_s = group_mean_duals(z, lam_s)
        residuals = _kkt_residuals(z, m_s, w_s, lam_s)
        stats = self._problem.solver_stats
        info = SolveInfo(
            problem=what,
            solver=SOLVER,
            solver_version=str(clarabel.__version__),
            cvxpy_version=str(cp.__version__),
            options=dict(self.opts),
            status=status,
            solve_time=None if stats is None else stats.solve_time,
            wall_time=wall,
            iterations=None if stats is None else stats.num_iters,
            residuals=residuals,
        )

        # A status is not a certificate: check KKT a posteriori.
        limit = CHECK_TOLERANCES["kkt_rtol"]
        bad = {
            k: v for k, v in residuals.items() if not (np.isfinite(v) and v <= limit)
        }
        if bad:
            text = ", ".join(f"{k} = {v:.3g}" for k, v in bad.items())
            raise SolverError(
                f"the {what} ended '{status}' but failed the a-posteriori KKT check "
                f"({text} > {limit:g}); raise 'max_iter' or tighten the tolerances "
                "in solver_options, or rescale features of very different sizes."
            )
        if status == "optimal_inaccurate":
            warnings.warn(
                f"Clarabel ended the {what} 'optimal_inaccurate'; the answer passed "
                "the a-posteriori KKT check and is used.",
                SolverAccuracyWarning,
                stacklevel=3,
            )
        logger.debug("%s: %s, polished=%s, %s", what, status, polished, residuals)

        # Back to data units: w scales by 1/scale, lambda by 1/scale^2 * scale.
        margins = z @ w_s
        support = np.flatnonzero(margins <= 1.0 + self.active_rtol)
        w = w_s / self.scale
        lam = lam_s / self.scale
        return MahalanobisMargin(
            w=w,
            duals=lam,
            objective=float(0.5 * np.sum(m * w * w)),
            support=support,
            free=free_k,
            unused=unused_k,
            polished=polished,
            info=info,
        )


def _kkt_residuals(
    z: np.ndarray, m: np.ndarray, w: np.ndarray, lam: np.ndarray
) -> dict[str, float]:
    """Relative KKT residuals of ``(w, lam)`` for ``P(diag(m))`` (scaled data)."""
    s = z @ w
    grad = m * w
    zt = z.T @ lam
    size = max(float(np.linalg.norm(grad)), float(np.linalg.norm(zt)), 1e-300)
    return {
        "primal_infeasibility": float(max(0.0, 1.0 - s.min())),
        "stationarity": float(np.linalg.norm(grad - zt) / size),
        "complementarity": float(abs(lam @ (s - 1.0)) / max(float(lam.sum()), 1e-300)),
        "dual_negativity": float(max(0.0, -lam.min()) / max(float(lam.max()), 1e-300)),
    }


def _polish(
    z: np.ndarray,
    m: np.ndarray,
    w0: np.ndarray,
    lam0: np.ndarray,
    active_rtol: float,
    zero: np.ndarray,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Solve the KKT system on the active set (minimum norm); None on failure."""
    n, d = z.shape
    active = np.flatnonzero(z @ w0 <= 1.0 + active_rtol)
    if active.size == 0:
        return None, None
    zs = z[active]
    k = active.size
    A = np.zeros((d + k, d + k))
    A[:d, :d] = np.diag(m)
    A[:d, d:] = -zs.T
    A[d:, :d] = zs
    b = np.concatenate([np.zeros(d), np.ones(k)])
    sol, *_ = np.linalg.lstsq(A, b, rcond=None)
    w = sol[:d]
    lam = np.zeros(n)
    lam[active] = sol[d:]

    # Free coordinates are not fixed by the KKT system: keep the solver's values.
    w[zero] = w0[zero]
    if lam.min() < 0.0 or (z @ w).min() < 1.0 - 1e-12:
        return None, None
    return w, lam


def mahalanobis_margin(
    Z: Any,
    mdiag: Any,
    *,
    free: str = "raise",
    solver_options: dict[str, Any] | None = None,
    active_rtol: float = 1e-6,
) -> MahalanobisMargin:
    """Solve the diagonal Mahalanobis max-margin problem and return its duals.

    .. math::

        \\min_w \\tfrac12 \\sum_k m_k w_k^2 \\quad \\text{s.t.} \\quad
        z_i \\cdot w \\ge 1, \\qquad
        m_k w_k = \\sum_i \\lambda_i z_{ik} .

    Parameters
    ----------
    Z : array_like, shape (N, d)
        Rows ``z_i = y_i x_i``.
    mdiag : array_like, shape (d,)
        The diagonal ``m`` of ``M``, ``m_k >= 0``.
    free : {"raise", "allow"}
        What to do when ``m_k = 0`` on a coordinate that samples touch (see the
        module docstring): raise :class:`SingularMetricError`, or solve with
        ``w_k`` free and list it in ``free``.
    solver_options : dict, optional
        Clarabel settings overriding the pinned ones.
    active_rtol : float
        Tightness that defines the active set and ``support``.

    Returns
    -------
    MahalanobisMargin

    Raises
    ------
    SingularMetricError
        ``free="raise"`` and some touched coordinate has ``m_k = 0``.
    NotSeparableError
        The data are not separable.
    SolverError
        No accepted status, or the KKT check failed
        (:data:`~theorybox.references.CHECK_TOLERANCES` ``["kkt_rtol"]``).

    Examples
    --------
    With ``M = diag(4, 1)`` on ``z = I``: ``w = (1, 1)``, ``lambda = (4, 1)``.
    """
    problem = MahalanobisProblem(Z, solver_options, active_rtol)
    return problem.solve(mdiag, free=free)
