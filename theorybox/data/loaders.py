"""Load a dataset from a CSV or ``.npz`` file.

CSV files have a header row; the label column is the one named ``y`` (or the one
given), else the last column. ``.npz`` files hold arrays ``X`` (N, d) and ``y`` (N,)
and optionally ``feature_names``. Two distinct label values are mapped to ``-1`` and
``+1`` in sorted order (numerically when every label is a number, else as text), and
the mapping is recorded in ``notes`` and logged.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from theorybox.data.dataset import Dataset, make_dataset
from theorybox.errors import InvalidDataError

__all__ = ["load_file", "parse_csv", "map_labels", "file_sha256", "SUPPORTED_SUFFIXES"]

logger = logging.getLogger(__name__)

#: File name endings :func:`load_file` understands.
SUPPORTED_SUFFIXES = (".csv", ".npz")


def file_sha256(data: bytes) -> str:
    """SHA-256 of file content, with CRLF line endings normalised to LF.

    Normalising makes the hash of a text file independent of the checkout's line
    ending convention.
    """
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def _label_key(values: list[Any]) -> list[Any]:
    """Sort label values numerically when all are numbers, else as text."""
    try:
        return sorted(values, key=float)
    except (TypeError, ValueError):
        return sorted(values, key=str)


def map_labels(labels: Any, source: str) -> tuple[np.ndarray, list[str]]:
    """Map exactly two distinct label values to ``-1`` and ``+1`` in sorted order.

    Parameters
    ----------
    labels : array_like, shape (N,)
        Label values: numbers or strings.
    source : str
        Where the labels came from, for messages.

    Returns
    -------
    y : numpy.ndarray, shape (N,), float64
        Labels in ``{-1, +1}``.
    notes : list of str
        The mapping, when it is not the identity.

    Raises
    ------
    InvalidDataError
        If the labels do not take exactly two distinct values. One value is
        accepted only when it is already ``-1`` or ``+1`` (one-class data such as
        the K17 example): nothing needs mapping then.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InvalidDataError(
            f"labels in {source} must be 1-D but have shape {labels.shape}; store y "
            "as a vector."
        )
    raw = [item.item() if hasattr(item, "item") else item for item in labels]
    numeric = [_as_number(value) for value in raw]
    if all(value is not None for value in numeric):
        raw = numeric
        bad = [value for value in numeric if not np.isfinite(value)]
        if bad:
            raise InvalidDataError(
                f"labels in {source} include {_show(bad[0])}; labels must be finite "
                "class values (remove or relabel those rows)."
            )
    distinct = _label_key(list(set(raw)))
    if len(distinct) == 1 and distinct[0] in (-1.0, 1.0):
        return np.asarray(raw, dtype=np.float64), []
    if len(distinct) != 2:
        found = ", ".join(_show(value) for value in distinct[:10])
        more = f" ({len(distinct)} in all)" if len(distinct) > 10 else ""
        raise InvalidDataError(
            f"labels in {source} take {len(distinct)} distinct value(s): "
            f"{found}{more}; theorybox needs exactly two classes. Keep the rows of "
            "two classes (or merge classes) before loading."
        )
    low, high = distinct
    y = np.where(np.asarray([value == high for value in raw]), 1.0, -1.0)
    if (low, high) == (-1.0, 1.0):
        return y, []
    note = f"labels mapped in sorted order: {_show(low)} -> -1, {_show(high)} -> +1"
    logger.info("%s: %s", source, note)
    return y, [note]


