"""High-precision certificate that a direction is the fixed-point prediction.

For a simplex point ``c`` and a direction ``w`` (theory.md, claim 3; Thm 4.8 of
Baek, Song, Yun), with ``M(c) = diag(sqrt(sum_i c_i^2 z_i^2))``, ``h = sum_i c_i z_i``
and ``s_i = z_i . w``, ``s_min = min_i s_i``, ``v = w / s_min``:

.. math::

    \\text{stationarity:}\\ \\frac{\\|M(c) w - \\alpha h\\|_2}{\\|M(c) w\\|_2},
    \\quad \\alpha = \\frac{(M(c) w) \\cdot h}{h \\cdot h} > 0 ;
    \\qquad
    \\text{complementarity:}\\ \\sum_i c_i \\frac{s_i - s_{\\min}}{s_{\\min}} ;

    \\text{duality gap:}\\ \\frac{\\tfrac12 v^\\top M(c) v - D}{\\tfrac12 v^\\top
    M(c) v}, \\quad D = \\max_{\\beta \\ge 0} \\big(\\beta \\textstyle\\sum_i c_i
    - \\tfrac{\\beta^2}{2} h^\\top M(c)^{+} h\\big)
    = \\frac{(\\sum_i c_i)^2}{2\\, h^\\top M(c)^{+} h} .

``v`` is feasible for ``P(c)`` by construction when ``s_min > 0`` (``min_i z_i . v
= 1``), and weak duality makes the gap non-negative in exact arithmetic, so a small
gap certifies that ``v`` is optimal for ``P(c)`` (``beta c`` is a dual point;
where ``M(c)_kk = 0``, ``h_k = 0`` holds exactly, so the dual is finite and ``w_k``
does not enter the objective). Dual feasibility is ``c >= 0``, ``sum c = 1``.

Everything is computed with ``mpmath`` in a private context at ``dps`` digits; the
inputs are taken as the exact binary values of their float64 entries, and global
mpmath precision is never touched.

**Tolerance.** The residuals of an exact fixed point and its exact direction are
zero. A computed pair carries two errors: the solve of ``P(c)`` is accepted when
its relative KKT residual is below ``kkt_rtol``
(:data:`~theorybox.references.CHECK_TOLERANCES`, ``1e-6``; polished solves reach
about ``1e-14``), and ``c`` is a fixed point only up to ``r = ||T(c) - c||_1``,
which moves ``h`` by at most ``r max_i ||z_i||_2``, relatively
``r max_i ||z_i||_2 / ||h||_2``. The default tolerance is ten times the sum of
the two, applied to every relative residual (stationarity, complementarity, gap,
dual feasibility).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import mpmath
import numpy as np

from theorybox.errors import InvalidDataError
from theorybox.references.maxmargin import CHECK_TOLERANCES

__all__ = ["Certificate", "certify", "certificate_tolerance"]

#: Factor between the error estimate and the tolerance used by :func:`certify`.
SAFETY = 10.0


@dataclass(frozen=True)
class Certificate:
    """Residuals of the fixed-point certificate for a direction ``w`` and ``c``.

    Attributes
    ----------
    alpha : float
        Least-squares ``alpha`` in ``M(c) w = alpha sum_i c_i z_i``; must be > 0.
    stationarity : float
        Relative residual of that equation.
    complementarity : float
        ``sum_i c_i (s_i - s_min) / s_min``: zero iff ``supp(c)`` lies within the
        samples of minimal margin.
    dual_feasibility : float
        ``max(0, -min c) + |sum c - 1|``.
    min_margin : float
        ``s_min = min_i z_i . w``; must be > 0 for ``w / s_min`` to be feasible.
    duality_gap : float
        Relative gap between ``P(c)`` at ``w / s_min`` and the dual bound.
    tolerance : float
        The bound each relative residual is held to.
    ok : bool
        All checks pass.
    dps : int
        Decimal digits used.
    vanishing : tuple of int
        Coordinates with ``M(c)_kk = 0`` (not seen by ``P(c)``).
    """

    alpha: float
    stationarity: float
    complementarity: float
    dual_feasibility: float
    min_margin: float
    duality_gap: float
    tolerance: float
    ok: bool
    dps: int
    vanishing: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a plain dictionary of the record."""
        return asdict(self)


