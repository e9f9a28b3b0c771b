"""Frozen run configuration: optimizer, batching, schedule, horizon, seed."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field

from theorybox.errors import InvalidParameterError
from theorybox.optimizers.registry import SCHEMES, get_optimizer

__all__ = ["Schedule", "Batching", "RunConfig", "LOSSES"]

LOSSES = ("logistic", "exponential")


def _is_int(value) -> bool:
    """An integer (numpy's included), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Schedule:
    r"""Step sizes :math:`\eta_t = \eta_0 (t + t_0)^{-a}` for steps ``t = 0, 1, ...``.

    ``a = 0`` gives the constant step ``eta0``.
    """

    eta0: float = 0.1
    t0: float = 1.0
    a: float = 0.5

    def __post_init__(self):
        for name in ("eta0", "t0", "a"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise InvalidParameterError(
                    f"schedule {name} = {value!r} must be a real number"
                )
            object.__setattr__(self, name, float(value))
        if not math.isfinite(self.t0):
            raise InvalidParameterError(
                f"t0 = {self.t0!r} must be finite (an infinite t0 makes every step 0)"
            )
        if not (math.isfinite(self.eta0) and self.eta0 > 0):
            raise InvalidParameterError(
                f"learning rate eta0 = {self.eta0!r} must be a positive finite number"
                " (for example 0.1)"
            )
        if not (0 <= self.a <= 1):
            raise InvalidParameterError(
                f"schedule exponent a = {self.a!r} is outside [0, 1]; use a in (0, 1]"
                " for a decaying schedule or 0 for a constant step"
            )
        if self.a > 0 and not self.t0 > 0:
            raise InvalidParameterError(
                f"t0 = {self.t0!r} must be positive when a = {self.a} > 0, so that "
                "eta_0 is finite"
            )

    def __call__(self, t: int) -> float:
        """The step size of step ``t`` (0-based)."""
        if self.a == 0:
            return self.eta0
        return self.eta0 * (t + self.t0) ** (-self.a)


@dataclass(frozen=True)
class Batching:
    """Which samples each step sees.

    ``scheme`` is ``"full"``, ``"cyclic"`` (fixed order, the paper's Inc-Adam),
    ``"reshuffle"`` (a fresh permutation each epoch cut into batches) or
    ``"replacement"`` (``batch_size`` indices drawn independently). An epoch has
    ``ceil(N / batch_size)`` steps; when ``batch_size`` does not divide ``N`` the
    last batch of a cyclic or reshuffled epoch is smaller.
    """

    scheme: str = "full"
    batch_size: int | None = None

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise InvalidParameterError(
                f"batching scheme {self.scheme!r} is not one of {SCHEMES}"
            )
        if self.batch_size is not None:
            if not _is_int(self.batch_size) or self.batch_size < 1:
                raise InvalidParameterError(
                    f"batch_size = {self.batch_size!r} must be a positive integer"
                )
            object.__setattr__(self, "batch_size", int(self.batch_size))
            if self.scheme == "full":
                raise InvalidParameterError(
                    f"batch_size = {self.batch_size} with the full-batch scheme: every "
                    "step sees all N samples; choose scheme 'cyclic', 'reshuffle' or "
                    "'replacement' for mini-batches"
                )

    def size(self, n: int) -> int:
        """The batch size for ``n`` samples."""
        if self.scheme == "full" or self.batch_size is None:
            return n
        if self.batch_size > n:
            raise InvalidParameterError(
                f"batch_size = {self.batch_size} exceeds the number of samples N = "
                f"{n}; use batch_size <= {n}"
            )
        return self.batch_size


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one trajectory, bit for bit.

    Parameters
    ----------
    optimizer : str
        A registered optimizer name (:func:`theorybox.optimizers.list_optimizers`).
    steps : int
        Number of optimizer steps (one step = one batch).
    hyper : dict
        Overrides of the optimizer's hyperparameters.
    batching : Batching or None
        ``None`` takes the optimizer's default.
    schedule : Schedule
    loss : str
        ``"logistic"`` or ``"exponential"``.
    seed : int
        Key of the counter-based stream that draws batch orders.
    """

    optimizer: str
    steps: int
    hyper: dict = field(default_factory=dict)
    batching: Batching | None = None
    schedule: Schedule = field(default_factory=Schedule)
    loss: str = "logistic"
    seed: int = 0

    def __post_init__(self):
        spec = get_optimizer(self.optimizer)
        if not _is_int(self.steps) or self.steps < 0:
            raise InvalidParameterError(
                f"steps = {self.steps!r} must be a non-negative integer (for example "
                "10000)"
            )
        object.__setattr__(self, "steps", int(self.steps))
        if self.batching is not None and not isinstance(self.batching, Batching):
            raise InvalidParameterError(
                f"batching = {self.batching!r} must be a Batching, e.g. "
                "Batching('cyclic', 1)"
            )
        if not isinstance(self.schedule, Schedule):
            raise InvalidParameterError(
                f"schedule = {self.schedule!r} must be a Schedule, e.g. "
                "Schedule(0.1, 1.0, 0.5)"
            )
        if self.loss not in LOSSES:
            raise InvalidParameterError(
                f"loss {self.loss!r} is not one of {LOSSES}"
            )
        if not _is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise InvalidParameterError(
                f"seed = {self.seed!r} must be an integer in [0, 2**63)"
            )
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "hyper", spec.resolve_hyper(self.hyper))
        if self.batching is None:
            object.__setattr__(self, "batching", Batching(spec.scheme, spec.batch_size))

    @property
    def spec(self):
        return get_optimizer(self.optimizer)

    def to_dict(self) -> dict:
        """A JSON-able description (what a record stores)."""
        return {
            "optimizer": self.optimizer,
            "steps": self.steps,
            "hyper": dict(self.hyper),
            "batching": asdict(self.batching),
            "schedule": asdict(self.schedule),
            "loss": self.loss,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        return cls(
            optimizer=data["optimizer"],
            steps=data["steps"],
            hyper=dict(data.get("hyper", {})),
            batching=Batching(**data["batching"]) if data.get("batching") else None,
            schedule=Schedule(**data.get("schedule", {})),
            loss=data.get("loss", "logistic"),
            seed=data.get("seed", 0),
        )
