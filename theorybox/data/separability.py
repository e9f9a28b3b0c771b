"""Linear separability through the origin, decided by a linear program.

The data ``z_i = y_i x_i`` are separable when some ``w`` has ``z_i . w > 0`` for every
``i`` (theory.md, section 1). :func:`check_separable` solves

.. math::

    \\max_{w, \\gamma} \\ \\gamma \\quad \\text{s.t.} \\quad z_i \\cdot w \\ge \\gamma
    \\ (i = 1..N), \\qquad -1 \\le w_k \\le 1 ,

whose optimum is the l_inf max margin ``gamma_inf``. The problem is feasible at
``w = 0, gamma = 0`` and bounded, because the box on ``w`` gives
``gamma <= min_i ||z_i||_1``, so no extra bound on ``gamma`` is needed. A returned
direction is always re-verified in numpy; the LP's ``w = 0`` is never returned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy
from scipy.optimize import linprog

from theorybox.data.dataset import as_z
from theorybox.errors import NotSeparableError, SolverError

__all__ = ["SeparabilityResult", "check_separable", "separability_tolerance"]

logger = logging.getLogger(__name__)

#: HiGHS options: feasibility tolerances at the tightest value HiGHS accepts, so that
#: the LP's answer is far more accurate than the decision threshold needs.
_HIGHS_OPTIONS = {
    "primal_feasibility_tolerance": 1e-10,
    "dual_feasibility_tolerance": 1e-10,
    "presolve": True,
}

#: A sample counts as violating the hinge constraint ``z_i . w >= 1`` at the
#: minimal-slack optimum when its slack exceeds this (relative to the unit target).
_SLACK_COUNT_TOL = float(np.sqrt(np.finfo(np.float64).eps))


@dataclass(frozen=True, eq=False)
class SeparabilityResult:
    """A certificate that ``Z`` is linearly separable through the origin.

    Attributes
    ----------
    w : numpy.ndarray, shape (d,)
        A separating direction with ``||w||_inf = 1`` (read-only).
    margin : float
        Its normalised l_inf margin ``min_i z_i . w / ||w||_inf``, recomputed in
        numpy; always ``> tolerance``. Up to the LP's accuracy this is the l_inf max
        margin ``gamma_inf``; use the reference solvers for certified values.
    lp_margin : float
        The LP's optimal ``gamma``, in the units of ``Z``.
    tolerance : float
        The decision threshold, see :func:`separability_tolerance`.
    solver : str
        The solver that produced ``w``.
    solver_version : str
        SciPy's version.
    status : int
        The solver's status code (0: optimal).
    solver_message : str
        The solver's message.
    iterations : int
        Simplex or interior-point iterations used.
    """

    w: np.ndarray
    margin: float
    lp_margin: float
    tolerance: float
    solver: str
    solver_version: str
    status: int
    solver_message: str
    iterations: int


def separability_tolerance(Z: np.ndarray) -> float:
    """The margin below which :func:`check_separable` calls data not separable.

    For ``||w||_inf <= 1`` the float64 value of ``z_i . w`` differs from the exact
    one by at most ``gamma_d ||z_i||_1`` with ``gamma_d = d u / (1 - d u)`` and
    ``u = eps / 2`` (standard dot-product error bound), which is below
    ``d eps ||z_i||_1``. Hence

    .. math::

        \\tau = d \\, \\varepsilon_{64} \\max_i \\|z_i\\|_1
              \\ \\le\\ d^2 \\varepsilon_{64} \\max_{i,k} |z_{ik}| ,

    and a direction whose computed margin exceeds ``tau`` separates the data in
    exact arithmetic too: the check is a certificate, not a guess.

    Parameters
    ----------
    Z : numpy.ndarray, shape (N, d)

    Returns
    -------
    float
    """
    Z = np.asarray(Z, dtype=np.float64)
    eps = float(np.finfo(np.float64).eps)
    return Z.shape[1] * eps * float(np.abs(Z).sum(axis=1).max())


def _opposite_duplicates(Z: np.ndarray) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` with ``z_i = -z_j`` exactly: one point with both labels."""
    seen: dict[bytes, int] = {}
    pairs = []
    for i, row in enumerate(Z):
        key = (-row + 0.0).tobytes()
        if key in seen:
            pairs.append((seen[key], i))
        seen.setdefault((row + 0.0).tobytes(), i)
    return pairs


def _min_hinge_slack(Zs: np.ndarray) -> tuple[float, np.ndarray]:
    """Solve ``min_w sum_i max(0, 1 - z_i . w)`` as an LP; return value and ``w``."""
    n, d = Zs.shape

    # Variables (w, s): minimise sum s subject to z_i . w + s_i >= 1, s >= 0.
    c = np.concatenate([np.zeros(d), np.ones(n)])
    A_ub = np.hstack([-Zs, -np.eye(n)])
    b_ub = -np.ones(n)
    bounds = [(None, None)] * d + [(0.0, None)] * n
    res = linprog(
        c, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs", options=_HIGHS_OPTIONS
    )
    if res.status != 0:
        raise SolverError(
            f"the minimal-hinge-slack LP failed (HiGHS status {res.status}: "
            f"{res.message}); report this with the data."
        )
    return float(res.fun), res.x[:d]


