"""proofs_check: one check per claim of the implicit-bias theory.

Each check is a function ``check(profile) -> Record`` (:mod:`theorybox.records`)
registered in :mod:`proofs_check.registry`; importing this package registers all
of them. Run them with ``python -m proofs_check`` (or ``theorybox check``), or from
Python::

    from proofs_check import run_checks
    records = run_checks("quick", select=["adam_full_linf_rate"])

Modules, one per claim family: :mod:`~proofs_check.checks_adam` (full-batch Adam),
:mod:`~proofs_check.checks_persample` (per-sample Adam, samplers),
:mod:`~proofs_check.checks_epoch` (the epoch map and its ``b2 -> 1`` limit),
:mod:`~proofs_check.checks_proxy` (AdamProxy and its dual fixed point),
:mod:`~proofs_check.checks_signum` (Signum for every batch size),
:mod:`~proofs_check.checks_baselines` (GD, SGD, SignGD),
:mod:`~proofs_check.checks_steps` (Adam as SignGD step by step; Inc-Adam's
weighted-GD weights on Rademacher data).
"""

from proofs_check import (  # noqa: F401 (importing registers the checks)
    checks_adam,
    checks_baselines,
    checks_epoch,
    checks_persample,
    checks_proxy,
    checks_signum,
    checks_steps,
)
from proofs_check.registry import (
    PROFILES,
    Check,
    claim_check,
    get_check,
    list_checks,
    run_check,
    run_checks,
)

__all__ = [
    "PROFILES",
    "Check",
    "claim_check",
    "get_check",
    "list_checks",
    "run_check",
    "run_checks",
]
