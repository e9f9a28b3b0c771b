"""The :class:`Dataset` container and the validation every dataset passes through.

A dataset is a set of pairs ``(x_i, y_i)``, ``i = 1..N``, with ``x_i`` in ``R^d`` and
``y_i`` in ``{-1, +1}``; the theory works with ``z_i = y_i x_i`` (theory.md, section
1). Every loader and generator builds its result with :func:`make_dataset`, which
validates the arrays (:func:`validate_xy`), drops features that are zero on every
sample (:func:`drop_zero_features`) and records each such change in
``Dataset.notes``.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from theorybox.errors import InvalidDataError

__all__ = ["Dataset", "as_z", "make_dataset", "validate_xy", "drop_zero_features"]


def as_z(Z: Any) -> np.ndarray:
    """``Z`` (or a Dataset's ``Z``) as a fresh C-contiguous, finite float64 matrix.

    The one check every layer applies to signed samples ``z_i = y_i x_i``: real,
    rectangular, two-dimensional, non-empty and finite; the error names the first
    offending entry.
    """
    raw = getattr(Z, "Z", Z)
    if np.iscomplexobj(raw):
        raise InvalidDataError(
            "Z is complex; pass the real signed samples z_i = y_i x_i"
        )
    try:
        arr = np.array(raw, dtype=np.float64, copy=True, order="C")
    except (TypeError, ValueError) as exc:
        raise InvalidDataError(
            f"Z cannot be read as a rectangular float64 array ({exc}); pass the "
            "signed samples z_i = y_i x_i as an (N, d) array or a Dataset."
        ) from None
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidDataError(
            f"Z must be a non-empty 2-D array of shape (N, d), with at least one "
            f"sample and one feature, but has shape {arr.shape}; pass the signed "
            "samples as rows (one sample: Z.reshape(1, -1))."
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise InvalidDataError(
            f"Z holds {int(bad.sum())} non-finite value(s); the first is Z[{i}, {k}]"
            f" = {arr[i, k]}; remove or impute these samples."
        )
    return arr

logger = logging.getLogger(__name__)

#: How many offending indices an error message or a note lists before it abbreviates.
_MAX_LISTED = 12


def _listing(items: list[Any]) -> str:
    """Format a list for a message, abbreviated after ``_MAX_LISTED`` entries."""
    if len(items) <= _MAX_LISTED:
        return ", ".join(str(item) for item in items)
    shown = ", ".join(str(item) for item in items[:_MAX_LISTED])
    return f"{shown}, ... ({len(items)} in all)"


def _read_only(array: np.ndarray) -> np.ndarray:
    """Return a C-contiguous float64 copy of ``array`` that cannot be written to."""
    out = np.array(array, dtype=np.float64, order="C", copy=True)
    out.setflags(write=False)
    return out


def _as_float_matrix(X: Any) -> np.ndarray:
    """Convert ``X`` to a float64 array, explaining ragged or non-numeric input."""
    if (
        isinstance(X, (list, tuple))
        and X
        and all(isinstance(row, (list, tuple, np.ndarray)) for row in X)
    ):
        lengths = [len(row) for row in X]
        if len(set(lengths)) > 1:
            first = lengths[0]
            bad = [i for i, length in enumerate(lengths) if length != first]
            raise InvalidDataError(
                f"X is ragged: row 0 has {first} entries but row {bad[0]} has "
                f"{lengths[bad[0]]} (rows of another length: {_listing(bad)}); give "
                "every sample the same number of features."
            )
    try:
        return np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidDataError(
            f"X cannot be read as an array of float64 numbers ({exc}); pass a "
            "rectangular numeric array of shape (N, d)."
        ) from exc


def validate_xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check a feature matrix and its labels and return them as float64 arrays.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Features, one sample per row. Lists of lists are accepted.
    y : array_like, shape (N,)
        Labels, each exactly ``-1.0`` or ``+1.0``. Both classes need not occur:
        the theory only uses ``z_i = y_i x_i``, so one-class data such as the K17
        example are valid. Map other label values first (:func:`load_file` does it
        for files).

    Returns
    -------
    X : numpy.ndarray, shape (N, d), float64
    y : numpy.ndarray, shape (N,), float64

    Raises
    ------
    InvalidDataError
        If ``X`` is ragged, not numeric or not 2-D; if ``N == 0`` or ``d == 0``; if
        ``y`` is not 1-D or its length differs from ``N``; if ``X`` or ``y`` holds
        NaN or infinity (the message names the first offending row and column); or
        if some label is not ``-1`` or ``+1`` (the message lists the values found).
    """
    # Shape of X: rectangular, numeric, two-dimensional and non-empty.
    X = _as_float_matrix(X)
    if X.ndim != 2:
        raise InvalidDataError(
            f"X must be 2-D with shape (N, d) but has shape {X.shape}; for a single "
            "feature use X.reshape(-1, 1), for a single sample X.reshape(1, -1)."
        )
    n, d = X.shape
    if n == 0 or d == 0:
        raise InvalidDataError(
            f"X is empty (shape {X.shape}: N = {n} samples, d = {d} features); give "
            "at least one sample with at least one feature."
        )

    # Shape of y: one label per sample.
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidDataError(
            f"y cannot be read as float64 numbers ({exc}); labels must be -1 or +1 "
            "(load_file maps two arbitrary label values to -1 and +1)."
        ) from exc
    if y.ndim != 1:
        raise InvalidDataError(
            f"y must be 1-D with shape (N,) but has shape {y.shape}; pass y.ravel()."
        )
    if y.shape[0] != n:
        raise InvalidDataError(
            f"y has {y.shape[0]} labels but X has N = {n} rows; give exactly one "
            "label per sample."
        )

    # Finite values only: name the first bad entry so it can be found in the file.
    bad = ~np.isfinite(X)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise InvalidDataError(
            f"X holds {rows.size} non-finite value(s); the first is X[{rows[0]}, "
            f"{cols[0]}] = {X[rows[0], cols[0]]}; remove or impute these samples."
        )
    bad_y = ~np.isfinite(y)
    if bad_y.any():
        row = int(np.flatnonzero(bad_y)[0])
        raise InvalidDataError(
            f"y holds {int(bad_y.sum())} non-finite label(s); the first is y[{row}] "
            f"= {y[row]}; labels must be -1 or +1."
        )

    # Labels exactly -1.0 or +1.0.
    wrong = (y != 1.0) & (y != -1.0)
    if wrong.any():
        values = np.unique(y).tolist()
        raise InvalidDataError(
            f"labels must be exactly -1 or +1, but y takes the values {values} "
            f"({int(wrong.sum())} label(s) outside {{-1, +1}}, the first at row "
            f"{int(np.flatnonzero(wrong)[0])}); keep two classes and map them to -1 "
            "and +1 (load_file does this for files)."
        )
    return X, y


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled, validated, immutable binary classification dataset.

    Build one with :func:`make_dataset` (or a loader or generator), which also drops
    features that are zero on every sample and records it.

    .. math::

        z_i = y_i x_i, \\qquad Z = \\operatorname{diag}(y) X .

    Attributes
    ----------
    name : str
        Short name, e.g. ``"iris"`` or ``"gaussian"``.
    X : numpy.ndarray, shape (N, d)
        Features ``x_i`` as rows; float64, read-only.
    y : numpy.ndarray, shape (N,)
        Labels ``y_i``, each exactly ``-1.0`` or ``+1.0``; float64, read-only.
    notes : tuple of str
        What loading changed: dropped features, label mapping, intercept added,
        redraws, certificates.
    spec : dict
        JSON-serialisable recipe to rebuild the dataset, one of
        ``{"generator": name, **params}``, ``{"bundled": name}``,
        ``{"file": path, "sha256": hex, ...}`` or ``{"arrays": ...}`` for data given
        directly (not rebuildable). See :func:`theorybox.data.dataset_from_spec`.
    feature_names : tuple of str or None
        One name per column of ``X``, if known.
    provenance : str
        Where the data came from, in words.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    notes: tuple[str, ...] = ()
    spec: dict = field(default_factory=dict)
    feature_names: tuple[str, ...] | None = None
    provenance: str = ""

    def __post_init__(self) -> None:
        X, y = validate_xy(self.X, self.y)
        object.__setattr__(self, "X", _read_only(X))
        object.__setattr__(self, "y", _read_only(y))
        object.__setattr__(self, "notes", tuple(str(note) for note in self.notes))
        if self.feature_names is not None:
            names = tuple(str(name) for name in self.feature_names)
            if len(names) != X.shape[1]:
                raise InvalidDataError(
                    f"feature_names has {len(names)} entries but X has d = "
                    f"{X.shape[1]} columns; give one name per feature or None."
                )
            object.__setattr__(self, "feature_names", names)
        try:
            json.dumps(self.spec)
        except (TypeError, ValueError) as exc:
            raise InvalidDataError(
                f"spec {self.spec!r} is not JSON-serialisable ({exc}); use plain "
                "str, int, float, bool, list and dict values."
            ) from exc
        object.__setattr__(self, "spec", copy.deepcopy(dict(self.spec)))

    @cached_property
    def Z(self) -> np.ndarray:
        """The signed samples ``z_i = y_i x_i`` as rows, shape (N, d), read-only."""
        return _read_only(self.y[:, None] * self.X)

    @property
    def n(self) -> int:
        """Number of samples ``N``."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Number of features ``d``."""
        return int(self.X.shape[1])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n={self.n}, d={self.d}, "
            f"notes={len(self.notes)}, spec={self.spec!r})"
        )


