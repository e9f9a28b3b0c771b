"""The direction predicted by a dual point, coordinates that vanish on its support.

Stationarity of ``P(c)`` (theory.md, claim 3) makes the predicted direction
proportional to

.. math::

    D_k(c) = \\frac{\\sum_i c_i z_{ik}}{\\sqrt{\\sum_i c_i^2 z_{ik}^2}} ,

which is undefined where every sample in ``supp(c)`` has ``z_ik = 0`` (so
``M(c)_kk = 0``) while some other sample touches ``k``. AdamProxy divides each
coordinate's gradient by its own root sum of squares, so such a coordinate still
moves at full speed, driven by the samples that touch it with the *lowest*
margin: with ``g_i ~ exp(-z_i . w)`` and ``||w|| -> infinity`` only the lowest-margin
group ``G_k`` survives the ``exp(-margin)`` weighting, and then

.. math::

    D_k = \\frac{\\sum_{i \\in G_k} z_{ik}}{\\sqrt{\\sum_{i \\in G_k} z_{ik}^2}} ,

which is ``sign(z_ik) = +-1`` for a single driving sample (tied margins weigh
equally). The margins depend on ``D`` itself, so the groups are recomputed until
they stop changing. The result is *self-consistent* when

1. the rounds settle (no cycle),
2. no vanishing coordinate slides (``|D_k| >= 1``: opposite signs tied in
   ``G_k`` would balance, and the coordinate's limit is then not this formula),
3. no sample outside ``supp(c)`` reaches the support's margin (it would join the
   support and change ``c``).

When one of these fails :func:`vanishing_direction` still returns the direction,
with ``self_consistent = False`` and the reasons. Example (cases.md, K17):
``z = [[1,0,0],[0,1,0],[2,2,1]]``, ``c = (1/2, 1/2, 0)`` gives ``(1,1,1)/sqrt(3)``.

:func:`refine_vanishing` refines such a prediction:

* each vanishing coordinate ``k`` takes the value ``x_k`` that is consistent with
  its own lowest-margin samples. With the other coordinates fixed, let
  ``f_+(x)`` (``f_-(x)``) be the lowest margin among the samples with
  ``z_ik > 0`` (``< 0``) when ``D_k = x``; ``f_+ - f_-`` increases in ``x``, so
  exactly one of ``x_k = +1`` (``f_+(1) < f_-(1)``), ``x_k = -1``
  (``f_-(-1) < f_+(-1)``) or a *slide* holds: ``x_k`` in ``(-1, 1)`` is the root
  of ``f_+ = f_-`` (the value that keeps the tied drivers' margins equal; two
  drivers of opposite sign with free positive weights realise any ``D_k`` in
  ``(-1, 1)``). Coupled coordinates are swept until they stop changing;
* a sample outside the support whose margin falls below the support's joins it,
  and ``c`` is re-solved on the grown support by equalising the support margins
  of ``D(c)`` (the KKT conditions of ``P(c)`` with ``lambda = c``, i.e. a fixed
  point of ``T`` with that support); entries of ``c`` driven to zero leave it;
* this repeats until nothing changes (self-consistent) or ``max_rounds``.

:func:`certify_vanishing` certifies the result in high precision: the
certificate of :func:`~theorybox.proxy.certificate.certify` on the coordinates
``P(c)`` sees, and on each vanishing coordinate the driver condition instead of
stationarity.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mpmath
import numpy as np
from scipy.optimize import least_squares

from theorybox.proxy.certificate import Certificate, certify

__all__ = [
    "VanishingDirection",
    "vanishing_direction",
    "RefinedPrediction",
    "VanishingCertificate",
    "refine_vanishing",
    "certify_vanishing",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class VanishingDirection:
    """A dual point's predicted direction with the vanishing-coordinate convention.

    Attributes
    ----------
    direction : numpy.ndarray
        Unit-l2 prediction, ``D`` normalised.
    D : numpy.ndarray
        The unnormalised ``D(c)`` (``+-1``-type entries on vanishing coordinates).
    vanishing : tuple of int
        Coordinates with ``M(c)_kk = 0`` that some sample touches.
    unused : tuple of int
        Coordinates no sample touches (``D_k = 0``).
    drivers : dict of int to tuple of int
        For each vanishing coordinate, the lowest-margin samples that drive it.
    self_consistent : bool
    reasons : tuple of str
        Why it is not self-consistent (empty when it is).
    rounds : int
        How many rounds of regrouping were made.
    """

    direction: np.ndarray
    D: np.ndarray
    vanishing: tuple[int, ...]
    unused: tuple[int, ...]
    drivers: dict
    self_consistent: bool
    reasons: tuple[str, ...]
    rounds: int


def vanishing_direction(
    Z: np.ndarray,
    c: np.ndarray,
    *,
    tie_rtol: float = 1e-9,
    max_rounds: int = 50,
) -> VanishingDirection:
    """Return ``D(c)``, with the convention above on vanishing coordinates.

    Parameters
    ----------
    Z : numpy.ndarray, shape (N, d)
        Rows ``z_i = y_i x_i``.
    c : numpy.ndarray, shape (N,)
        A point of the simplex (a dual fixed point); exact zeros mark samples
        outside the support.
    tie_rtol : float
        Margins within ``tie_rtol * max|margin|`` count as tied.
    max_rounds : int
        Bound on the regrouping rounds.

    Returns
    -------
    VanishingDirection

    Notes
    -----
    A prediction that is not self-consistent is reported, not refined, here; see
    :func:`refine_vanishing` for the refinement.
    """
    z = np.asarray(Z, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    touched = np.any(z != 0.0, axis=0)

    # The leading part: D_k on coordinates the support touches.
    num = c @ z
    den = np.sqrt((c * c) @ (z * z))
    leading = den > 0.0
    D = np.zeros(z.shape[1])
    D[leading] = num[leading] / den[leading]
    vanishing = tuple(int(k) for k in np.flatnonzero(touched & ~leading))
    unused = tuple(int(k) for k in np.flatnonzero(~touched))
    support = c > 0.0
    reasons: list[str] = []
    drivers: dict[int, tuple[int, ...]] = {}
    rounds = 0

    # Regroup: each vanishing coordinate follows its lowest-margin samples.
    if vanishing:
        settled = False
        seen: list[np.ndarray] = []
        while rounds < max_rounds:
            rounds += 1
            s = z @ D
            tie = tie_rtol * max(float(np.abs(s).max()), 1e-300)
            new = D.copy()
            for k in vanishing:
                touch = np.flatnonzero(z[:, k] != 0.0)
                low = s[touch].min()
                group = touch[s[touch] <= low + tie]
                drivers[k] = tuple(int(i) for i in group)
                col = z[group, k]
                new[k] = col.sum() / np.sqrt(np.sum(col * col))
            if np.array_equal(new, D):
                settled = True
                break
            if any(np.array_equal(new, old) for old in seen):
                break
            seen.append(D)
            D = new
        if not settled:
            reasons.append(
                f"the driving groups of vanishing coordinates {list(vanishing)} did "
                f"not settle in {rounds} rounds"
            )

        # Check sliding and whether a non-support sample reaches the support.
        for k in vanishing:
            if abs(D[k]) < 1.0 - 1e-12:
                reasons.append(
                    f"coordinate {k} slides: its lowest-margin samples "
                    f"{list(drivers[k])} pull with opposite signs (|D_k| = "
                    f"{abs(D[k]):.6g} < 1)"
                )
        s = z @ D
        if support.any():
            gamma = float(s[support].min())
            tie = tie_rtol * max(float(np.abs(s).max()), 1e-300)
            joins = np.flatnonzero(~support & (s <= gamma + tie))
            if joins.size:
                reasons.append(
                    f"samples {joins.tolist()} outside supp(c) reach the support's "
                    f"margin {gamma:.6g} under this convention and would join it"
                )
    norm = float(np.linalg.norm(D))
    direction = D / norm if norm > 0 else D.copy()
    if reasons:
        logger.info("vanishing-coordinate prediction not self-consistent: %s", reasons)
    return VanishingDirection(
        direction=direction,
        D=D,
        vanishing=vanishing,
        unused=unused,
        drivers=drivers,
        self_consistent=not reasons,
        reasons=tuple(reasons),
        rounds=rounds,
    )


@dataclass(frozen=True, eq=False)
class RefinedPrediction:
    """A self-consistent (or clearly flagged) vanishing-coordinate prediction.

    Attributes
    ----------
    direction : numpy.ndarray
        Unit-l2 prediction, ``D`` normalised.
    D : numpy.ndarray
        ``D(c)`` on the coordinates the support touches, ``x_k`` on vanishing ones.
    c : numpy.ndarray
        The (possibly re-solved) simplex point.
    support : tuple of int
        ``supp(c)``.
    vanishing : tuple of int
        Coordinates with ``M(c)_kk = 0`` that some sample touches.
    sliding : tuple of int
        Vanishing coordinates held by a tie of opposite-sign drivers (``|D_k| < 1``).
    drivers : dict of int to tuple of int
        Lowest-margin samples driving each vanishing coordinate (both sides of a
        slide).
    joined : tuple of int
        Samples added to the support, in order.
    left : tuple of int
        Samples that left the support when ``c`` was re-solved.
    margin : float
        The support's margin ``min_{i in supp(c)} z_i . D``.
    self_consistent : bool
    reasons : tuple of str
        What is still not self-consistent (empty when it is).
    rounds : int
        Support updates made.
    """

    direction: np.ndarray
    D: np.ndarray
    c: np.ndarray
    support: tuple[int, ...]
    vanishing: tuple[int, ...]
    sliding: tuple[int, ...]
    drivers: dict
    joined: tuple[int, ...]
    left: tuple[int, ...]
    margin: float
    self_consistent: bool
    reasons: tuple[str, ...]
    rounds: int


def _leading(z: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``D(c)`` where ``M(c)_kk > 0`` (zero elsewhere) and that mask."""
    num = c @ z
    den = np.sqrt((c * c) @ (z * z))
    lead = den > 0.0
    D = np.zeros(z.shape[1])
    D[lead] = num[lead] / den[lead]
    return D, lead


