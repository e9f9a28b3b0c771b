r"""CONJECTURE: a dual fixed point for the limit of mini-batch Adam at batch size b.

This module states and computes a **conjecture**, not a theorem. Theory.md, claim 3
gives AdamProxy's limit (``b = 1``) as the Mahalanobis max margin of a fixed point
of ``T``; the same derivation applied to the mini-batch proxy (theory.md,
section 2)

.. math::

    \Phi_{N,b} = \sqrt{\frac{b (N-1)}{N}}
        \frac{S}{\sqrt{(b-1) S^2 + (N-b) Q}}

suggests the following. Near the limit the loss factors are
``g_i ~ c_i sum_j g_j`` with ``c`` on the simplex, so
``S ~ h(c) = sum_i c_i z_i`` and ``Q ~ q(c) = sum_i c_i^2 z_i^2``
(coordinate-wise) up to one common factor, and a step moves ``w`` along
``M_b(c)^{-1} h(c)`` with

.. math::

    M_b(c) = \operatorname{diag}\Big(\sqrt{(b-1)\, h(c)^2 + (N-b)\, q(c)}\Big).

A limit direction ``w`` with ``c`` supported on its minimal-margin samples is then
a KKT point of ``P_b(c): min 1/2 w^T M_b(c) w s.t. z_i . w >= 1``, i.e. ``c`` is a
fixed point of ``T_b(c) = lambda(c) / ||lambda(c)||_1``.

Checks built in: ``M_1(c) = sqrt(N-1) M(c)`` (a multiple of claim 3's metric, so
at ``b = 1`` the fixed points coincide with :func:`~theorybox.proxy.
solve_fixed_point`'s), and ``M_N(c) = sqrt(N-1) |h(c)|``, whose stationarity
``w_k ~ sign(h_k)`` is the l_inf max-margin KKT condition (SignGD's limit). In
between nothing is proved: neither that mini-batch Adam (finite ``b2``) follows
``Phi_{N,b}``, nor that ``Phi_{N,b}`` converges in direction, nor that a fixed
point exists, is unique, or is the one reached. How well the conjecture predicts
the runs is measured by :mod:`theorybox.experiments.batchsize`.

Where ``M_b(c)_kk = 0`` although samples touch ``k`` (every support sample has
``z_ik = 0``, or at ``b = N`` the sum ``h_k`` cancels), ``w_k`` is left free and
the solver's value is kept; the vanishing-coordinate convention of
:mod:`theorybox.proxy.vanishing` is derived for ``M(c)`` only and is **not**
applied here (a warning says so).
"""

from __future__ import annotations

import logging
import numbers
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from theorybox.errors import InvalidParameterError
from theorybox.proxy.certificate import Certificate, certify
from theorybox.proxy.fixedpoint import (
    FixedPointWarning,
    _check_search,
    _clean,
    _cluster,
    _expand,
    _iterate,
    _starts,
)
from theorybox.references.mahalanobis import MahalanobisProblem
from theorybox.references.maxmargin import _as_z

__all__ = [
    "BatchPoint",
    "BatchPrediction",
    "batch_dual_map",
    "batch_metric_diag",
    "certify_batch",
    "conjectured_batch_prediction",
]

logger = logging.getLogger(__name__)


def _check_b(b: Any, n: int) -> int:
    """``b`` as an int in ``[1, n]``, or a clear error."""
    if isinstance(b, bool) or not isinstance(b, numbers.Real) or float(b) != int(b):
        raise InvalidParameterError(f"batch size b = {b!r} must be an integer")
    if not 1 <= int(b) <= n:
        raise InvalidParameterError(
            f"batch size b = {b!r} is outside [1, N] = [1, {n}]"
        )
    return int(b)