def drop_zero_features(dataset: Dataset) -> Dataset:
    """Remove the features that are exactly zero on every sample.

    Such a feature carries no information and makes Adam-type preconditioners
    ``0/0`` on that coordinate (theory.md, section 3.3), so theorybox drops it. The
    removal is recorded in the new dataset's ``notes`` (indices and names) and
    logged at INFO level.

    Parameters
    ----------
    dataset : Dataset

    Returns
    -------
    Dataset
        ``dataset`` itself when nothing is dropped, else a new dataset with the
        remaining columns.

    Raises
    ------
    InvalidDataError
        If every feature is zero on every sample: nothing would remain.
    """
    zero = ~np.any(dataset.X != 0.0, axis=0)
    if not zero.any():
        return dataset
    dropped = np.flatnonzero(zero).tolist()
    if zero.all():
        raise InvalidDataError(
            f"every one of the d = {dataset.d} features of {dataset.name!r} is zero on "
            "every sample, so no feature would remain; check that the right columns "
            "were read."
        )
    names = dataset.feature_names
    if names is not None:
        dropped_names = [names[k] for k in dropped]
        kept_names: tuple[str, ...] | None = tuple(
            name for k, name in enumerate(names) if not zero[k]
        )
        what = f"indices {_listing(dropped)}; names {_listing(dropped_names)}"
    else:
        kept_names = None
        what = f"indices {_listing(dropped)}"
    note = (
        f"dropped {len(dropped)} of {dataset.d} features that are zero on every "
        f"sample ({what})"
    )
    logger.info("%s: %s", dataset.name, note)
    return Dataset(
        name=dataset.name,
        X=dataset.X[:, ~zero],
        y=dataset.y,
        notes=(*dataset.notes, note),
        spec=dataset.spec,
        feature_names=kept_names,
        provenance=dataset.provenance,
    )


