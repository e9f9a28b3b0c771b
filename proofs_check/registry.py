"""The registry of claim checks, the profiles, and the runner.

A check is a function ``check(profile) -> Record`` registered with
:func:`claim_check`. Its docstring states the claim, its assumptions and its
source; the record carries what was measured, what the theory predicts, the
tolerance and its reason, the data and settings, and a verdict (``"pass"``,
``"fail"``, ``"inconclusive"`` or ``"known deviation"``).

Profiles: ``quick`` (every check together in about a minute on two cores: the
default test run uses it) and ``full`` (longer horizons, more parameters).

The shared fixtures of the checks (a discriminating Rademacher instance, a
Gaussian instance, their references) are built here once per process.
"""

from __future__ import annotations

import functools
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from theorybox.data import gaussian, rademacher
from theorybox.metrics import metrics_for
from theorybox.records import Record
from theorybox.references import compute_references

__all__ = [
    "PROFILES",
    "Check",
    "claim_check",
    "get_check",
    "list_checks",
    "run_check",
    "run_checks",
    "make_record",
    "worst_verdict",
    "rademacher_instance",
    "gaussian_instance",
    "references",
    "reference_metrics",
    "checkpoints",
    "run_series",
]

logger = logging.getLogger(__name__)

PROFILES = ("quick", "full")

#: Verdicts from best to worst (the order :func:`worst_verdict` uses).
VERDICT_ORDER = ("pass", "known deviation", "inconclusive", "fail")


@dataclass(frozen=True)
class Check:
    """One registered claim check.

    Attributes
    ----------
    name : str
        Unique name (used by ``--select``).
    func : callable
        ``func(profile) -> Record``.
    family : str
        The claim family (the module's topic).
    claim : str
        One line: the claim.
    source : str
        Paper and number (theory.md numbering).
    """

    name: str
    func: Callable[[str], Record]
    family: str
    claim: str
    source: str

    @property
    def doc(self) -> str:
        return (self.func.__doc__ or "").strip()


_CHECKS: dict[str, Check] = {}


def claim_check(name: str, *, family: str, claim: str, source: str,
                replace: bool = False):
    """Decorator: register ``func(profile) -> Record`` as the check ``name``."""

    def decorate(func):
        if name in _CHECKS and not replace:
            raise ValueError(f"a check named {name!r} is already registered")
        _CHECKS[name] = Check(name, func, family, claim, source)
        return func

    return decorate


def get_check(name: str) -> Check:
    try:
        return _CHECKS[name]
    except KeyError:
        raise KeyError(
            f"no check named {name!r}; registered: {', '.join(sorted(_CHECKS))}"
        ) from None


def list_checks() -> list[Check]:
    """Registered checks, in registration order (family by family)."""
    return list(_CHECKS.values())


def worst_verdict(verdicts) -> str:
    """The worst of several verdicts (``fail`` > ``inconclusive`` > ...)."""
    verdicts = list(verdicts)
    if not verdicts:
        return "inconclusive"
    return max(verdicts, key=VERDICT_ORDER.index)


def make_record(
    name: str,
    *,
    verdict: str,
    measured: dict,
    predicted: dict,
    tolerance: float | None,
    tolerance_reason: str,
    data: dict | None = None,
    settings: dict | None = None,
    notes=(),
) -> Record:
    """A check record (kind ``"check"``)."""
    return Record(
        kind="check",
        name=name,
        data=dict(data or {}),
        settings=dict(settings or {}),
        measured=dict(measured),
        predicted=dict(predicted),
        tolerance=tolerance,
        tolerance_reason=tolerance_reason,
        verdict=verdict,
        notes=list(notes),
    )