def batch_metric_diag(Z: Any, c: Any, b: int) -> np.ndarray:
    r"""Return the diagonal of the CONJECTURED metric ``M_b(c)``.

    .. math::

        M_b(c)_{kk} = \Big((b-1) \big(\textstyle\sum_i c_i z_{ik}\big)^2
            + (N-b) \textstyle\sum_i c_i^2 z_{ik}^2\Big)^{1/2}

    Parameters
    ----------
    Z : array_like, shape (N, d)
        Rows ``z_i = y_i x_i``.
    c : array_like, shape (N,)
        A point of the simplex.
    b : int
        Batch size, ``1 <= b <= N``.
    """
    z = np.asarray(Z, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    b = _check_b(b, z.shape[0])
    h = c @ z
    q = (c * c) @ (z * z)
    return np.sqrt((b - 1) * h * h + (z.shape[0] - b) * q)


def batch_dual_map(
    problem: MahalanobisProblem, c: np.ndarray, b: int
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate ``T_b(c) = lambda(c) / ||lambda(c)||_1`` and ``w(c)`` for ``P_b(c)``.

    Parameters
    ----------
    problem : MahalanobisProblem
        ``P`` on the data (no all-zero features).
    c : numpy.ndarray, shape (N,)
    b : int

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``T_b(c)`` (duplicates split equally) and ``w(c)`` (data units).
    """
    sol = problem.solve(batch_metric_diag(problem.Z, c, b), free="allow")
    lam = sol.duals
    return lam / lam.sum(), sol.w


def certify_batch(
    Z: Any,
    w: Any,
    c: Any,
    b: int,
    dps: int = 50,
    *,
    fp_residual: float = 0.0,
    tolerance: float | None = None,
) -> Certificate:
    r"""Certify in high precision that ``w`` is the CONJECTURED direction of ``c``.

    The checks of :func:`theorybox.proxy.certify` with ``M_b(c)`` in place of
    ``M(c)``: with ``h = sum_i c_i z_i``, ``s_i = z_i . w``, ``v = w / min_i s_i``,

    .. math::

        \frac{\|M_b(c) w - \alpha h\|_2}{\|M_b(c) w\|_2}, \quad \alpha > 0;
        \qquad \sum_i c_i \frac{s_i - s_{\min}}{s_{\min}};
        \qquad \frac{\tfrac12 v^\top M_b v - (\sum_i c_i)^2 / (2 h^\top M_b^+ h)}
            {\tfrac12 v^\top M_b v} .

    Computed in a private mpmath context at ``dps`` digits (inputs are the exact
    binary values of the float64 entries). The default tolerance is
    :func:`~theorybox.proxy.certificate_tolerance` (it does not depend on ``M``).

    Parameters
    ----------
    Z : array_like, shape (N, d)
    w : array_like, shape (d,)
    c : array_like, shape (N,)
    b : int
    dps : int
    fp_residual : float
        ``||T_b(c) - c||_1``, which widens the default tolerance.
    tolerance : float, optional

    Returns
    -------
    Certificate
    """
    z = np.asarray(getattr(Z, "Z", Z), dtype=np.float64)
    n = z.shape[0]
    b = _check_b(b, n)

    def batch_metric(mp, Zm, cm, h):
        # M_b(c) = sqrt((b - 1) h^2 + (N - b) sum_i c_i^2 z_i^2).
        d = len(h)
        q = [mp.fsum(cm[i] ** 2 * Zm[i][k] ** 2 for i in range(n)) for k in range(d)]
        return [mp.sqrt((b - 1) * h[k] ** 2 + (n - b) * q[k]) for k in range(d)]

    return certify(Z, w, c, dps, fp_residual=fp_residual, tolerance=tolerance,
                   metric=batch_metric)


@dataclass(frozen=True, eq=False)
class BatchPoint:
    """One distinct CONJECTURED fixed point ``c = T_b(c)`` and its direction.

    Attributes
    ----------
    c : numpy.ndarray, shape (N,)
        The fixed point (entries at or below ``tol`` zeroed, renormalised).
    w : numpy.ndarray, shape (d,)
        ``w(c)`` of ``P_b(c)``, unit l2.
    residual : float
        ``||T_b(c) - c||_1`` of the best run that reached it.
    support : numpy.ndarray
        Indices with ``c_i > 0``.
    free : tuple of int
        Coordinates with ``M_b(c)_kk = 0`` that samples touch (solver's ``w_k``).
    runs : tuple of int
        Indices in :attr:`BatchPrediction.runs` of the runs that reached it.
    certificate : Certificate
        :func:`certify_batch` of ``(w, c)``.
    """

    c: np.ndarray
    w: np.ndarray
    residual: float
    support: np.ndarray
    free: tuple[int, ...]
    runs: tuple[int, ...]
    certificate: Certificate


@dataclass(frozen=True, eq=False)
class BatchPrediction:
    """What :func:`conjectured_batch_prediction` found. A CONJECTURE, not a theorem.

    Attributes
    ----------
    b, n : int
        Batch size and number of samples.
    points : list of BatchPoint
        Distinct fixed points, the one reached from the earliest start first.
    runs : list of dict
        Per run: ``start``, ``damping``, ``converged``, ``iterations``,
        ``residual``, ``point`` (index in ``points`` or None), ``error``.
    unique : bool
        At least one run converged and all converged runs share one direction.
    n_directions : int
    dropped : tuple of int
        Features zero on every sample (``w_k = 0``).
    settings : dict
    wall_time : float
    label : str
        Always ``"CONJECTURE"``: printed with every figure derived from it.
    """

    b: int
    n: int
    points: list[BatchPoint]
    runs: list[dict]
    unique: bool
    n_directions: int
    dropped: tuple[int, ...]
    settings: dict = field(default_factory=dict)
    wall_time: float = 0.0
    label: str = "CONJECTURE"

    @property
    def converged(self) -> bool:
        """Whether any run reached the tolerance."""
        return bool(self.points)

    @property
    def w(self) -> np.ndarray:
        """The first point's direction (unit l2); raises when nothing converged."""
        if not self.points:
            raise InvalidParameterError(
                f"the conjectured fixed-point iteration for b = {self.b} did not "
                "converge from any start; raise max_iter or try other dampings"
            )
        return self.points[0].w.copy()

    @property
    def certified(self) -> bool:
        """Whether the first point's certificate passed."""
        return bool(self.points and self.points[0].certificate.ok)

    def summary(self) -> str:
        """One line per point: support, residual, certificate."""
        lines = [
            f"CONJECTURE b = {self.b} (N = {self.n}): {len(self.runs)} runs, "
            f"{sum(r['converged'] for r in self.runs)} converged, "
            f"{len(self.points)} point(s), {self.n_directions} direction(s)"
        ]
        for j, p in enumerate(self.points):
            lines.append(
                f"  point {j}: support {p.support.tolist()}, residual "
                f"{p.residual:.2e}, certificate ok={p.certificate.ok} "
                f"(stationarity {p.certificate.stationarity:.2e})"
            )
        return "\n".join(lines)


def conjectured_batch_prediction(
    Z: Any,
    b: int,
    *,
    starts: Any = None,
    n_starts: int = 4,
    damping: Any = (0.0, 0.5),
    tol: float = 1e-10,
    max_iter: int = 500,
    seed: int = 0,
    cluster_tol: float = 1e-6,
    cos_tol: float = 1e-9,
    dps: int = 50,
    solver_options: dict[str, Any] | None = None,
) -> BatchPrediction:
    r"""CONJECTURE: the batch-size-``b`` limit direction, a fixed point of ``T_b``.

    .. math::

        c_{k+1} = (1-\delta) T_b(c_k) + \delta c_k, \qquad
        T_b(c) = \frac{\lambda_b(c)}{\|\lambda_b(c)\|_1},

    with ``lambda_b(c)`` the multipliers of ``P_b(c)`` (metric
    :func:`batch_metric_diag`), from the uniform start and ``n_starts`` Dirichlet
    starts, each with every damping; every distinct fixed point is reported and
    certified (:func:`certify_batch`). See the module notes for what is and is not
    known.

    Parameters
    ----------
    Z : array_like or Dataset, shape (N, d)
    b : int
        Batch size, ``1 <= b <= N``.
    starts, n_starts, damping, tol, max_iter, seed, cluster_tol, cos_tol, dps,
    solver_options
        As in :func:`theorybox.proxy.solve_fixed_point`.

    Returns
    -------
    BatchPrediction

    Warns
    -----
    FixedPointWarning
        A run did not converge, several directions were found, or ``M_b(c)``
        vanishes on a touched coordinate (no convention applied).
    """
    started = time.perf_counter()
    z_full = _as_z(getattr(Z, "Z", Z))
    n, _ = z_full.shape
    b = _check_b(b, n)
    deltas = _check_search(damping, tol, max_iter)

    # Drop features that are zero on every sample; M_b never sees them.
    keep = np.any(z_full != 0.0, axis=0)
    dropped = tuple(int(k) for k in np.flatnonzero(~keep))
    z = z_full[:, keep]
    problem = MahalanobisProblem(z, solver_options)

    # Iterate from every start with every damping.
    runs: list[dict] = []
    finals: list[tuple[np.ndarray, np.ndarray]] = []
    for s, c0 in enumerate(_starts(n, starts, n_starts, seed, True)):
        for delta in deltas:
            c, w, hist, ok, error = _iterate(
                problem, c0, float(delta), tol, int(max_iter),
                dual=lambda p, c: batch_dual_map(p, c, b),
            )
            runs.append(
                {
                    "start": s,
                    "damping": float(delta),
                    "converged": ok,
                    "iterations": len(hist),
                    "residual": float(hist[-1]),
                    "point": None,
                    "error": error,
                }
            )
            finals.append((c, w))
            if not ok:
                warnings.warn(
                    f"CONJECTURE b = {b}: the fixed-point run from start {s} with "
                    f"damping {delta:g} did not converge (last residual "
                    f"{hist[-1]:.3g}{'; ' + error if error else ''})",
                    FixedPointWarning,
                    stacklevel=2,
                )

    # Cluster the converged runs by c, then describe and certify each point.
    clusters = _cluster([c for c, _ in finals], [r["converged"] for r in runs],
                        cluster_tol)
    points: list[BatchPoint] = []
    directions: list[np.ndarray] = []
    for idx, members in enumerate(clusters):
        best = min(members, key=lambda j: runs[j]["residual"])
        c_star = _clean(finals[best][0], tol)
        w_dir = _expand(finals[best][1], keep)
        w_dir = w_dir / np.linalg.norm(w_dir)
        mdiag = batch_metric_diag(z, c_star, b)
        free = tuple(
            int(k)
            for k in np.flatnonzero(keep)[(mdiag == 0.0) & np.any(z != 0.0, axis=0)]
        )
        if free:
            warnings.warn(
                f"CONJECTURE b = {b}: M_b(c) vanishes on touched coordinates {free}; "
                "w_k there is the solver's choice (no vanishing-coordinate "
                "convention is derived for M_b)",
                FixedPointWarning,
                stacklevel=2,
            )
        r_star = runs[best]["residual"] + float(np.abs(c_star - finals[best][0]).sum())
        cert = certify_batch(z_full, w_dir, c_star, b, dps, fp_residual=r_star)
        if not any(u @ w_dir > 1.0 - cos_tol for u in directions):
            directions.append(w_dir)
        for j in members:
            runs[j]["point"] = idx
        points.append(
            BatchPoint(
                c=c_star,
                w=w_dir,
                residual=runs[best]["residual"],
                support=np.flatnonzero(c_star > 0.0),
                free=free,
                runs=tuple(members),
                certificate=cert,
            )
        )
    if len(directions) > 1:
        warnings.warn(
            f"CONJECTURE b = {b}: {len(directions)} distinct fixed-point directions; "
            "long runs must decide which one (if any) is reached",
            FixedPointWarning,
            stacklevel=2,
        )
    pred = BatchPrediction(
        b=b,
        n=n,
        points=points,
        runs=runs,
        unique=bool(points) and len(directions) == 1,
        n_directions=len(directions),
        dropped=dropped,
        settings={
            "tol": float(tol),
            "max_iter": int(max_iter),
            "damping": deltas.tolist(),
            "seed": int(seed),
            "n_starts": int(n_starts),
            "cluster_tol": float(cluster_tol),
            "cos_tol": float(cos_tol),
            "dps": int(dps),
        },
        wall_time=time.perf_counter() - started,
    )
    logger.info("%s", pred.summary())
    return pred
