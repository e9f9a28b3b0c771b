"""The optimizer registry: an update rule, its state, hyperparameters and batching.

A user (or a test) adds an optimizer with :func:`register`; the engine compiles a
float64 kernel for any registered rule, and the mpmath backend runs the same rule.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from theorybox.errors import DivergenceWarning, InvalidParameterError, TheoryboxWarning
from theorybox.optimizers import rules

__all__ = ["OptimizerSpec", "register", "get_optimizer", "list_optimizers"]

SCHEMES = ("full", "cyclic", "reshuffle", "replacement")


@dataclass(frozen=True)
class OptimizerSpec:
    """What the engine needs to know about one optimizer.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"adam-ps"``.
    rule : callable
        The update rule (see :mod:`theorybox.optimizers.rules`).
    state : tuple of (str, int)
        Moment names and their power in the coordinate's scale (1 for ``m``, 2 for
        ``v``), in the order the rule takes and returns them.
    hyper : mapping of str to float
        Hyperparameter names, in the order the rule takes them, with defaults.
    scheme, batch_size : str, int or None
        Default batching: ``"full"``, ``"cyclic"``, ``"reshuffle"`` or
        ``"replacement"``, and the batch size (``None`` means ``N``).
    description : str
        One line for listings.
    check : callable or None
        ``check(hyper)`` raises :class:`InvalidParameterError` on bad values.
    """

    name: str
    rule: Callable
    state: tuple[tuple[str, int], ...] = ()
    hyper: Mapping[str, float] = field(default_factory=dict)
    scheme: str = "full"
    batch_size: int | None = None
    description: str = ""
    check: Callable[[Mapping[str, float]], None] | None = None

    def __post_init__(self):
        object.__setattr__(self, "hyper", MappingProxyType(dict(self.hyper)))
        if self.scheme not in SCHEMES:
            raise InvalidParameterError(
                f"optimizer {self.name!r}: scheme {self.scheme!r} is not one of "
                f"{SCHEMES}"
            )
        for name, power in self.state:
            if power not in (1, 2):
                raise InvalidParameterError(
                    f"optimizer {self.name!r}: state {name!r} has power {power}; "
                    "only 1 (like m) and 2 (like v) are supported"
                )

    def resolve_hyper(self, overrides: Mapping[str, float] | None = None) -> dict:
        """Defaults updated by ``overrides``, validated."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.hyper))
        if unknown:
            raise InvalidParameterError(
                f"optimizer {self.name!r} has no hyperparameter {unknown[0]!r}; "
                f"its hyperparameters are {sorted(self.hyper) or 'none'}"
            )
        values = {**self.hyper, **overrides}
        for key, value in values.items():
            if not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise InvalidParameterError(
                    f"optimizer {self.name!r}: {key} = {value!r} is not a finite "
                    "number"
                )
        # numpy scalars become plain Python numbers (records stay JSON-able).
        values = {
            key: int(value) if isinstance(value, numbers.Integral) else float(value)
            for key, value in values.items()
        }
        if self.check is not None:
            self.check(values)
        return values


_REGISTRY: dict[str, OptimizerSpec] = {}


def register(spec: OptimizerSpec, *, replace: bool = False) -> OptimizerSpec:
    """Add ``spec`` to the registry (``replace=True`` to overwrite a name)."""
    if spec.name in _REGISTRY and not replace:
        raise InvalidParameterError(
            f"an optimizer named {spec.name!r} is already registered; pass "
            "replace=True to overwrite it"
        )
    _REGISTRY[spec.name] = spec
    return spec


