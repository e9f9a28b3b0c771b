"""Make theorybox's bundled data files from scikit-learn's copies (run once).

Writes ``theorybox/data/files/iris.csv`` (setosa vs versicolor, 100 x 4) and
``theorybox/data/files/digits01.csv`` (digits 0 vs 1, 360 x 64) and logs the SHA-256
of each, which ``theorybox/data/bundled.py`` and ``PROVENANCE.md`` record. With
``--check`` it rebuilds the content in memory and compares it with the files on disk
instead of writing.

scikit-learn is needed only here, never by theorybox itself::

    python tools/make_bundled_data.py [--out DIR] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

logger = logging.getLogger("make_bundled_data")

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "theorybox" / "data" / "files"

IRIS_NAMES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]


def _number(value: float) -> str:
    """Shortest text that reads back as the same float64 (integers without '.0')."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _csv(names: list[str], X, y) -> str:
    """CSV text: header row, then one row per sample, label column ``y`` last."""
    lines = [",".join([*names, "y"])]
    for row, label in zip(X, y, strict=True):
        lines.append(",".join([*(_number(v) for v in row), str(int(label))]))
    return "\n".join(lines) + "\n"


def build() -> dict[str, str]:
    """Return ``{file name: CSV text}`` built from scikit-learn's bundled data."""
    import numpy as np
    import sklearn
    from sklearn.datasets import load_digits, load_iris

    logger.info(
        "source: scikit-learn %s, numpy %s", sklearn.__version__, np.__version__
    )

    # Iris: classes 0 (setosa) -> -1 and 1 (versicolor) -> +1, in file order.
    iris = load_iris()
    keep = iris.target < 2
    iris_y = np.where(iris.target[keep] == 0, -1, 1)
    files = {"iris.csv": _csv(IRIS_NAMES, iris.data[keep], iris_y)}

    # Digits (UCI test set, 8x8 counts 0..16): 0 -> -1 and 1 -> +1, in file order.
    digits = load_digits()
    keep = digits.target < 2
    digits_y = np.where(digits.target[keep] == 0, -1, 1)
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    files["digits01.csv"] = _csv(names, digits.data[keep], digits_y)
    return files


def main(argv: list[str] | None = None) -> int:
    """Write (or, with ``--check``, verify) the bundled CSV files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    status = 0
    for name, text in build().items():
        data = text.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        target = args.out / name
        if args.check:
            same = target.is_file() and target.read_bytes() == data
            logger.info(
                "%s: %s (sha256 %s)", target, "matches" if same else "DIFFERS", digest
            )
            status |= 0 if same else 1
        else:
            target.write_bytes(data)
            logger.info("wrote %s: %d bytes, sha256 %s", target, len(data), digest)
    return status


if __name__ == "__main__":
    sys.exit(main())
