"""Optimizers: update rules, their registry, batching and step-size schedules."""

from theorybox.optimizers.config import Batching, RunConfig, Schedule
from theorybox.optimizers.registry import (
    OptimizerSpec,
    get_optimizer,
    list_optimizers,
    register,
)

__all__ = [
    "Batching",
    "OptimizerSpec",
    "RunConfig",
    "Schedule",
    "get_optimizer",
    "list_optimizers",
    "register",
]