def _show(value: Any) -> str:
    """Display a label value: integral numbers without a trailing ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def _as_number(value: Any) -> float | None:
    """``float(value)`` if ``value`` reads as a number, else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_csv(
    text: str, source: str, label_column: str | int | None = None
) -> tuple[np.ndarray, list[str], list[str]]:
    """Parse CSV text with a header row into features, labels and feature names.

    Parameters
    ----------
    text : str
        The file's content.
    source : str
        Where the text came from, for messages.
    label_column : str or int, optional
        Name or 0-based index of the label column. Default: the column named
        ``y``, else the last column.

    Returns
    -------
    X : numpy.ndarray, shape (N, d), float64
    labels : list of str
        The raw label cells.
    feature_names : list of str

    Raises
    ------
    InvalidDataError
        For a missing header, a row with the wrong number of cells, or a feature
        cell that is not a number (the message names the file line, counting
        from 1, and the column). Blank lines are skipped.
    """
    reader = csv.reader(io.StringIO(text))
    numbered = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    if not numbered:
        raise InvalidDataError(
            f"{source} is empty; a CSV file needs a header row and data rows."
        )
    header = [cell.strip() for cell in numbered[0][1]]
    if all(_as_number(cell) is not None for cell in header):
        raise InvalidDataError(
            f"the first line of {source} ({','.join(header)}) looks like data, not a "
            "header; add a header row naming the columns (the label column 'y')."
        )
    if len(numbered) == 1:
        raise InvalidDataError(
            f"{source} has a header row but no data rows; add the samples below "
            "the header."
        )
    if len(header) < 2:
        raise InvalidDataError(
            f"{source} has {len(header)} column(s) in its header {header}; it needs "
            "at least one feature column and one label column."
        )

    # Which column holds the labels.
    if label_column is None:
        label_index = header.index("y") if "y" in header else len(header) - 1
    elif isinstance(label_column, str):
        if label_column not in header:
            raise InvalidDataError(
                f"label column {label_column!r} is not in the header of {source}; "
                f"the columns are {header}."
            )
        label_index = header.index(label_column)
    else:
        label_index = int(label_column)
        if not -len(header) <= label_index < len(header):
            raise InvalidDataError(
                f"label column index {label_column} is out of range for {source}, "
                f"which has {len(header)} columns."
            )
        label_index %= len(header)
    names = [name for k, name in enumerate(header) if k != label_index]

    # Data rows: the right number of cells, numeric features.
    X = np.empty((len(numbered) - 1, len(header) - 1), dtype=np.float64)
    labels = []
    for r, (line, row) in enumerate(numbered[1:]):
        if len(row) != len(header):
            raise InvalidDataError(
                f"{source}, line {line}: {len(row)} cells but the header has "
                f"{len(header)}; every row needs one cell per column."
            )
        labels.append(row[label_index].strip())
        cells = [cell for k, cell in enumerate(row) if k != label_index]
        for k, cell in enumerate(cells):
            try:
                X[r, k] = float(cell)
            except ValueError:
                raise InvalidDataError(
                    f"{source}, line {line} (data row {r}), column {names[k]!r}: "
                    f"{cell!r} is not a number; fix or remove that cell."
                ) from None
    return X, labels, names


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Read arrays ``X``, ``y`` and optional ``feature_names`` from an ``.npz``."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidDataError(
            f"{path} could not be read as an .npz archive ({exc}); save it with "
            "numpy.savez(path, X=X, y=y)."
        ) from exc
    with archive:
        missing = [key for key in ("X", "y") if key not in archive.files]
        if missing:
            raise InvalidDataError(
                f"{path} lacks the array(s) {missing}; it holds {archive.files}. Save "
                "it with numpy.savez(path, X=X, y=y)."
            )
        X, y = archive["X"], archive["y"]
        names = None
        if "feature_names" in archive.files:
            names = [str(name) for name in archive["feature_names"]]
    return X, y, names


def load_file(
    path: str | os.PathLike[str],
    intercept: bool = False,
    label_column: str | int | None = None,
) -> Dataset:
    """Load a binary classification dataset from a ``.csv`` or ``.npz`` file.

    Parameters
    ----------
    path : str or path-like
        The file. ``.csv``: header row, label column ``y`` (else the last column,
        or ``label_column``). ``.npz``: arrays ``X`` and ``y``, optionally
        ``feature_names``.
    intercept : bool, default False
        Append a constant feature ``1`` named ``"intercept"`` (a bias term for
        classifiers through the origin).
    label_column : str or int, optional
        CSV only: name or 0-based index of the label column.

    Returns
    -------
    Dataset
        With ``spec = {"file": absolute path, "sha256": ..., "intercept": ...,
        "label_column": ...}``; ``notes`` record the label mapping, the intercept
        and dropped all-zero features.

    Raises
    ------
    InvalidDataError
        If the file is missing or has an unsupported ending, if a cell is not a
        number, if the labels do not take exactly two values (the message lists
        those found), or for any problem :func:`validate_xy` detects.
    """
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidDataError(
            f"cannot load {str(path)!r}: unsupported file ending {suffix!r}; use one "
            f"of {list(SUPPORTED_SUFFIXES)}."
        )
    if not path.is_file():
        raise InvalidDataError(
            f"data file {str(path)!r} does not exist (or is not a file); check the "
            "path, or give a bundled name or a generator name instead."
        )
    content = path.read_bytes()
    source = str(path)

    # Features, raw labels and names from the file.
    if suffix == ".csv":
        if label_column is not None and not isinstance(label_column, (str, int)):
            raise InvalidDataError(
                f"label_column must be a column name or index, got {label_column!r}."
            )
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidDataError(
                f"{source} is not UTF-8 text (byte {exc.start} cannot be decoded); "
                "save the CSV as UTF-8, or store the arrays in an .npz file."
            ) from None
        X, labels, names = parse_csv(text, source, label_column)
    else:
        if label_column is not None:
            raise InvalidDataError(
                f"label_column={label_column!r} applies to CSV files only; an .npz "
                "file must hold its labels in the array 'y'."
            )
        X, labels, names = _load_npz(path)
    y, notes = map_labels(labels, source)

    # Optional constant feature.
    if intercept:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 2:
            if names is None:
                names = [f"x{k}" for k in range(X.shape[1])]
            X = np.hstack([X, np.ones((X.shape[0], 1))])
            names = [*names, "intercept"]
            notes.append("appended a constant feature 1 named 'intercept'")
            logger.info("%s: appended a constant intercept feature", source)
    digest = file_sha256(content)
    spec = {
        "file": str(path.resolve()),
        "sha256": digest,
        "intercept": bool(intercept),
        "label_column": label_column,
    }
    return make_dataset(
        X,
        y,
        name=path.stem,
        notes=notes,
        spec=spec,
        feature_names=names,
        provenance=f"file {path.resolve()} (sha256 {digest})",
    )
