"""Real datasets shipped with theorybox, loaded offline.

``iris``
    Fisher's Iris data, setosa (``-1``) vs versicolor (``+1``): 100 samples, 4
    features (cm). Separable through the origin.
``digits01``
    UCI optical recognition of handwritten digits (8x8 block counts 0..16, the test
    set as copied in scikit-learn), digit 0 (``-1``) vs digit 1 (``+1``): 360
    samples, 64 pixels, of which the columns that are zero on every sample are
    dropped (and reported in ``notes``).

The files live in ``theorybox/data/files/``; ``PROVENANCE.md`` there gives sources,
citations, licence (CC BY 4.0) and how ``tools/make_bundled_data.py`` made them.
Each file's SHA-256 is checked on every load.
"""

from __future__ import annotations

import logging
from importlib import resources

from theorybox.data.dataset import Dataset, make_dataset
from theorybox.data.loaders import file_sha256, map_labels, parse_csv
from theorybox.errors import InvalidDataError, InvalidParameterError

__all__ = ["BUNDLED", "load_bundled", "bundled_sha256"]

logger = logging.getLogger(__name__)

#: Names accepted by :func:`load_bundled`.
BUNDLED = ("iris", "digits01")

_FILES = {"iris": "iris.csv", "digits01": "digits01.csv"}

#: SHA-256 of each file (LF line endings), as recorded in PROVENANCE.md.
_SHA256 = {
    "iris.csv": "a842de034ac5479d83eb054f9a18d431060749988c28548a33a22119f45b2e92",
    "digits01.csv": "67c5d64965f4ca05c3906d375c34860eb1e54452dfcfd57dde809f3b3bc186dc",
}

_PROVENANCE = {
    "iris": (
        "Iris (R. A. Fisher, 1936; UCI Machine Learning Repository, "
        "doi:10.24432/C56C76, CC BY 4.0), classes setosa (-1) and versicolor (+1), "
        "from scikit-learn's copy; bundled file theorybox/data/files/iris.csv"
    ),
    "digits01": (
        "Optical Recognition of Handwritten Digits (E. Alpaydin, C. Kaynak, 1998; "
        "UCI Machine Learning Repository, doi:10.24432/C50P49, CC BY 4.0), test "
        "set as copied in scikit-learn, digits 0 (-1) and 1 (+1); bundled file "
        "theorybox/data/files/digits01.csv"
    ),
}


def _read(file_name: str) -> bytes:
    """Read a bundled file's bytes through importlib.resources."""
    return resources.files("theorybox.data").joinpath("files", file_name).read_bytes()


def bundled_sha256(name: str) -> str:
    """The recorded SHA-256 of the file behind bundled dataset ``name``."""
    return _SHA256[_FILES[_check_name(name)]]


def _check_name(name: str) -> str:
    """Return ``name`` if it is a bundled dataset, else raise."""
    if name not in _FILES:
        raise InvalidParameterError(
            f"{name!r} is not a bundled dataset; the bundled ones are {list(BUNDLED)}."
        )
    return name


def load_bundled(name: str) -> Dataset:
    """Load a bundled real dataset.

    Parameters
    ----------
    name : {"iris", "digits01"}

    Returns
    -------
    Dataset
        With ``spec = {"bundled": name}``, feature names from the file header and
        a ``provenance`` naming the source, citation and licence.

    Raises
    ------
    InvalidParameterError
        If ``name`` is not in :data:`BUNDLED`.
    InvalidDataError
        If the file's SHA-256 differs from the recorded one (a damaged
        installation: reinstall theorybox).
    """
    file_name = _FILES[_check_name(name)]
    content = _read(file_name)

    # Integrity first: the data must be the data PROVENANCE.md describes.
    digest = file_sha256(content)
    if digest != _SHA256[file_name]:
        raise InvalidDataError(
            f"bundled file {file_name} has sha256 {digest}, not the recorded "
            f"{_SHA256[file_name]}; the installation is damaged: reinstall theorybox "
            "or rerun tools/make_bundled_data.py."
        )

    # Parse; the files already hold labels -1/+1 in the column y.
    source = f"bundled {file_name}"
    X, labels, names = parse_csv(content.decode("utf-8"), source, "y")
    y, notes = map_labels(labels, source)
    logger.debug("loaded %s: %d x %d", source, X.shape[0], X.shape[1])
    return make_dataset(
        X,
        y,
        name=name,
        notes=notes,
        spec={"bundled": name},
        feature_names=names,
        provenance=f"{_PROVENANCE[name]} (sha256 {digest})",
    )