def make_dataset(
    X: Any,
    y: Any,
    *,
    name: str,
    drop_zero: bool = True,
    notes: tuple[str, ...] | list[str] = (),
    spec: dict | None = None,
    feature_names: tuple[str, ...] | list[str] | None = None,
    provenance: str = "",
) -> Dataset:
    """Validate arrays and build a :class:`Dataset`: the one constructor to use.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Features, one sample per row.
    y : array_like, shape (N,)
        Labels in ``{-1, +1}``.
    name : str
        Short name of the dataset.
    drop_zero : bool, default True
        Drop the features that are zero on every sample (see
        :func:`drop_zero_features`) and record it in ``notes``.
    notes : sequence of str, optional
        Changes already made by the caller (label mapping, intercept, ...).
    spec : dict, optional
        JSON-serialisable recipe to rebuild the dataset. Defaults to
        ``{"arrays": name}``, which records that the arrays were given directly.
        ``"drop_zero": False`` is added when ``drop_zero`` is false.
    feature_names : sequence of str, optional
        One name per column of ``X``.
    provenance : str, optional
        Where the data came from, in words.

    Returns
    -------
    Dataset

    Raises
    ------
    InvalidDataError
        See :func:`validate_xy` and :func:`drop_zero_features`.
    """
    spec = {"arrays": name} if spec is None else dict(spec)
    if not drop_zero:
        spec["drop_zero"] = False
    dataset = Dataset(
        name=name,
        X=X,
        y=y,
        notes=tuple(notes),
        spec=spec,
        feature_names=None if feature_names is None else tuple(feature_names),
        provenance=provenance,
    )
    if drop_zero:
        dataset = drop_zero_features(dataset)
    return dataset
