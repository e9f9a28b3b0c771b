r"""Rate fits on geometrically spaced checkpoints, and verdicts from them.

An asymptotic claim ("the gap falls like :math:`t^{-p}`", "``1 - cos`` falls like
:math:`1/\log^2 t`") is never judged by one end point. The theory's rate model is
written as a straight line in suitable coordinates,

.. math::

    \log y = c + p \, \log x ,

where ``x`` is the step ``t``, the effective time :math:`S_t = \sum_{s<t}\eta_s`,
:math:`\log t`, or ``1 - b2``, depending on the model. :func:`fit_rate` fits it by
least squares on at least three checkpoints that must be geometrically spaced in
``x`` (so that every decade weighs the same) and returns the slope ``p`` with its
standard error. The tolerance of a rate check is

.. math::

    \tau = k\,\mathrm{se}(p) + \text{precision floor} + \text{model slack},

with ``k = 3`` (:data:`SE_FACTOR`); the precision floor is what the working
precision can do to the slope (:func:`precision_floor`), and the model slack is
the part of the rate that the theory leaves open (a log factor), stated by each
check with its reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "SE_FACTOR",
    "RateFit",
    "fit_rate",
    "geometric_tail",
    "precision_floor",
    "judge_bound",
    "effective_time",
]

#: Standard errors of the slope allowed by a rate check.
SE_FACTOR = 3.0

#: Smallest ratio between consecutive ``x`` that counts as geometric spacing.
MIN_RATIO = 1.2


@dataclass(frozen=True)
class RateFit:
    """A least-squares fit of ``log y = intercept + slope log x``.

    Attributes
    ----------
    slope, intercept : float
    slope_se : float
        Standard error of the slope (``inf`` with fewer than three points).
    residual_rms : float
        Root-mean-square residual in ``log y``.
    x, y : list of float
        The points used.
    """

    slope: float
    intercept: float
    slope_se: float
    residual_rms: float
    x: list
    y: list

    def to_dict(self) -> dict:
        return asdict(self)


def fit_rate(x, y, *, min_points: int = 3) -> RateFit:
    """Fit ``log y = c + p log x`` on geometrically spaced positive points.

    Parameters
    ----------
    x, y : array_like
        Positive values; ``x`` increasing with ratios at least :data:`MIN_RATIO`.
    min_points : int
        At least this many points (three by default).

    Returns
    -------
    RateFit

    Raises
    ------
    ValueError
        Too few points, non-positive values, or ``x`` not geometrically spaced.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.size < min_points:
        raise ValueError(
            f"a rate fit needs at least {min_points} matching points; got x of "
            f"shape {x.shape} and y of shape {y.shape}"
        )
    if not (np.all(x > 0) and np.all(y > 0) and np.all(np.isfinite(x + y))):
        raise ValueError(
            f"a rate fit needs finite positive values; got x = {x.tolist()}, "
            f"y = {y.tolist()}"
        )
    ratios = x[1:] / x[:-1]
    if np.any(ratios < MIN_RATIO):
        raise ValueError(
            f"checkpoints must be geometrically spaced (ratios >= {MIN_RATIO}); got "
            f"ratios {np.round(ratios, 3).tolist()}"
        )

    # Ordinary least squares in log-log coordinates.
    lx, ly = np.log(x), np.log(y)
    A = np.vstack([lx, np.ones_like(lx)]).T
    (slope, intercept), *_ = np.linalg.lstsq(A, ly, rcond=None)
    resid = ly - (slope * lx + intercept)

    # Standard error of the slope from the residuals.
    dof = x.size - 2
    sxx = float(np.sum((lx - lx.mean()) ** 2))
    if dof > 0 and sxx > 0:
        se = math.sqrt(float(np.sum(resid**2)) / dof / sxx)
    else:
        se = math.inf
    return RateFit(
        slope=float(slope),
        intercept=float(intercept),
        slope_se=se,
        residual_rms=float(np.sqrt(np.mean(resid**2))),
        x=x.tolist(),
        y=y.tolist(),
    )


def geometric_tail(x, y, count: int):
    """The last ``count`` points of ``(x, y)``, thinned to geometric spacing.

    Points closer than :data:`MIN_RATIO` to the previous kept one are skipped
    (walking back from the last point).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = [x.size - 1]
    for i in range(x.size - 2, -1, -1):
        if len(keep) == count:
            break
        if x[keep[-1]] / x[i] >= MIN_RATIO:
            keep.append(i)
    keep = keep[::-1]
    return x[keep], y[keep]


def precision_floor(x, y, abs_err: float) -> float:
    """What an absolute error ``abs_err`` on every ``y`` can do to a fitted slope.

    A relative error ``abs_err / y`` moves ``log y`` by about as much; spread over
    the fitted range of ``log x`` it tilts the slope by at most twice the largest
    such error divided by the range.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    span = float(np.log(x.max() / x.min()))
    if span <= 0:
        return math.inf
    return float(2.0 * np.max(abs_err / y) / span)


def shows_no_decay(fit: RateFit, tolerance: float) -> bool:
    """Whether the fit is evidence that the quantity does not decay.

    ``tolerance`` is ``SE_FACTOR`` standard errors of the slope plus a floor (the
    precision floor and any stated allowance). The quantity shows no decay when
    the whole confidence band of the slope, ``slope -+ SE_FACTOR se``, lies above
    ``-floor``. A noisy fit whose band reaches well below zero is no evidence
    either way (a short horizon), and a precise flat or rising fit is.
    """
    band = SE_FACTOR * fit.slope_se
    floor = tolerance - band
    return fit.slope - band >= -floor


def judge_bound(fit: RateFit, predicted: float, tolerance: float) -> str:
    """Verdict for a rate that the theory gives as an upper bound.

    ``y = O(x^predicted)`` with ``predicted < 0``: the fitted slope should be at
    most ``predicted`` (faster decay is consistent with a bound).

    Returns
    -------
    str
        ``"pass"`` when ``slope <= predicted + tolerance``; ``"fail"`` when the
        fit shows no decay (:func:`shows_no_decay`); otherwise
        ``"inconclusive"``: it decays more slowly than the bound's rate over this
        window (the bound holds only after an unknown time), or the fit cannot
        tell decay from none. Absence of evidence of decay is not a failure.
    """
    if fit.slope <= predicted + tolerance:
        return "pass"
    if shows_no_decay(fit, tolerance):
        return "fail"
    return "inconclusive"


def effective_time(steps, eta0: float, t0: float, a: float) -> np.ndarray:
    r"""``S_t = sum_{s<t} eta_s`` for :math:`\eta_s = \eta_0 (s + t_0)^{-a}`.

    Exact sums up to ``10^4`` terms, then the Euler-Maclaurin approximation
    (relative error far below any tolerance here).
    """
    steps = np.asarray(steps, dtype=np.int64)
    out = np.empty(steps.shape, dtype=np.float64)
    head = 10_000
    s = np.arange(head, dtype=np.float64)
    prefix = np.concatenate([[0.0], np.cumsum(eta0 * (s + t0) ** (-a))])
    for j, t in enumerate(steps.ravel()):
        if t <= head:
            out.ravel()[j] = prefix[t]
            continue

        # Integral of eta from head to t, with the trapezoid end correction.
        lo, hi = head + t0, t + t0
        if a == 1.0:
            integral = eta0 * math.log(hi / lo)
        else:
            integral = eta0 * (hi ** (1 - a) - lo ** (1 - a)) / (1 - a)
        correction = 0.5 * eta0 * (lo ** (-a) - hi ** (-a))
        out.ravel()[j] = prefix[head] + integral + correction
    return out