def certificate_tolerance(Z: Any, c: Any, fp_residual: float = 0.0) -> float:
    """Return the default tolerance of :func:`certify` (see the module notes).

    .. math::

        \\mathrm{tol} = 10 \\Big(\\mathrm{kkt\\_rtol}
        + r \\frac{\\max_i \\|z_i\\|_2}{\\|\\sum_i c_i z_i\\|_2}\\Big) .

    Parameters
    ----------
    Z : array_like, shape (N, d)
    c : array_like, shape (N,)
    fp_residual : float
        ``r = ||T(c) - c||_1``.
    """
    z = np.asarray(Z, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    h = float(np.linalg.norm(c @ z))
    zmax = float(np.linalg.norm(z, axis=1).max())
    spread = zmax / h if h > 0 else np.inf
    return float(SAFETY * (CHECK_TOLERANCES["kkt_rtol"] + fp_residual * spread))


def certify(
    Z: Any,
    w: Any,
    c: Any,
    dps: int = 50,
    *,
    fp_residual: float = 0.0,
    tolerance: float | None = None,
    metric: Callable | None = None,
) -> Certificate:
    """Certify in high precision that ``w`` is the direction predicted by ``c``.

    Parameters
    ----------
    Z : array_like, shape (N, d)
        Rows ``z_i = y_i x_i`` (a Dataset is accepted).
    w : array_like, shape (d,)
        The direction (any positive scale).
    c : array_like, shape (N,)
        The simplex point.
    dps : int
        Decimal digits of the private mpmath context.
    fp_residual : float
        ``||T(c) - c||_1`` of ``c``, which widens the default tolerance.
    tolerance : float, optional
        Override the tolerance (:func:`certificate_tolerance`).
    metric : callable, optional
        ``metric(mp, Zm, cm, h) -> list`` of the diagonal of the metric in the
        private context ``mp`` (data ``Zm``, weights ``cm``, ``h = sum_i c_i z_i``),
        for variants of ``P(c)``; default ``M(c) = sqrt(sum_i c_i^2 z_i^2)``.

    Returns
    -------
    Certificate
    """
    z = np.asarray(getattr(Z, "Z", Z), dtype=np.float64)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    c = np.asarray(c, dtype=np.float64).reshape(-1)
    n, d = z.shape
    if w.shape[0] != d or c.shape[0] != n:
        raise InvalidDataError(
            f"w has {w.shape[0]} entries and c {c.shape[0]}, but Z has shape "
            f"{z.shape}; pass w of length d and c of length N."
        )
    if not (
        np.all(np.isfinite(z)) and np.all(np.isfinite(w)) and np.all(np.isfinite(c))
    ):
        raise InvalidDataError("Z, w and c must be finite.")
    if tolerance is None:
        tolerance = certificate_tolerance(z, c, fp_residual)

    # Exact inputs in a private context.
    mp = mpmath.MPContext()
    mp.dps = int(dps)
    Zm = [[mp.mpf(float(x)) for x in row] for row in z]
    wm = [mp.mpf(float(x)) for x in w]
    cm = [mp.mpf(float(x)) for x in c]

    # The dual direction h = sum_i c_i z_i, the metric M(c) and the margins.
    h = [mp.fsum(cm[i] * Zm[i][k] for i in range(n)) for k in range(d)]
    if metric is None:
        mdiag = [
            mp.sqrt(mp.fsum(cm[i] ** 2 * Zm[i][k] ** 2 for i in range(n)))
            for k in range(d)
        ]
    else:
        mdiag = list(metric(mp, Zm, cm, h))
    s = [mp.fsum(Zm[i][k] * wm[k] for k in range(d)) for i in range(n)]
    s_min = min(s)
    vanishing = tuple(
        k for k in range(d) if mdiag[k] == 0 and any(r[k] != 0 for r in Zm)
    )

    # Stationarity with the least-squares alpha.
    g = [mdiag[k] * wm[k] for k in range(d)]
    hh = mp.fsum(x * x for x in h)
    gg = mp.fsum(x * x for x in g)
    alpha = mp.fsum(g[k] * h[k] for k in range(d)) / hh if hh > 0 else mp.mpf(0)
    if gg > 0:
        stat = mp.sqrt(mp.fsum((g[k] - alpha * h[k]) ** 2 for k in range(d)) / gg)
    else:
        stat = mp.inf

    # Complementarity and dual feasibility.
    if s_min > 0:
        comp = mp.fsum(cm[i] * (s[i] - s_min) for i in range(n)) / s_min
    else:
        comp = mp.inf
    csum = mp.fsum(cm)
    dual_feas = max(mp.mpf(0), -min(cm)) + abs(csum - 1)

    # Duality gap of v = w / s_min for P(c) against the dual point beta c.
    if s_min > 0:
        primal = mp.fsum(mdiag[k] * (wm[k] / s_min) ** 2 for k in range(d)) / 2
        q = mp.fsum(h[k] ** 2 / mdiag[k] for k in range(d) if mdiag[k] > 0)
        h_off = any(h[k] != 0 for k in range(d) if mdiag[k] == 0)
        if q > 0 and not h_off and primal > 0:
            gap = (primal - csum**2 / (2 * q)) / primal
        else:
            gap = mp.inf
    else:
        gap = mp.inf

    # Judge: every relative residual against the tolerance, alpha and s_min > 0.
    values = {
        "stationarity": float(stat),
        "complementarity": float(comp),
        "dual_feasibility": float(dual_feas),
        "duality_gap": float(gap),
    }
    ok = (
        alpha > 0
        and s_min > 0
        and all(np.isfinite(v) and abs(v) <= tolerance for v in values.values())
    )
    return Certificate(
        alpha=float(alpha),
        stationarity=values["stationarity"],
        complementarity=values["complementarity"],
        dual_feasibility=values["dual_feasibility"],
        min_margin=float(s_min),
        duality_gap=values["duality_gap"],
        tolerance=float(tolerance),
        ok=bool(ok),
        dps=int(dps),
        vanishing=vanishing,
    )