def _not_separable(Z: np.ndarray, gamma: float, tol: float) -> NotSeparableError:
    """Build the error for data with no certified separating direction."""
    gamma = max(gamma, 0.0) + 0.0
    zmax = float(np.abs(Z).max())
    Zs = Z / zmax if zmax > 0 else Z

    # Minimal total hinge slack and the samples that violate at its optimum.
    slack, w = _min_hinge_slack(Zs)
    scores = Zs @ w
    violating = int(np.sum(1.0 - scores > _SLACK_COUNT_TOL))
    wrong_side = int(np.sum(scores <= 0.0))

    # Hints that point at the usual causes.
    hints = []
    zero_rows = np.flatnonzero(~np.any(Z != 0.0, axis=1)).tolist()
    if zero_rows:
        hints.append(
            f"sample(s) {zero_rows[:10]} have x_i = 0 and can never get a positive "
            "margin: remove them"
        )
    pairs = _opposite_duplicates(Z)
    if pairs:
        hints.append(
            f"sample pair(s) {pairs[:10]} have z_i = -z_j (one point with both "
            "labels, or opposite points with one label), which no direction "
            "through the origin separates: remove one of each pair"
        )
    hints.append(
        "otherwise add features (e.g. intercept=True, or more informative ones) or "
        "keep a separable subset of the classes"
    )
    message = (
        f"the data (N = {Z.shape[0]}, d = {Z.shape[1]}) are not linearly separable "
        f"through the origin: the best margin max over ||w||_inf <= 1 of "
        f"min_i z_i . w is {gamma:.3g} (no direction beats w = 0 by more than the "
        f"float64 threshold {tol:.3g}); the minimal total hinge slack min_w sum_i "
        f"max(0, 1 - z_i . w) is {slack:.6g}, with {violating} sample(s) violating "
        f"z_i . w >= 1 at that optimum ({wrong_side} of them with z_i . w <= 0). "
        "To fix: " + "; ".join(hints) + "."
    )
    return NotSeparableError(message, best_margin=gamma + 0.0, hinge_slack=slack)


def check_separable(Z: Any) -> SeparabilityResult:
    """Decide whether ``z_i . w > 0`` for all ``i`` has a solution, with a certificate.

    Parameters
    ----------
    Z : array_like, shape (N, d), or Dataset
        The signed samples ``z_i = y_i x_i`` as rows (a :class:`Dataset` gives its
        ``Z``).

    Returns
    -------
    SeparabilityResult
        A direction ``w`` with ``||w||_inf = 1`` and its margin
        ``min_i z_i . w > tolerance`` recomputed in numpy.

    Raises
    ------
    NotSeparableError
        If no direction has a margin above :func:`separability_tolerance`. The error
        carries ``best_margin`` (the LP optimum, ``0`` for data that are exactly
        not separable) and ``hinge_slack`` (the minimal total hinge slack, ``> 0``),
        and its message counts the violating samples and suggests fixes.
    InvalidDataError
        If ``Z`` is empty, not 2-D, or not finite.
    SolverError
        If HiGHS does not report an optimal solution.

    Notes
    -----
    The LP is solved on ``Z / max|z|`` for conditioning; margins are reported in the
    units of ``Z``. HiGHS runs with its feasibility tolerances at ``1e-10``.
    """
    Z = as_z(Z)
    n, d = Z.shape
    tol = separability_tolerance(Z)
    zmax = float(np.abs(Z).max())
    if zmax == 0.0:
        raise _not_separable(Z, 0.0, tol)
    Zs = Z / zmax

    # LP in (w, gamma): minimise -gamma subject to gamma - z_i . w <= 0, |w_k| <= 1.
    c = np.zeros(d + 1)
    c[-1] = -1.0
    A_ub = np.hstack([-Zs, np.ones((n, 1))])
    b_ub = np.zeros(n)
    bounds = [(-1.0, 1.0)] * d + [(None, None)]
    res = linprog(
        c, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs", options=_HIGHS_OPTIONS
    )
    if res.status != 0:
        raise SolverError(
            f"the separability LP failed (HiGHS status {res.status}: {res.message}) "
            f"on data with N = {n}, d = {d}; report this with the data."
        )
    gamma = float(-res.fun) * zmax
    w = np.asarray(res.x[:d], dtype=np.float64)
    logger.debug("separability LP: gamma = %.6g (tolerance %.3g)", gamma, tol)

    # Re-verify in numpy: rescale to ||w||_inf = 1 and recompute every margin.
    wmax = float(np.abs(w).max())
    if gamma <= tol or wmax == 0.0:
        raise _not_separable(Z, gamma, tol)
    w = w / wmax
    margin = float(np.min(Z @ w))
    if margin <= tol:
        logger.info(
            "separability LP reported gamma = %.3g but its direction verifies only "
            "to margin %.3g <= %.3g",
            gamma,
            margin,
            tol,
        )
        raise _not_separable(Z, gamma, tol)
    w.setflags(write=False)
    return SeparabilityResult(
        w=w,
        margin=margin,
        lp_margin=gamma,
        tolerance=tol,
        solver="scipy.optimize.linprog(method='highs')",
        solver_version=scipy.__version__,
        status=int(res.status),
        solver_message=str(res.message),
        iterations=int(getattr(res, "nit", -1)),
    )