def _coordinate_value(
    s: np.ndarray, col: np.ndarray, tie: float
) -> tuple[float, tuple[int, ...], bool]:
    """Value of one vanishing coordinate given the other coordinates' margins ``s``.

    Returns ``(x_k, drivers, slides)``; see the module notes.
    """
    pos = np.flatnonzero(col > 0.0)
    neg = np.flatnonzero(col < 0.0)

    def low(idx: np.ndarray, x: float) -> float:
        return float(np.min(s[idx] + col[idx] * x)) if idx.size else np.inf

    def group(idx: np.ndarray, x: float) -> np.ndarray:
        m = s[idx] + col[idx] * x
        return idx[m <= m.min() + tie]

    # One sign wins at its own extreme value: +1 (or the tied group's value).
    if low(pos, 1.0) < low(neg, 1.0) - tie:
        g = group(pos, 1.0)
        return float(col[g].sum() / np.sqrt(np.sum(col[g] ** 2))), tuple(g), False
    if low(neg, -1.0) < low(pos, -1.0) - tie:
        g = group(neg, -1.0)
        return float(col[g].sum() / np.sqrt(np.sum(col[g] ** 2))), tuple(g), False

    # Otherwise the coordinate slides: the root of f_+ - f_- (increasing) in [-1, 1].
    lo, hi = -1.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if low(pos, mid) - low(neg, mid) < 0.0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-16:
            break
    x = 0.5 * (lo + hi)
    drv = np.concatenate([group(pos, x), group(neg, x)])
    return x, tuple(int(i) for i in np.sort(drv)), True


