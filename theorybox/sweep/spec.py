"""Sweep specifications: a TOML file, validated, expanded into cells.

A sweep is the product of datasets, optimizers (each with its own grid of
hyperparameters, batchings and schedules), seeds and horizons. Each point of the
product is a :class:`Cell`, a plain description of one run with a stable id: the
SHA-256 of its canonical JSON, so that a resumed sweep recognises the cells it has
already finished even when the file has been reordered or extended.

Every value is checked when the file is read, and an error names the TOML key
and the fix. Seeds are always explicit (cases.md K16): a sweep without ``seeds``
is refused, and two cells with the same configuration are refused by name, since
a task scheduler that caches by argument hash would run them once.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import itertools
import json
import math
import numbers
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from theorybox.engine.run import is_time_limit
from theorybox.errors import InvalidParameterError

__all__ = [
    "CELL_SCHEMA",
    "Cell",
    "DatasetEntry",
    "SweepSpec",
    "SweepSpecError",
    "expand",
    "load_spec",
    "parse_spec",
]

#: Version of the canonical cell description hashed into a cell id. Bump it when
#: the meaning of a cell changes, so that old results are not mistaken for new.
CELL_SCHEMA = 1

#: Keys of an ``[[optimizers]]`` entry that are not hyperparameters.
_OPTIMIZER_KEYS = ("name", "batching", "batch_size", "eta0", "t0", "a", "steps",
                   "loss")

#: Test-only keys of an ``[[optimizers]]`` entry (see :func:`parse_spec`).
_TEST_KEYS = ("_test_allocate_mb", "_test_raise")

#: Exceptions a ``_test_raise`` cell may raise.
TEST_RAISES = ("MemoryError", "RuntimeError")

_SWEEP_KEYS = ("name", "seeds", "steps", "loss", "eta0", "t0", "a", "time_limit_s")
_DATASET_KEYS = ("name", "path", "params", "label", "intercept")


class SweepSpecError(InvalidParameterError):
    """A sweep file is malformed; the message names the key and the fix."""


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of a sweep.

    Attributes
    ----------
    label : str
        Short name used in tables, e.g. ``"gaussian(n=10,d=20,seed=0)"``.
    source : str
        A bundled or generator name, or an absolute file path.
    params : dict
        Generator parameters, or file options (``intercept``).
    """

    label: str
    source: str
    params: dict = field(default_factory=dict)

    def canonical(self) -> dict:
        """The JSON-able description hashed into cell ids."""
        return {"source": self.source, "params": dict(sorted(self.params.items()))}


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: a dataset and a complete run configuration.

    Attributes
    ----------
    dataset : DatasetEntry
    config : dict
        A :class:`~theorybox.optimizers.RunConfig` as a dict (``to_dict``), with
        the optimizer's defaults filled in.
    test : dict
        Test-only options (``_test_allocate_mb``, ``_test_raise``); empty in real
        sweeps.
    where : str
        Which entries of the file produced the cell, for messages.
    time_limit : float or None
        Wall-clock seconds for the cell's run (``[sweep] time_limit_s``). Not part
        of the cell's id: it bounds the work, it does not change the numbers.
    """

    dataset: DatasetEntry
    config: dict
    test: dict = field(default_factory=dict)
    where: str = ""
    time_limit: float | None = None

    def canonical(self) -> dict:
        """Everything that determines the cell's result, as plain data."""
        out = {
            "cell_schema": CELL_SCHEMA,
            "dataset": self.dataset.canonical(),
            "config": self.config,
        }
        if self.test:
            out["test"] = dict(sorted(self.test.items()))
        return out

    @cached_property
    def id(self) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """``dataset/optimizer key=value ... seed=s steps=T`` for messages."""
        hyper = " ".join(f"{k}={v}" for k, v in self.config["hyper"].items())
        batching = self.config["batching"]
        schedule = self.config["schedule"]
        parts = [
            f"{self.dataset.label}/{self.config['optimizer']}",
            hyper,
            f"batching={batching['scheme']}"
            + (f":{batching['batch_size']}" if batching["batch_size"] else ""),
            f"eta0={schedule['eta0']} t0={schedule['t0']} a={schedule['a']}",
            f"seed={self.config['seed']} steps={self.config['steps']}",
        ]
        return " ".join(p for p in parts if p)

    def to_dict(self) -> dict:
        """The cell as plain data (what travels to a worker)."""
        return {
            "id": self.id,
            "label": self.label,
            "dataset": {
                "label": self.dataset.label,
                "source": self.dataset.source,
                "params": dict(self.dataset.params),
            },
            "config": copy.deepcopy(self.config),
            "test": dict(self.test),
            "time_limit": self.time_limit,
        }


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep file.

    Attributes
    ----------
    name : str
    cells : tuple of Cell
        The expanded grid, in file order.
    source : str
        Where the spec came from (a path, or ``"<dict>"``).
    """

    name: str
    cells: tuple
    source: str = "<dict>"

    @property
    def ids(self) -> list[str]:
        return [cell.id for cell in self.cells]


# Small validators. Each raises SweepSpecError naming ``key``.


def _fail(key: str, message: str) -> SweepSpecError:
    return SweepSpecError(f"sweep key {key}: {message}")


def _as_list(value: Any) -> list:
    """A scalar as a one-element list; lists as they are."""
    return list(value) if isinstance(value, list) else [value]


def _check_table(table: Any, key: str, allowed: tuple, extra_ok=None) -> dict:
    if not isinstance(table, dict):
        raise _fail(key, f"must be a table, got {type(table).__name__} {table!r}")
    unknown = [
        k for k in table if k not in allowed and not (extra_ok and extra_ok(k))
    ]
    if unknown:
        raise _fail(
            f"{key}.{unknown[0]}",
            f"unknown key; the keys allowed here are {', '.join(allowed)}",
        )
    return table


def _ints(value: Any, key: str, minimum: int) -> list[int]:
    values = _as_list(value)
    if not values:
        raise _fail(key, "is an empty list; give at least one value")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise _fail(
                key, f"value {v!r} must be an integer >= {minimum}"
            )
    return values


def _reals(value: Any, key: str) -> list[float]:
    values = _as_list(value)
    if not values:
        raise _fail(key, "is an empty list; give at least one value")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (
            math.isfinite(v)
        ):
            raise _fail(key, f"value {v!r} must be a finite number")
    return values


def _strings(value: Any, key: str) -> list[str]:
    values = _as_list(value)
    if not values:
        raise _fail(key, "is an empty list; give at least one value")
    for v in values:
        if not isinstance(v, str):
            raise _fail(key, f"value {v!r} must be a string")
    return values


def _short(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


# Datasets.


def _parse_datasets(raw: Any, base: Path | None) -> list[DatasetEntry]:
    from theorybox.data import BUNDLED, GENERATORS

    if not isinstance(raw, list) or not raw:
        raise _fail(
            "datasets",
            "is missing or empty; add at least one [[datasets]] table, e.g. "
            '[[datasets]] name = "iris"',
        )
    entries = []
    for i, table in enumerate(raw):
        key = f"datasets[{i}]"
        table = _check_table(table, key, _DATASET_KEYS)
        if ("name" in table) == ("path" in table):
            raise _fail(
                key,
                "give exactly one of name (a bundled dataset or generator) or "
                "path (a .csv or .npz file)",
            )
        params = _check_table(table.get("params", {}), f"{key}.params", (),
                              extra_ok=lambda k: True)

        # A bundled name, a generator (whose parameter lists expand), or a file.
        if "name" in table:
            name = table["name"]
            if name in BUNDLED:
                if params:
                    raise _fail(
                        f"{key}.params",
                        f"bundled dataset {name!r} takes no parameters; remove "
                        "params",
                    )
                grids = [{}]
            elif name in GENERATORS:
                accepted = list(inspect.signature(GENERATORS[name]).parameters)
                for p in params:
                    if p not in accepted:
                        raise _fail(
                            f"{key}.params.{p}",
                            f"generator {name!r} does not take {p!r}; its "
                            f"parameters are {', '.join(accepted)}",
                        )
                names = sorted(params)
                values = [_as_list(params[p]) for p in names]
                for p, v in zip(names, values, strict=True):
                    if not v:
                        raise _fail(f"{key}.params.{p}", "is an empty list")
                grids = [dict(zip(names, combo, strict=True))
                         for combo in itertools.product(*values)]
            else:
                raise _fail(
                    f"{key}.name",
                    f"unknown dataset {name!r}; use a bundled name "
                    f"({', '.join(BUNDLED)}), a generator "
                    f"({', '.join(sorted(GENERATORS))}), or path = \"file.csv\"",
                )
            source = name
        else:
            if params:
                raise _fail(f"{key}.params", "files take no params; use intercept")
            path = Path(table["path"]).expanduser()
            if not path.is_absolute() and base is not None:
                path = base / path
            if not path.exists():
                raise _fail(f"{key}.path", f"file {str(path)!r} does not exist")
            source = str(path.resolve())
            grids = [{"intercept": bool(table.get("intercept", False))}]
        if "intercept" in table and "path" not in table:
            raise _fail(f"{key}.intercept", "applies only to path = ... datasets")

        # One entry per point of the parameter grid.
        for grid in grids:
            label = table.get("label")
            shown = ",".join(f"{k}={_short(v)}" for k, v in grid.items())
            if label is None:
                base_name = table.get("name") or Path(source).stem
                label = f"{base_name}({shown})" if shown else base_name
            elif len(grids) > 1:
                label = f"{label}({shown})"
            entries.append(DatasetEntry(label=str(label), source=source,
                                        params=grid))
    return entries


# Optimizers.


def _parse_optimizer(table: Any, i: int, defaults: dict) -> list[tuple[dict, dict]]:
    """The (config, test) pairs of one ``[[optimizers]]`` entry, seeds not set."""
    from theorybox.optimizers import Batching, RunConfig, Schedule, get_optimizer

    key = f"optimizers[{i}]"
    if not isinstance(table, dict):
        raise _fail(key, f"must be a table, got {table!r}")
    if "name" not in table:
        raise _fail(f"{key}.name", 'is missing; e.g. name = "adam"')
    try:
        spec = get_optimizer(table["name"])
    except InvalidParameterError as exc:
        raise _fail(f"{key}.name", str(exc)) from None
    allowed = _OPTIMIZER_KEYS + _TEST_KEYS + tuple(spec.hyper)
    _check_table(table, key, allowed)

    # Grids of hyperparameters, batching, schedule, horizon and loss.
    hyper_names = [k for k in spec.hyper if k in table]
    hyper_grid = [_reals(table[k], f"{key}.{k}") for k in hyper_names]
    schemes = [None]
    if "batching" in table:
        schemes = _strings(table["batching"], f"{key}.batching")
    sizes = _ints(table["batch_size"], f"{key}.batch_size", 1) \
        if "batch_size" in table else [None]
    eta0s = _reals(table.get("eta0", defaults["eta0"]), f"{key}.eta0")
    t0s = _reals(table.get("t0", defaults["t0"]), f"{key}.t0")
    exps = _reals(table.get("a", defaults["a"]), f"{key}.a")
    steps = _ints(table.get("steps", defaults["steps"]), f"{key}.steps", 1)
    losses = _strings(table.get("loss", defaults["loss"]), f"{key}.loss")

    # Test-only options.
    test = {}
    if "_test_allocate_mb" in table:
        test["allocate_mb"] = _ints(table["_test_allocate_mb"],
                                    f"{key}._test_allocate_mb", 1)[0]
    if "_test_raise" in table:
        kind = table["_test_raise"]
        if kind not in TEST_RAISES:
            raise _fail(f"{key}._test_raise", f"must be one of {TEST_RAISES}")
        test["raise"] = kind

    # Build every configuration; RunConfig checks the values.
    out = []
    for combo in itertools.product(schemes, sizes, eta0s, t0s, exps, steps, losses,
                                   *hyper_grid):
        scheme, size, eta0, t0, a, horizon, loss, *values = combo
        hyper = dict(zip(hyper_names, values, strict=True))
        where = f"{key} ({spec.name}" + "".join(
            f", {k}={v}" for k, v in hyper.items()) + ")"
        try:
            if scheme is None and size is not None:
                if spec.scheme == "full":
                    raise _fail(
                        f"{key}.batch_size",
                        f"{spec.name!r} is full-batch by default; add batching = "
                        '"cyclic", "reshuffle" or "replacement" to use mini-batches',
                    )
                scheme = spec.scheme
            batching = None if scheme is None else Batching(scheme, size)
            config = RunConfig(
                optimizer=spec.name,
                steps=horizon,
                hyper=hyper,
                batching=batching,
                schedule=Schedule(eta0, t0, a),
                loss=loss,
                seed=0,
            )
        except SweepSpecError:
            raise
        except InvalidParameterError as exc:
            raise _fail(where, f"{exc}") from None
        out.append((config.to_dict(), test))
    return out


# The whole file.


def parse_spec(data: dict, *, source: str = "<dict>",
               base: Path | None = None) -> SweepSpec:
    """Validate a sweep given as a dict (a parsed TOML document) and expand it.

    Parameters
    ----------
    data : dict
        ``{"sweep": {...}, "datasets": [...], "optimizers": [...]}``; see
        ``docs/sweeps.md`` for the format.
    source : str
        Where ``data`` came from, for messages.
    base : Path, optional
        Directory against which relative dataset paths are resolved.

    Returns
    -------
    SweepSpec

    Raises
    ------
    SweepSpecError
        Naming the offending key and the fix: unknown keys, bad values, missing
        seeds, or two cells with the same configuration.

    Notes
    -----
    ``_test_allocate_mb`` and ``_test_raise`` in an ``[[optimizers]]`` table are
    **test-only**: the cell allocates that many MiB before running, or raises
    that exception. They exist to exercise failure recording and are part of the
    cell id.
    """
    if not isinstance(data, dict):
        raise SweepSpecError(f"{source}: a sweep must be a TOML table")
    _check_table(data, "(top level)", ("sweep", "datasets", "optimizers"))
    sweep = _check_table(data.get("sweep", {}), "sweep", _SWEEP_KEYS)

    # Seeds are explicit (K16): an unseeded repeat would hash to one task.
    if "seeds" not in sweep:
        raise _fail(
            "sweep.seeds",
            "is missing; every cell needs an explicit seed (runs with equal "
            "settings and no seed would be one cached task, not several runs). Add "
            "e.g. seeds = [0, 1, 2, 3] to [sweep]",
        )
    seeds = _ints(sweep["seeds"], "sweep.seeds", 0)
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise _fail(
            "sweep.seeds",
            f"seed(s) {repeated} appear more than once; repeats with one seed are "
            "the same run. Give distinct seeds, e.g. seeds = "
            f"{list(range(len(seeds)))}",
        )
    defaults = {
        "steps": sweep.get("steps", 1000),
        "loss": sweep.get("loss", "logistic"),
        "eta0": sweep.get("eta0", 0.1),
        "t0": sweep.get("t0", 1.0),
        "a": sweep.get("a", 0.5),
    }
    time_limit = sweep.get("time_limit_s")
    if time_limit is not None and not is_time_limit(time_limit):
        raise _fail(
            "sweep.time_limit_s",
            f"must be a positive number of seconds, got {time_limit!r} (e.g. "
            "time_limit_s = 3600; leave it out for no limit)",
        )
    name = sweep.get("name", Path(source).stem if source != "<dict>" else "sweep")
    if not isinstance(name, str) or not name:
        raise _fail("sweep.name", f"must be a non-empty string, got {name!r}")

    datasets = _parse_datasets(data.get("datasets"), base)
    optimizers = data.get("optimizers")
    if not isinstance(optimizers, list) or not optimizers:
        raise _fail(
            "optimizers",
            "is missing or empty; add at least one [[optimizers]] table, e.g. "
            '[[optimizers]] name = "adam"',
        )
    configs = []
    for i, table in enumerate(optimizers):
        configs.extend((i, c, t) for c, t in _parse_optimizer(table, i, defaults))

    # The product, seeds innermost.
    cells = []
    for dataset in datasets:
        for i, config, test in configs:
            for seed in seeds:
                config = dict(config, seed=int(seed))
                cells.append(Cell(dataset=dataset, config=config, test=test,
                                  where=f"datasets {dataset.label!r} x "
                                        f"optimizers[{i}] x seed {seed}",
                                  time_limit=time_limit))
    spec = SweepSpec(name=name, cells=tuple(cells), source=source)
    check_distinct(spec.cells)
    return spec


def check_distinct(cells) -> None:
    """Refuse two cells with one configuration, naming them (cases.md K16).

    Raises
    ------
    SweepSpecError
    """
    seen: dict[str, Cell] = {}
    for cell in cells:
        first = seen.get(cell.id)
        seen.setdefault(cell.id, cell)
        if first is not None:
            raise SweepSpecError(
                f"cells {first.where} and {cell.where} have the same configuration "
                f"({cell.label}, id {cell.id}); they would be one cached task, not "
                "two runs. Remove the duplicate grid value or give the repeats "
                "distinct seeds in sweep.seeds"
            )


def load_spec(path: str | Path) -> SweepSpec:
    """Read, validate and expand a sweep TOML file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    SweepSpec

    Raises
    ------
    SweepSpecError
        For TOML syntax errors and every validation failure of
        :func:`parse_spec`.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SweepSpecError(f"{path}: not valid TOML ({exc})") from None
    return parse_spec(data, source=str(path), base=path.parent)


def expand(spec: SweepSpec | dict) -> list[Cell]:
    """The cells of a sweep (parsing it first when given a dict)."""
    if isinstance(spec, dict):
        spec = parse_spec(spec)
    return list(spec.cells)
