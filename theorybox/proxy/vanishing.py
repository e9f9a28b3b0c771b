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

When one of these fails the direction is still returned, with
``self_consistent = False`` and the reasons; refining it is not implemented (a
documented limitation, see :func:`vanishing_direction`). Example (cases.md, K17):
``z = [[1,0,0],[0,1,0],[2,2,1]]``, ``c = (1/2, 1/2, 0)`` gives ``(1,1,1)/sqrt(3)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["VanishingDirection", "vanishing_direction"]

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
    Limitation: a prediction that is not self-consistent is reported, not refined
    (theory.md asks for a refinement in which each coordinate is driven by its own
    lowest-margin samples and the support may grow; that is not implemented).
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