def _vanishing_values(
    z: np.ndarray,
    D: np.ndarray,
    vanishing: tuple[int, ...],
    tie_rtol: float,
    max_sweeps: int,
) -> tuple[np.ndarray, dict, tuple[int, ...], bool]:
    """Sweep the vanishing coordinates until each is consistent with its drivers."""
    D = D.copy()
    drivers: dict[int, tuple[int, ...]] = {}
    sliding: set[int] = set()
    if not vanishing:
        return D, drivers, (), True
    V = list(vanishing)

    # Start from the sign convention of the lowest-margin touching sample.
    s = z @ D
    for k in V:
        touch = np.flatnonzero(z[:, k] != 0.0)
        D[k] = float(np.sign(z[touch[np.argmin(s[touch])], k]))

    # Gauss-Seidel sweeps over the coupled coordinates.
    for _ in range(max_sweeps):
        change = 0.0
        for k in V:
            s_k = z @ D - z[:, k] * D[k]
            tie = tie_rtol * max(float(np.abs(s_k).max()), 1.0)
            x, drv, slides = _coordinate_value(s_k, z[:, k], tie)
            change = max(change, abs(x - D[k]))
            D[k] = x
            drivers[k] = tuple(int(i) for i in drv)
            if slides:
                sliding.add(k)
            else:
                sliding.discard(k)
        if change <= 1e-14:
            return D, drivers, tuple(sorted(sliding)), True
    return D, drivers, tuple(sorted(sliding)), False


