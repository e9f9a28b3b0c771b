"""The data layer: validated datasets, generators, bundled data, file loaders.

Everything returns a :class:`Dataset` built by :func:`make_dataset`, which validates
the arrays and drops features that are zero on every sample (recorded in
``Dataset.notes``). :func:`load_dataset` resolves a bundled name, a generator name
or a file path; :func:`dataset_from_spec` rebuilds a dataset from its ``spec``.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from theorybox.data.bundled import BUNDLED, load_bundled
from theorybox.data.dataset import (
    Dataset,
    as_z,
    drop_zero_features,
    make_dataset,
    validate_xy,
)
from theorybox.data.generators import (
    GENERATORS,
    gaussian,
    k17,
    rademacher,
    shifted_diagonal,
    with_margin,
)
from theorybox.data.loaders import SUPPORTED_SUFFIXES, load_file
from theorybox.data.separability import (
    SeparabilityResult,
    check_separable,
    separability_tolerance,
)
from theorybox.errors import InvalidDataError, InvalidParameterError

__all__ = [
    "Dataset",
    "make_dataset",
    "validate_xy",
    "as_z",
    "drop_zero_features",
    "SeparabilityResult",
    "check_separable",
    "separability_tolerance",
    "GENERATORS",
    "gaussian",
    "rademacher",
    "shifted_diagonal",
    "with_margin",
    "k17",
    "BUNDLED",
    "load_bundled",
    "load_file",
    "load_dataset",
    "dataset_from_spec",
]


def _call_generator(name: str, params: dict[str, Any]) -> Dataset:
    """Call generator ``name`` after checking the parameter names."""
    function = GENERATORS[name]
    accepted = list(inspect.signature(function).parameters)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InvalidParameterError(
            f"generator {name!r} does not take {unknown}; its parameters are "
            f"{accepted}."
        )
    return function(**params)


def load_dataset(name_or_path: str | os.PathLike[str], **params: Any) -> Dataset:
    """Load a bundled dataset, run a generator, or read a file.

    Parameters
    ----------
    name_or_path : str or path-like
        A bundled name (:data:`BUNDLED`), a generator name (:data:`GENERATORS`), or
        the path of a ``.csv`` or ``.npz`` file.
    **params
        Generator parameters (e.g. ``n=10, d=50, seed=0``), or :func:`load_file`
        options (``intercept``, ``label_column``). Bundled datasets take none.

    Returns
    -------
    Dataset

    Raises
    ------
    InvalidParameterError
        For an unknown name, or parameters the target does not take.
    InvalidDataError
        For a missing or malformed file.
    """
    if isinstance(name_or_path, str) and name_or_path in BUNDLED:
        if params:
            raise InvalidParameterError(
                f"bundled dataset {name_or_path!r} takes no parameters, got "
                f"{sorted(params)}; call load_dataset({name_or_path!r})."
            )
        return load_bundled(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in GENERATORS:
        return _call_generator(name_or_path, params)
    path = Path(name_or_path)
    looks_like_path = (
        not isinstance(name_or_path, str)
        or path.suffix != ""
        or os.sep in name_or_path
        or path.exists()
    )
    if not looks_like_path:
        raise InvalidParameterError(
            f"unknown dataset {str(name_or_path)!r}: not a bundled name "
            f"{list(BUNDLED)}, not a generator {sorted(GENERATORS)}, and not a file "
            f"path (files end in {list(SUPPORTED_SUFFIXES)})."
        )
    unknown = sorted(set(params) - {"intercept", "label_column"})
    if unknown:
        raise InvalidParameterError(
            f"load_file does not take {unknown}; its options are intercept and "
            "label_column."
        )
    return load_file(path, **params)


def dataset_from_spec(spec: dict[str, Any]) -> Dataset:
    """Rebuild a dataset from its ``spec``.

    Parameters
    ----------
    spec : dict
        ``{"generator": name, **params}``, ``{"bundled": name}``, or ``{"file":
        path, "sha256": hex, "intercept": bool, "label_column": ...}``.

    Returns
    -------
    Dataset

    Raises
    ------
    InvalidParameterError
        For a spec of data given directly as arrays (nothing to rebuild from), or
        one of unknown form.
    InvalidDataError
        When a file's SHA-256 no longer matches the spec.
    """
    spec = dict(spec)
    if "generator" in spec:
        name = spec.pop("generator")
        if name not in GENERATORS:
            raise InvalidParameterError(
                f"unknown generator {name!r} in spec; known: {sorted(GENERATORS)}."
            )
        return _call_generator(name, spec)
    if "bundled" in spec:
        return load_bundled(spec["bundled"])
    if "file" in spec:
        dataset = load_file(
            spec["file"],
            intercept=bool(spec.get("intercept", False)),
            label_column=spec.get("label_column"),
        )
        expected = spec.get("sha256")
        if expected is not None and dataset.spec["sha256"] != expected:
            raise InvalidDataError(
                f"{spec['file']} has changed: sha256 {dataset.spec['sha256']}, the "
                f"spec records {expected}; restore the file or drop 'sha256' from "
                "the spec to accept the new content."
            )
        return dataset
    raise InvalidParameterError(
        f"spec {spec!r} cannot be rebuilt: it needs a 'generator', 'bundled' or "
        "'file' key (data given directly as arrays are not stored)."
    )
