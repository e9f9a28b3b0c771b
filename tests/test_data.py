"""Tests of the data layer: datasets, validation, separability, generators, files."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import cvxpy as cp
import numpy as np
import pytest
from scipy.optimize import linprog

import theorybox.data as tbd
from theorybox.data import (
    BUNDLED,
    GENERATORS,
    Dataset,
    check_separable,
    dataset_from_spec,
    drop_zero_features,
    load_bundled,
    load_dataset,
    load_file,
    make_dataset,
    validate_xy,
)
from theorybox.data.bundled import _SHA256
from theorybox.data.loaders import file_sha256
from theorybox.errors import InvalidDataError, InvalidParameterError, NotSeparableError

EPS = float(np.finfo(np.float64).eps)
FILES = Path(tbd.__file__).parent / "files"

#: Small arguments per generator, so the whole file stays fast.
GENERATOR_ARGS = {
    "gaussian": {"n": 10, "d": 50},
    "rademacher": {"n": 10, "d": 8},
    "shifted_diagonal": {"n": 6, "d": 4, "shift": 0.5, "jitter": 0.1},
    "with_margin": {"n": 12, "d": 4, "margin": 0.3},
}


def l2_max_margin(Z: np.ndarray) -> tuple[np.ndarray, float]:
    """Independent reference: hard SVM through the origin by Clarabel."""
    w = cp.Variable(Z.shape[1])
    problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(w)), [Z @ w >= 1.0])
    problem.solve(solver="CLARABEL")
    assert problem.status == cp.OPTIMAL
    return w.value, 1.0 / np.linalg.norm(w.value)


def linf_max_margin(Z: np.ndarray) -> float:
    """Independent reference: the l_inf max margin by HiGHS."""
    n, d = Z.shape
    res = linprog(
        np.r_[np.zeros(d), -1.0],
        A_ub=np.hstack([-Z, np.ones((n, 1))]),
        b_ub=np.zeros(n),
        bounds=[(-1, 1)] * d + [(None, None)],
        method="highs",
    )
    assert res.status == 0
    return -res.fun


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("X", "y", "pattern"),
    [
        (np.empty((0, 3)), np.empty(0), r"X is empty .*N = 0"),
        (np.empty((3, 0)), np.ones(3), r"X is empty .*d = 0"),
        ([[1.0, 2.0], [3.0]], [1, -1], r"ragged: row 0 has 2 .* row 1 has 1"),
        ([[1.0, 2.0], [np.nan, 1.0]], [1, -1], r"X\[1, 0\] = nan"),
        ([[1.0, np.inf], [0.0, 1.0]], [1, -1], r"X\[0, 1\] = inf"),
        ([[1.0, 2.0], [3.0, 4.0]], [1, -1, 1], r"y has 3 labels but X has N = 2"),
        ([[1.0], [2.0], [3.0]], [-1, 1, 2], r"values \[-1.0, 1.0, 2.0\]"),
        ([[1.0], [2.0]], [0, 1], r"values \[0.0, 1.0\]"),
        ([1.0, 2.0], [1, -1], r"must be 2-D .*reshape"),
        ([[1.0], [2.0]], [[1], [-1]], r"y must be 1-D .*ravel"),
        ([[1.0], [2.0]], [1.0, np.nan], r"y\[1\] = nan"),
        ([["a"], ["b"]], [1, -1], r"cannot be read as an array of float64"),
    ],
    ids=[
        "no-samples",
        "no-features",
        "ragged",
        "nan",
        "inf",
        "y-length",
        "three-labels",
        "zero-one-labels",
        "1d-X",
        "2d-y",
        "nan-label",
        "text",
    ],
)
def test_validate_xy_rejects_bad_input(X, y, pattern):
    with pytest.raises(InvalidDataError, match=pattern):
        validate_xy(X, y)
    with pytest.raises(InvalidDataError):
        make_dataset(X, y, name="bad")


def test_validate_xy_returns_float64_and_accepts_one_class():
    X, y = validate_xy([[1, 0, 0], [0, 1, 0]], [1, 1])
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert X.shape == (2, 3) and y.tolist() == [1.0, 1.0]


def test_dataset_is_immutable_and_exposes_z():
    ds = make_dataset([[1.0, 2.0], [3.0, -4.0]], [1, -1], name="tiny")
    assert ds.n == 2 and ds.d == 2
    np.testing.assert_array_equal(ds.Z, [[1.0, 2.0], [-3.0, 4.0]])
    for array in (ds.X, ds.y, ds.Z):
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0] = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"
    assert ds.spec == {"arrays": "tiny"}
    json.dumps(ds.spec)


def test_dataset_rejects_bad_feature_names_and_spec():
    with pytest.raises(InvalidDataError, match="feature_names has 1 entries"):
        make_dataset([[1.0, 2.0]], [1], name="t", feature_names=["a"])
    with pytest.raises(InvalidDataError, match="not JSON-serialisable"):
        make_dataset([[1.0]], [1], name="t", spec={"bad": object()})


def test_drop_zero_features_is_recorded_and_logged(caplog):
    X = [[0.0, 1.0, 0.0, 2.0], [0.0, -1.0, 0.0, 3.0]]
    with caplog.at_level(logging.INFO, logger="theorybox.data"):
        ds = make_dataset(X, [1, -1], name="z", feature_names=["a", "b", "c", "d"])
    assert ds.d == 2 and ds.feature_names == ("b", "d")
    np.testing.assert_array_equal(ds.X, [[1.0, 2.0], [-1.0, 3.0]])
    assert len(ds.notes) == 1
    assert "indices 0, 2" in ds.notes[0] and "names a, c" in ds.notes[0]
    assert any("dropped 2 of 4 features" in r.getMessage() for r in caplog.records)

    # Opting out keeps the columns; dropping later still works and records it.
    kept = make_dataset(X, [1, -1], name="z", drop_zero=False)
    assert kept.d == 4 and kept.notes == () and kept.spec["drop_zero"] is False
    dropped = drop_zero_features(kept)
    assert dropped.d == 2 and "indices 0, 2" in dropped.notes[-1]
    assert drop_zero_features(dropped) is dropped


def test_all_zero_features_is_an_error():
    with pytest.raises(InvalidDataError, match="no feature would remain"):
        make_dataset(np.zeros((3, 2)), [1, -1, 1], name="zeros")


# ---------------------------------------------------------------- separability


@pytest.mark.parametrize(
    ("Z", "slack"),
    [
        (np.array([[1.0, 0.0], [-1.0, 0.0]]), 2.0),  # x1 = x2, opposite labels
        (np.array([[1.0, 1.0], [-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0]]), 4.0),  # XOR
        (np.array([[0.0, 0.0], [1.0, 2.0]]), 1.0),  # a zero sample
    ],
    ids=["duplicate-opposite", "xor", "zero-sample"],
)
def test_k9_not_separable(Z, slack):
    with pytest.raises(NotSeparableError, match="not linearly separable") as info:
        check_separable(Z)
    err = info.value
    assert abs(err.best_margin) <= 1e-12
    assert err.hinge_slack > 0
    assert err.hinge_slack == pytest.approx(slack, rel=1e-9)
    assert "To fix" in str(err) and "violating" in str(err)


def test_k9_from_labels_and_features():
    """The K9 inputs as (x, y): duplicates with opposite labels, and XOR."""
    dup = make_dataset([[1.0, 0.0], [1.0, 0.0]], [1, -1], name="dup")
    grid = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    xor = make_dataset(grid, grid[:, 0] * grid[:, 1], name="xor")
    for ds in (dup, xor):
        with pytest.raises(NotSeparableError, match="z_i = -z_j") as info:
            check_separable(ds)
        assert info.value.best_margin == 0.0


def test_check_separable_certificate_and_scale_invariance():
    Z = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    result = check_separable(Z)
    assert np.max(np.abs(result.w)) == 1.0
    assert result.margin == np.min(Z @ result.w)
    assert result.margin > result.tolerance > 0
    assert result.margin == pytest.approx(linf_max_margin(Z), rel=1e-9)
    assert result.status == 0 and "highs" in result.solver
    for factor in (1e6, 1e-6):
        scaled = check_separable(factor * Z)
        assert scaled.margin == pytest.approx(factor * result.margin, rel=1e-9)
        assert scaled.tolerance == pytest.approx(factor * result.tolerance, rel=1e-12)


def test_separability_tolerance_derivation():
    Z = np.array([[1.0, -3.0, 2.0], [0.5, 0.0, 0.0]])
    assert tbd.separability_tolerance(Z) == 3 * EPS * 6.0


def test_check_separable_rejects_bad_z():
    with pytest.raises(InvalidDataError, match="non-empty 2-D"):
        check_separable(np.ones(3))
    with pytest.raises(InvalidDataError, match=r"Z\[0, 1\] = nan"):
        check_separable([[1.0, np.nan]])


# ---------------------------------------------------------------- generators


@pytest.mark.parametrize("name", sorted(GENERATOR_ARGS))
def test_generator_separable_and_reproducible(name):
    args = GENERATOR_ARGS[name]
    ds = GENERATORS[name](**args, seed=3)
    assert isinstance(ds, Dataset) and ds.name == name
    assert ds.n == args["n"] and ds.d == args["d"]
    assert check_separable(ds).margin > 0
    assert set(np.unique(ds.y)) <= {-1.0, 1.0}

    # Same seed, same data; another seed, other data; the spec rebuilds it.
    again = GENERATORS[name](**args, seed=3)
    np.testing.assert_array_equal(ds.X, again.X)
    np.testing.assert_array_equal(ds.y, again.y)
    other = GENERATORS[name](**args, seed=4)
    assert not np.array_equal(ds.X, other.X)
    rebuilt = dataset_from_spec(json.loads(json.dumps(ds.spec)))
    np.testing.assert_array_equal(ds.X, rebuilt.X)
    np.testing.assert_array_equal(ds.y, rebuilt.y)
    assert any("certified separable" in note for note in ds.notes)


def test_rademacher_equal_magnitudes_and_discriminating():
    ds = tbd.rademacher(n=10, d=8, seed=0)
    magnitudes = np.abs(ds.X)
    np.testing.assert_array_equal(magnitudes, magnitudes[:, :1] * np.ones((1, ds.d)))
    assert np.all((magnitudes[:, 0] >= 0.5) & (magnitudes[:, 0] <= 2.0))

    # w_2* must miss the l_inf max margin by at least 1e-3 gamma_inf.
    w2, _ = l2_max_margin(ds.Z)
    gamma_inf = linf_max_margin(ds.Z)
    gap = gamma_inf - np.min(ds.Z @ w2) / np.max(np.abs(w2))
    assert gap >= 1e-3 * gamma_inf * (1 - 1e-6)
    assert any("discriminating" in note for note in ds.notes)


def test_rademacher_given_scales_and_errors():
    scales = np.linspace(0.5, 2.0, 6)
    ds = tbd.rademacher(n=6, d=5, scales=scales, seed=1, discriminating=False)
    np.testing.assert_array_equal(np.abs(ds.X), scales[:, None] * np.ones((1, 5)))
    assert ds.spec["scales"] == scales.tolist()
    with pytest.raises(InvalidParameterError, match="one entry per sample"):
        tbd.rademacher(n=6, d=5, scales=[1.0, 2.0])
    with pytest.raises(InvalidParameterError, match="finite and > 0"):
        tbd.rademacher(n=2, d=5, scales=[1.0, 0.0])
    with pytest.raises(InvalidParameterError, match="raise d"):
        tbd.rademacher(n=10, d=2, seed=0, max_draws=5)


def test_gaussian_gives_up_with_a_clear_error():
    with pytest.raises(InvalidParameterError, match="none of 3 draws .* separable"):
        tbd.gaussian(n=60, d=2, separation=1e-3, seed=0, max_draws=3)


def test_with_margin_has_the_prescribed_l2_margin():
    for n, d in [(1, 3), (2, 1), (9, 4)]:
        ds = tbd.with_margin(n=n, d=d, margin=0.25, seed=5)
        _, gamma2 = l2_max_margin(ds.Z)
        assert gamma2 == pytest.approx(0.25, rel=1e-6)


def test_shifted_diagonal_construction():
    ds = tbd.shifted_diagonal(n=5, d=3, shift=0.25, seed=2)
    rows = sorted(map(tuple, ds.X - 0.25))
    expected = sorted(map(tuple, np.eye(3)[[0, 1, 2, 0, 1]]))
    np.testing.assert_allclose(rows, expected)
    assert np.all(ds.y == 1.0)
    with pytest.raises(InvalidParameterError, match="degenerate value"):
        tbd.shifted_diagonal(n=3, d=2, shift=-0.5)


def test_k17_fixed_data():
    ds = tbd.k17()
    np.testing.assert_array_equal(ds.Z, [[1, 0, 0], [0, 1, 0], [2, 2, 1]])
    assert ds.name == "k17" and np.all(ds.y == 1.0)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"n": 0}, "n must be an integer >= 1"),
        ({"d": 2.5}, "d must be an integer"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"separation": 0.0}, "separation must be finite and > 0"),
    ],
)
def test_generator_parameter_errors(kwargs, pattern):
    with pytest.raises(InvalidParameterError, match=pattern):
        tbd.gaussian(**kwargs)


# ---------------------------------------------------------------- files


def test_csv_with_y_column_maps_labels(tmp_path, caplog):
    path = tmp_path / "data.csv"
    path.write_text("a,y,b\n1,0,2\n-1,1,0.5\n3,0,1\n")
    with caplog.at_level(logging.INFO, logger="theorybox.data"):
        ds = load_file(path)
    np.testing.assert_array_equal(ds.X, [[1, 2], [-1, 0.5], [3, 1]])
    np.testing.assert_array_equal(ds.y, [-1, 1, -1])
    assert ds.feature_names == ("a", "b") and ds.name == "data"
    assert any("0 -> -1, 1 -> +1" in note for note in ds.notes)
    assert any("labels mapped" in r.getMessage() for r in caplog.records)
    assert ds.spec["sha256"] == file_sha256(path.read_bytes())
    assert ds.spec["file"] == str(path.resolve())


def test_csv_last_column_text_labels_and_intercept(tmp_path):
    path = tmp_path / "pets.csv"
    path.write_text("w,h,kind\n1,2,dog\n2,1,cat\n0,3,dog\n")
    ds = load_file(path, intercept=True)
    assert ds.feature_names == ("w", "h", "intercept")
    np.testing.assert_array_equal(ds.X[:, -1], 1.0)
    np.testing.assert_array_equal(ds.y, [1, -1, 1])
    assert any("'cat' -> -1, 'dog' -> +1" in note for note in ds.notes)
    assert any("intercept" in note for note in ds.notes)

    # Explicit label column by index; by name, the text column becomes a feature.
    assert load_file(path, label_column=2).feature_names == ("w", "h")
    with pytest.raises(InvalidDataError, match="column 'kind': 'dog' is not a number"):
        load_file(path, label_column="w")


def test_csv_already_signed_labels_are_not_remapped(tmp_path):
    path = tmp_path / "signed.csv"
    path.write_text("x1,x2,y\n1,0,1\n0,1,-1\n")
    ds = load_file(path)
    assert ds.notes == () and ds.y.tolist() == [1.0, -1.0]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("a,y\n1,0\nfoo,1\n", r"line 3 \(data row 1\), column 'a': 'foo'"),
        ("a,y\n1,0\n2,1\n3,2\n", r"3 distinct value\(s\): 0, 1, 2"),
        ("a,y\n1,0\n2,0\n", r"1 distinct value\(s\): 0;"),
        ("a,y\n1,0\n2\n", r"line 3: 1 cells but the header has 2"),
        ("a,y\n1,0\n,1\n", r"column 'a': '' is not a number"),
        ("a,y\n\n1,0\n\n2,x,3\n", r"line 5: 3 cells"),
        ("a\n1\n", r"needs at least one feature column"),
        ("", r"is empty"),
    ],
    ids=[
        "non-numeric",
        "three-labels",
        "one-label",
        "ragged",
        "empty-cell",
        "blank-lines",
        "one-column",
        "empty-file",
    ],
)
def test_csv_errors(tmp_path, text, pattern):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InvalidDataError, match=pattern):
        load_file(path)


def test_file_errors(tmp_path):
    with pytest.raises(InvalidDataError, match="does not exist"):
        load_file(tmp_path / "missing.csv")
    other = tmp_path / "data.txt"
    other.write_text("a,y\n1,1\n")
    with pytest.raises(InvalidDataError, match=r"unsupported file ending '.txt'"):
        load_file(other)
    with pytest.raises(InvalidDataError, match="label column 'z' is not in"):
        path = tmp_path / "ok.csv"
        path.write_text("a,y\n1,1\n2,-1\n")
        load_file(path, label_column="z")


def test_npz_loader(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(
        path,
        X=np.array([[1.0, 0.0], [0.0, 2.0]]),
        y=np.array([5, 2]),
        feature_names=np.array(["p", "q"]),
    )
    ds = load_file(path, intercept=True)
    np.testing.assert_array_equal(ds.y, [1, -1])
    assert ds.feature_names == ("p", "q", "intercept")
    assert any("2 -> -1, 5 -> +1" in note for note in ds.notes)

    broken = tmp_path / "broken.npz"
    np.savez(broken, X=np.ones((2, 2)))
    with pytest.raises(InvalidDataError, match=r"lacks the array\(s\) \['y'\]"):
        load_file(broken)
    with pytest.raises(InvalidDataError, match="CSV files only"):
        load_file(path, label_column="y")


# ---------------------------------------------------------------- bundled


def test_bundled_iris():
    ds = load_bundled("iris")
    assert (ds.n, ds.d) == (100, 4) and ds.notes == ()
    np.testing.assert_array_equal(ds.y, np.r_[-np.ones(50), np.ones(50)])
    assert ds.feature_names[2] == "petal_length_cm"
    assert check_separable(ds).margin > 0
    assert "Fisher" in ds.provenance and "CC BY 4.0" in ds.provenance
    assert ds.spec == {"bundled": "iris"}


def test_bundled_digits01_drops_zero_pixels():
    ds = load_bundled("digits01")
    assert ds.n == 360 and ds.d == 52
    assert (np.sum(ds.y == -1), np.sum(ds.y == 1)) == (178, 182)
    assert ds.notes and "dropped 12 of 64 features" in ds.notes[0]
    assert "pixel_0_0" in ds.notes[0] and "pixel_0_0" not in ds.feature_names
    assert check_separable(ds).margin > 0
    assert "Alpaydin" in ds.provenance


def test_bundled_hashes_match_files_and_provenance():
    provenance = (FILES / "PROVENANCE.md").read_text()
    assert set(BUNDLED) == {"iris", "digits01"}
    for file_name, digest in _SHA256.items():
        assert file_sha256((FILES / file_name).read_bytes()) == digest
        assert re.search(rf"`{file_name}`.*?sha256.*?`{digest}`", provenance, re.S)


def test_theorybox_data_does_not_import_sklearn():
    code = (
        "import sys, theorybox.data, theorybox.strategies; "
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(tbd.__file__).parents[2],
    )
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- load_dataset


def test_load_dataset_resolves_names_and_paths(tmp_path):
    assert load_dataset("iris").n == 100
    ds = load_dataset("gaussian", n=6, d=3, seed=1)
    assert (ds.n, ds.d) == (6, 3)
    assert load_dataset("k17").name == "k17"
    path = tmp_path / "f.csv"
    path.write_text("a,b,y\n1,2,1\n2,1,-1\n")
    assert load_dataset(str(path), intercept=True).d == 3
    assert load_dataset(path).d == 2
    assert dataset_from_spec(load_bundled("digits01").spec).d == 52
    assert dataset_from_spec(load_file(path).spec).d == 2


def test_load_dataset_errors(tmp_path):
    with pytest.raises(InvalidParameterError, match="unknown dataset 'nope'"):
        load_dataset("nope")
    with pytest.raises(InvalidParameterError, match=r"does not take \['dd'\]"):
        load_dataset("gaussian", dd=3)
    with pytest.raises(InvalidParameterError, match="takes no parameters"):
        load_dataset("iris", n=3)
    with pytest.raises(InvalidParameterError, match="cannot be rebuilt"):
        dataset_from_spec(make_dataset([[1.0]], [1], name="a").spec)
    path = tmp_path / "g.csv"
    path.write_text("a,y\n1,1\n2,-1\n")
    spec = load_file(path).spec
    path.write_text("a,y\n1,1\n3,-1\n")
    with pytest.raises(InvalidDataError, match="has changed"):
        dataset_from_spec(spec)