def _equalise_support(
    z: np.ndarray, c: np.ndarray, support: np.ndarray
) -> tuple[np.ndarray, float]:
    """Re-solve ``c`` on ``support`` so that the support margins of ``D(c)`` agree.

    Returns the new ``c`` (zero off ``support``) and the relative residual.
    """
    S = np.asarray(support)
    zs = z[S]
    c0 = c[S].copy()
    fresh = c0 <= 0.0
    c0[fresh] = c0[~fresh].mean() if np.any(~fresh) else 1.0 / S.size
    c0 /= c0.sum()

    def residual(cs: np.ndarray) -> np.ndarray:
        D, _ = _leading(zs, cs)
        m = zs @ D
        return np.concatenate([m - m.mean(), [cs.sum() - 1.0]])

    # Bounded least squares from the grown start, then from the uniform start.
    best = None
    for start in (c0, np.full(S.size, 1.0 / S.size)):
        sol = least_squares(
            residual, start, bounds=(0.0, np.inf), xtol=1e-15, ftol=1e-15, gtol=1e-15
        )
        r = float(np.abs(sol.fun).max())
        if best is None or r < best[1]:
            best = (sol.x, r)
        if r < 1e-12:
            break
    cs, r = best
    out = np.zeros_like(c)
    out[S] = np.maximum(cs, 0.0)
    out /= out.sum()
    D, _ = _leading(zs, cs)
    scale = float(np.abs(zs @ D).max())
    return out, r / max(scale, 1e-300)


