"""One versioned record schema for runs, checks and sweep rows.

A record is plain data: what was measured, what was predicted, the tolerance and
why, the data and settings that produced it, and a verdict. The command line, the
JSON reports, the notebooks and the tests all read the same records.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata

import numpy as np

__all__ = ["SCHEMA_VERSION", "Record", "environment", "to_jsonable"]

SCHEMA_VERSION = 1
KINDS = ("run", "check", "sweep-row", "reference")
VERDICTS = ("pass", "fail", "inconclusive", "known deviation", None)


def environment() -> dict:
    """Versions of Python and the numeric packages a result depends on."""
    env = {"python": platform.python_version()}
    for package in ("theorybox", "numpy", "numba", "cvxpy", "clarabel", "mpmath",
                    "sympy"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            env[package] = None
    return env


def to_jsonable(value):
    """Convert numpy scalars and arrays (recursively) to JSON-able values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    return value


@dataclass
class Record:
    """A result of any kind, in the shared schema.

    Attributes
    ----------
    kind : str
        ``"run"``, ``"check"``, ``"sweep-row"`` or ``"reference"``.
    name : str
        What it is (a check's name, ``"<dataset>/<optimizer>"`` for a run).
    data : dict
        The dataset's spec (enough to rebuild it).
    settings : dict
        The configuration (a :class:`~theorybox.optimizers.RunConfig` as a dict).
    measured, predicted : dict
        Measured values, and what the theory predicts (empty when it says nothing).
    tolerance : float or None
    tolerance_reason : str
    verdict : str or None
        For checks: ``"pass"``, ``"fail"``, ``"inconclusive"``,
        ``"known deviation"``.
    status : str
        For runs: ``"ok"``, ``"stalled"``, ``"nonfinite"``, ``"error"``.
    notes : list of str
    """

    kind: str
    name: str
    data: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    measured: dict = field(default_factory=dict)
    predicted: dict = field(default_factory=dict)
    tolerance: float | None = None
    tolerance_reason: str = ""
    verdict: str | None = None
    status: str = "ok"
    notes: list = field(default_factory=list)
    environment: dict = field(default_factory=environment)
    created: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    )
    schema: int = SCHEMA_VERSION

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"record kind {self.kind!r} is not one of {KINDS}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")

    def to_dict(self) -> dict:
        return to_jsonable(asdict(self))

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        if data.get("schema") != SCHEMA_VERSION:
            raise ValueError(
                f"record schema {data.get('schema')!r} is not {SCHEMA_VERSION}; "
                "this theorybox cannot read it"
            )
        return cls(**data)