def get_optimizer(name: str) -> OptimizerSpec:
    """Look up a registered optimizer by name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InvalidParameterError(
            f"unknown optimizer {name!r}; registered: {', '.join(list_optimizers())}"
        ) from None


def list_optimizers() -> list[str]:
    """Names of the registered optimizers, sorted."""
    return sorted(_REGISTRY)


# Validation of the built-in hyperparameters.


def _unit_interval(values, *names, closed_low=True):
    for name in names:
        value = values[name]
        low_ok = value >= 0 if closed_low else value > 0
        if not (low_ok and value < 1):
            interval = "[0, 1)" if closed_low else "(0, 1)"
            rule = f"0 <= {name} < 1" if closed_low else f"0 < {name} < 1"
            raise InvalidParameterError(
                f"{name} = {value!r} is outside {interval}; moving-average factors "
                f"must satisfy {rule} (for example {name}=0.9)"
            )


def _check_signum(values):
    _unit_interval(values, "beta")


def _check_adam(values):
    _unit_interval(values, "b1")
    _unit_interval(values, "b2", closed_low=False)
    if values["eps"] < 0:
        raise InvalidParameterError(
            f"eps = {values['eps']!r} is negative; use eps >= 0 (0 is the theory's "
            "setting)"
        )
    modes = (rules.EPS_OUTSIDE, rules.EPS_INSIDE, rules.EPS_FOLDED)
    if values["eps_mode"] not in modes:
        raise InvalidParameterError(
            f"eps_mode = {values['eps_mode']!r}; use 0 (outside the root), 1 (inside)"
            " or 2 (bias correction folded into the step size)"
        )
    if values["bias_correction"] not in (0, 1):
        raise InvalidParameterError(
            f"bias_correction = {values['bias_correction']!r}; use 0 (off) or 1 (on)"
        )
    b1, b2 = values["b1"], values["b2"]
    if values["eps"] == 0 and b1 > math.sqrt(b2):
        warnings.warn(
            f"b1 = {b1} > sqrt(b2) = {math.sqrt(b2):.6g} with eps = 0: the ratio "
            "|m|/sqrt(v) can grow like (b1/sqrt(b2))^t and the iterates can diverge; "
            "choose b1 <= sqrt(b2) (the theorem assumes b1 <= b2, which implies it)",
            DivergenceWarning,
            stacklevel=4,
        )


_ADAM = {"b1": 0.9, "b2": 0.999, "eps": 0.0, "eps_mode": 0, "bias_correction": 0}
_ADAM_STATE = (("m", 1), ("v", 2))

for _spec in (
    OptimizerSpec("gd", rules.gradient_step, description="gradient descent"),
    OptimizerSpec(
        "sgd",
        rules.gradient_step,
        scheme="reshuffle",
        batch_size=1,
        description="stochastic gradient descent (random reshuffling)",
    ),
    OptimizerSpec("signgd", rules.sign_step, description="sign gradient descent"),
    OptimizerSpec(
        "signum",
        rules.signum_step,
        state=(("m", 1),),
        hyper={"beta": 0.99},
        description="sign of momentum (full batch by default)",
        check=_check_signum,
    ),
    OptimizerSpec(
        "adam",
        rules.adam_step,
        state=_ADAM_STATE,
        hyper=_ADAM,
        description="full-batch Adam",
        check=_check_adam,
    ),
    OptimizerSpec(
        "adam-ps",
        rules.adam_step,
        state=_ADAM_STATE,
        hyper=_ADAM,
        scheme="cyclic",
        batch_size=1,
        description="per-sample (incremental) Adam, cyclic order",
        check=_check_adam,
    ),
    OptimizerSpec(
        "adam-mb",
        rules.adam_step,
        state=_ADAM_STATE,
        hyper=_ADAM,
        scheme="reshuffle",
        batch_size=5,
        description="mini-batch Adam (random reshuffling)",
        check=_check_adam,
    ),
    OptimizerSpec(
        "adamproxy",
        rules.adam_proxy_step,
        description="AdamProxy: grad L / sqrt(sum_i grad L_i^2)",
    ),
):
    register(_spec)


# Phi_{N,b} as an optimizer (theory.md, section 2: the mini-batch proxy).


def _check_phi_proxy(values):
    n, b = values["n"], values["b"]
    for name, value in (("n", n), ("b", b)):
        if float(value) != int(value):
            raise InvalidParameterError(
                f"phi-proxy: {name} = {value!r} is not an integer; n is the number of "
                "samples N and b the batch size (for example n=20, b=5)"
            )
    if n < 2:
        raise InvalidParameterError(
            f"phi-proxy: n = {n!r}; the proxy needs N >= 2 (at N = 1 its formula is "
            "0/0; use 'signgd' instead), and n must equal the number of samples"
        )
    if not 1 <= b <= n:
        raise InvalidParameterError(
            f"phi-proxy: b = {b!r} is outside [1, n] = [1, {n}]; the batch size "
            "must satisfy 1 <= b <= N"
        )
    if int(n) % int(b):
        warnings.warn(
            f"phi-proxy: b = {b} does not divide n = {n}; Phi_{{N,b}} was derived for "
            "random reshuffling into N/b equal batches, so it is only a formula here",
            TheoryboxWarning,
            stacklevel=4,
        )


register(
    OptimizerSpec(
        "phi-proxy",
        rules.phi_proxy_step,
        hyper={"n": 10, "b": 1},
        description="mini-batch proxy Phi_{N,b} (set n = N and the batch size b)",
        check=_check_phi_proxy,
    )
)
