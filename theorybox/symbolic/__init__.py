"""Symbolic update maps and epoch maps, derived from the registered rules.

Every symbolic result here is derived with sympy under a time limit and confirmed
numerically with mpmath at random points (:mod:`theorybox.symbolic.verify`).
"""

from theorybox.symbolic.epoch import (
    Claim,
    adam_proxy_direction,
    b2_limit_errors,
    c_inc,
    derive_b2_limit,
    derive_clock_conversion,
    derive_ema_steady_state,
    derive_epoch_map,
    derive_full_batch_asymptote,
    derive_phi_identities,
    ema_closed_form,
    ema_steady_state,
    epoch_map_formula,
    epoch_map_numeric,
    phi,
    phi_expr,
    rademacher_weights,
)
from theorybox.symbolic.maps import UpdateMap, lambdify_agreement, update_map
from theorybox.symbolic.ops import SympyOps, SympyOpsPiecewise, sympy_ops
from theorybox.symbolic.verify import (
    Confirmation,
    IdentityCheck,
    check_identity,
    confirm,
    time_limited,
)

__all__ = [
    "Claim",
    "Confirmation",
    "IdentityCheck",
    "SympyOps",
    "SympyOpsPiecewise",
    "UpdateMap",
    "adam_proxy_direction",
    "b2_limit_errors",
    "c_inc",
    "check_identity",
    "confirm",
    "derive_b2_limit",
    "derive_clock_conversion",
    "derive_ema_steady_state",
    "derive_epoch_map",
    "derive_full_batch_asymptote",
    "derive_phi_identities",
    "ema_closed_form",
    "ema_steady_state",
    "epoch_map_formula",
    "epoch_map_numeric",
    "lambdify_agreement",
    "phi",
    "phi_expr",
    "rademacher_weights",
    "sympy_ops",
    "time_limited",
    "update_map",
]