def run_check(check: Check | str, profile: str = "quick") -> Record:
    """Run one check; an exception becomes a failed record (status ``"error"``)."""
    check = get_check(check) if isinstance(check, str) else check
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not one of {PROFILES}")
    started = time.perf_counter()
    try:
        record = check.func(profile)
    except Exception as exc:  # noqa: BLE001 (a crashing check is reported, not raised)
        logger.error("check %s raised %s: %s", check.name, type(exc).__name__, exc)
        record = make_record(
            check.name,
            verdict="fail",
            measured={},
            predicted={},
            tolerance=None,
            tolerance_reason="",
            notes=[f"the check raised {type(exc).__name__}: {exc}",
                   traceback.format_exc()],
        )
        record.status = "error"
    record.measured["wall_time_s"] = round(time.perf_counter() - started, 3)
    record.settings.setdefault("profile", profile)
    record.settings.setdefault("claim", check.claim)
    record.settings.setdefault("source", check.source)
    record.settings.setdefault("family", check.family)
    return record


def run_checks(
    profile: str = "quick",
    select=None,
    progress: Callable[[int, int, Check, Record | None], None] | None = None,
) -> list[Record]:
    """Run the selected checks (all by default) and return their records.

    Parameters
    ----------
    profile : {"quick", "full"}
    select : sequence of str, optional
        Check names, or family names (every check of the family).
    progress : callable, optional
        ``progress(index, total, check, record)``: called before each check with
        ``record=None`` and after it with its record.
    """
    checks = list_checks()
    if select:
        wanted = set(select)
        unknown = wanted - {c.name for c in checks} - {c.family for c in checks}
        if unknown:
            raise KeyError(
                f"unknown check or family {sorted(unknown)}; registered checks: "
                f"{', '.join(c.name for c in checks)}"
            )
        checks = [c for c in checks if c.name in wanted or c.family in wanted]
    records = []
    for index, check in enumerate(checks):
        if progress is not None:
            progress(index, len(checks), check, None)
        record = run_check(check, profile)
        records.append(record)
        if progress is not None:
            progress(index, len(checks), check, record)
    return records


# Shared fixtures: data and references, built once per process.


@functools.cache
def rademacher_instance(n: int = 10, d: int = 8, seed: int = 14):
    """The strongly discriminating Rademacher instance (``w_2*`` not l_inf optimal)."""
    return rademacher(n, d, seed=seed)


@functools.cache
def gaussian_instance(n: int = 10, d: int = 10, seed: int = 0):
    """A Gaussian instance whose fixed-point prediction is neither l2 nor l_inf."""
    return gaussian(n, d, seed=seed)


@functools.cache
def _references_cached(key):
    return compute_references(np.frombuffer(key[0]).reshape(key[1]))


def references(Z):
    """:func:`~theorybox.references.compute_references`, cached by the data bytes."""
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    return _references_cached((Z.tobytes(), Z.shape))


def reference_metrics(Z, *, face: bool = False, extra=None):
    """A metrics function with ``w_2*``, ``gamma_2``, ``gamma_inf`` (and the face)."""
    return metrics_for(references(Z), face=face, extra=extra)


def checkpoints(first: int, last: int, per_decade: int = 4) -> np.ndarray:
    """Geometrically spaced integer steps from ``first`` to ``last``."""
    count = max(3, int(round(np.log10(last / first) * per_decade)) + 1)
    return np.unique(np.round(np.logspace(np.log10(first), np.log10(last), count))
                     .astype(np.int64))


def run_series(Z, config, steps, metrics, keys=None):
    """Run ``config`` on ``Z`` and return ``(steps, {key: series}, result)``.

    Parameters
    ----------
    Z : array
    config : RunConfig
    steps : array of int
        Checkpoints.
    metrics : callable
        As for :func:`theorybox.engine.run`.
    keys : sequence of str, optional
        Metric keys to collect (default: every scalar key).
    """
    from theorybox.engine import run

    result = run(Z, config, checkpoints=steps, metrics=metrics)
    rows = result.metrics
    if keys is None:
        keys = [k for k, v in rows[0].items() if np.ndim(v) == 0] if rows else []
    series = {k: np.array([row[k] for row in rows], dtype=np.float64) for k in keys}
    return result.steps.astype(np.float64), series, result
