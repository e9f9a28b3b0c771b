r"""Losses in log-domain forms that never underflow or cancel.

For a margin :math:`s = z \cdot w`, the per-sample gradient is
:math:`\nabla L_i(w) = -g(s_i)\, z_i` with the *weight* :math:`g = -\ell'(s)`.
Only :math:`\log g` is ever formed, so margins of :math:`\pm 10^5` are exact:

* logistic, :math:`\ell(s) = \log(1 + e^{-s})`: :math:`\log g(s) =
  -\operatorname{softplus}(s)`;
* exponential, :math:`\ell(s) = e^{-s}`: :math:`\log g(s) = -s`.

The loss itself is returned as :math:`\log \ell(s)`, since :math:`\ell` underflows
for :math:`s \gtrsim 745`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["LOSS_CODES", "log_weight", "log_loss", "mean_log_loss", "weights"]

#: Integer codes the compiled kernel uses.
LOSS_CODES = {"logistic": 0, "exponential": 1}


#: ``exp(x)`` rounds to 0 for every ``x`` below this (``e^-745.2 < 2^-1075``).
EXP_ZERO = -745.2

#: For ``s`` above this, ``log1p(e^-s) < 2^-54`` is under half an ulp of ``s``.
SOFTPLUS_LINEAR = 40.0


@numba.njit(inline="always", cache=False)
def exp_or_zero(x):
    """``math.exp(x)``, bit for bit, without libm's slow path for underflow."""
    if x < EXP_ZERO:
        return 0.0
    return math.exp(x)


@numba.njit(cache=False)
def log_weight_scalar(s, code):
    """``log g(s)`` for one margin (``code`` from :data:`LOSS_CODES`).

    The same bits as ``-softplus(s)`` evaluated in full; the shortcuts only skip
    work whose result is known (an addend below half an ulp, an exp that is 0).
    """
    if code == 1:
        return -s
    # -softplus(s), split by sign so that exp never overflows.
    if s > 0.0:
        if s > SOFTPLUS_LINEAR:
            return -s
        return -(s + math.log1p(math.exp(-s)))
    return -math.log1p(exp_or_zero(s))


def log_weight(s, loss: str = "logistic") -> np.ndarray:
    """``log g(s)`` elementwise; ``g = -l'(s)``."""
    s = np.asarray(s, dtype=np.float64)
    if loss == "exponential":
        return -s
    return -np.logaddexp(0.0, s)


def log_loss(s, loss: str = "logistic") -> np.ndarray:
    """``log l(s)`` elementwise, exact for large positive margins."""
    s = np.asarray(s, dtype=np.float64)
    if loss == "exponential":
        return -s
    # l(s) = log1p(e^-s). For s > 0 write it as e^-s * r(e^-s) with
    # r(x) = log1p(x)/x in (log 2, 1]; log r is then a small, exact correction.
    out = np.empty_like(s)
    pos = s > 0
    x = np.exp(-s[pos])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(x > 0, np.log1p(x) / np.where(x > 0, x, 1.0), 1.0)
    out[pos] = -s[pos] + np.log(ratio)
    out[~pos] = np.log(np.logaddexp(0.0, -s[~pos]))
    return out


def mean_log_loss(s, loss: str = "logistic") -> float:
    """``log L`` for the mean loss ``L = (1/N) sum_i l(s_i)``."""
    ll = log_loss(s, loss)
    top = ll.max()
    return float(top + np.log(np.exp(ll - top).sum()) - np.log(ll.size))


def weights(s, loss: str = "logistic") -> np.ndarray:
    """Normalised per-sample weights ``g_i / sum_j g_j`` (a softmax of ``log g``)."""
    lg = log_weight(s, loss)
    e = np.exp(lg - lg.max())
    return e / e.sum()