def refine_vanishing(
    Z: np.ndarray,
    c: np.ndarray,
    *,
    tie_rtol: float = 1e-9,
    c_tol: float = 1e-9,
    max_rounds: int = 20,
    max_sweeps: int = 200,
) -> RefinedPrediction:
    """Refine the vanishing-coordinate prediction of ``c`` until it is consistent.

    Parameters
    ----------
    Z : numpy.ndarray, shape (N, d)
        Rows ``z_i = y_i x_i`` (features zero on every sample are allowed and get
        ``D_k = 0``).
    c : numpy.ndarray, shape (N,)
        Starting simplex point (a dual fixed point); zeros mark non-support samples.
    tie_rtol : float
        Margins within ``tie_rtol * max(1, max|margin|)`` count as tied.
    c_tol : float
        Entries of a re-solved ``c`` at or below ``c_tol`` leave the support.
    max_rounds : int
        Bound on the support updates.
    max_sweeps : int
        Bound on the sweeps over the vanishing coordinates per round.

    Returns
    -------
    RefinedPrediction
        ``self_consistent`` is True when every vanishing coordinate is driven by its
        own lowest-margin samples (or slides on a tie), the sweeps settled, the
        support margins agree, and no sample outside the support lies below the
        support's margin; otherwise ``reasons`` says what failed.
    """
    z = np.asarray(Z, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64).copy()
    c = np.where(c > 0.0, c, 0.0)
    c /= c.sum()
    joined: list[int] = []
    left: list[int] = []
    reasons: list[str] = []
    rounds = 0
    while True:
        # Leading part, then the vanishing coordinates against their drivers.
        D_lead, lead = _leading(z, c)
        touched = np.any(z != 0.0, axis=0)
        vanishing = tuple(int(k) for k in np.flatnonzero(touched & ~lead))
        D, drivers, sliding, settled = _vanishing_values(
            z, D_lead, vanishing, tie_rtol, max_sweeps
        )

        # The support margin and the samples outside that fall below it.
        support = c > 0.0
        s = z @ D
        gamma = float(s[support].min())
        tie = tie_rtol * max(float(np.abs(s).max()), 1.0)
        below = np.flatnonzero(~support & (s < gamma - tie))
        if below.size == 0 or rounds >= max_rounds:
            break

        # Grow the support by the lowest sample below it and re-solve c.
        rounds += 1
        j = int(below[np.argmin(s[below])])
        joined.append(j)
        grown = np.flatnonzero(support | (np.arange(z.shape[0]) == j))
        c_new, res = _equalise_support(z, c, grown)
        gone = [int(i) for i in grown if c_new[i] <= c_tol]

        # Samples driven to zero leave; re-solve on what remains.
        while gone:
            left.extend(gone)
            c_new[gone] = 0.0
            grown = np.flatnonzero(c_new > 0.0)
            c_new, res = _equalise_support(z, c_new / c_new.sum(), grown)
            gone = [int(i) for i in grown if c_new[i] <= c_tol]
        c = c_new / c_new.sum()
        logger.info(
            "refinement round %d: sample %d joins the support (margin %.6g < %.6g), "
            "re-solve residual %.2e, left so far %s",
            rounds, j, s[j], gamma, res, left,
        )
        if res > 1e-8:
            reasons.append(
                f"round {rounds}: equalising the support margins after sample {j} "
                f"joined left a relative residual {res:.3g}"
            )

    # Final checks: settled sweeps, equal support margins, nobody below.
    if not settled:
        reasons.append(
            f"the vanishing coordinates {list(vanishing)} did not settle in "
            f"{max_sweeps} sweeps"
        )
    spread = float(s[support].max() - gamma)
    if spread > 1e-7 * max(abs(gamma), 1e-300):
        reasons.append(
            f"the support margins differ by {spread:.3g} (support margin {gamma:.6g})"
        )
    if below.size:
        reasons.append(
            f"round limit {max_rounds} reached with samples {below.tolist()} outside "
            f"the support below its margin {gamma:.6g}"
        )
    if gamma <= 0.0:
        reasons.append(f"the support margin {gamma:.3g} is not positive")
    norm = float(np.linalg.norm(D))
    if reasons:
        logger.info("refined prediction not self-consistent: %s", reasons)
    return RefinedPrediction(
        direction=D / norm if norm > 0 else D.copy(),
        D=D,
        c=c,
        support=tuple(int(i) for i in np.flatnonzero(support)),
        vanishing=vanishing,
        sliding=sliding,
        drivers=drivers,
        joined=tuple(joined),
        left=tuple(left),
        margin=gamma,
        self_consistent=not reasons,
        reasons=tuple(reasons),
        rounds=rounds,
    )


