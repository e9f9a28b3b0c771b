"""The AdamProxy dual fixed point: prediction, certificate, vanishing coordinates.

Theory.md, claim 3: AdamProxy's limit direction is the Mahalanobis max margin of a
fixed point ``c* = T(c*)`` of the dual map ``T``. :func:`solve_fixed_point`
searches for it from many starts, :func:`certify` checks a direction in high
precision, and :func:`vanishing_direction` handles coordinates on which ``M(c*)``
vanishes.
"""

from theorybox.proxy.certificate import Certificate, certificate_tolerance, certify
from theorybox.proxy.fixedpoint import (
    FixedPoint,
    FixedPointReport,
    FixedPointRun,
    FixedPointWarning,
    dual_map,
    metric_diag,
    predicted_direction,
    solve_fixed_point,
)
from theorybox.proxy.vanishing import VanishingDirection, vanishing_direction

__all__ = [
    "Certificate",
    "FixedPoint",
    "FixedPointReport",
    "FixedPointRun",
    "FixedPointWarning",
    "VanishingDirection",
    "certificate_tolerance",
    "certify",
    "dual_map",
    "metric_diag",
    "predicted_direction",
    "solve_fixed_point",
    "vanishing_direction",
]