@dataclass(frozen=True)
class VanishingCertificate:
    """The certificate of ``(w, c)`` with driver conditions on vanishing coordinates.

    Attributes
    ----------
    base : Certificate
        :func:`~theorybox.proxy.certificate.certify` of ``(w, c)``: stationarity
        holds trivially on vanishing coordinates (``M_kk = h_k = 0``), and its
        complementarity fails when a sample outside ``supp(c)`` is below the
        support's margin.
    vanishing : tuple of int
    driver_residual : float
        Largest ``|w_k / alpha - target_k|`` over vanishing coordinates, where
        ``target_k = sign(z_jk)`` for the lowest-margin touching sample ``j`` (the
        tied same-sign group's value when several tie), and for a sliding
        coordinate the relative gap ``|f_+ - f_-| / s_min`` between the lowest
        margins of the two signs (then ``|w_k / alpha| < 1`` is also required).
    sliding : tuple of int
        Coordinates certified as slides.
    ok : bool
        ``base.ok`` and ``driver_residual <= base.tolerance``.
    """

    base: Certificate
    vanishing: tuple[int, ...]
    driver_residual: float
    sliding: tuple[int, ...]
    ok: bool


def certify_vanishing(
    Z: np.ndarray,
    w: np.ndarray,
    c: np.ndarray,
    dps: int = 50,
    *,
    fp_residual: float = 0.0,
    tolerance: float | None = None,
    tie_rtol: float = 1e-9,
) -> VanishingCertificate:
    """Certify ``w`` for ``c`` with the driver condition on vanishing coordinates.

    Parameters
    ----------
    Z : numpy.ndarray, shape (N, d)
    w : numpy.ndarray, shape (d,)
        The direction (any positive scale).
    c : numpy.ndarray, shape (N,)
    dps : int
        Decimal digits of the private mpmath context.
    fp_residual, tolerance
        As in :func:`~theorybox.proxy.certificate.certify`.
    tie_rtol : float
        Relative margin gap under which two opposite-sign drivers count as a slide.

    Returns
    -------
    VanishingCertificate
    """
    z = np.asarray(Z, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    c = np.asarray(c, dtype=np.float64).reshape(-1)
    base = certify(z, w, c, dps, fp_residual=fp_residual, tolerance=tolerance)
    mp = mpmath.MPContext()
    mp.dps = int(dps)

    # Margins in high precision, in units of the leading scale alpha.
    alpha = mp.mpf(base.alpha)
    if alpha <= 0 or not base.vanishing:
        return VanishingCertificate(
            base, base.vanishing, 0.0 if alpha > 0 else np.inf, (), bool(base.ok)
        )
    rows = [[mp.mpf(float(x)) for x in row] for row in z]
    wm = [mp.mpf(float(x)) / alpha for x in w]
    s = [mp.fsum(r[k] * wm[k] for k in range(len(wm))) for r in rows]
    s_min = min(s)
    worst = mp.mpf(0)
    sliding: list[int] = []

    # Each vanishing coordinate: its lowest margin on each side decides.
    for k in base.vanishing:
        pos = [i for i, r in enumerate(rows) if r[k] > 0]
        neg = [i for i, r in enumerate(rows) if r[k] < 0]
        lp = min((s[i] for i in pos), default=mp.inf)
        ln = min((s[i] for i in neg), default=mp.inf)
        gap = abs(lp - ln) / abs(s_min) if pos and neg else mp.inf
        if gap <= tie_rtol:
            sliding.append(int(k))
            res = gap if abs(wm[k]) < 1 else mp.inf
        else:
            side = pos if lp < ln else neg
            low = min(s[i] for i in side)
            grp = [i for i in side if s[i] - low <= tie_rtol * abs(s_min)]
            target = mp.fsum(rows[i][k] for i in grp) / mp.sqrt(
                mp.fsum(rows[i][k] ** 2 for i in grp)
            )
            res = abs(wm[k] - target)
        worst = max(worst, res)
    tol = base.tolerance
    ok = bool(base.ok and worst <= tol)
    return VanishingCertificate(base, base.vanishing, float(worst), tuple(sliding), ok)
