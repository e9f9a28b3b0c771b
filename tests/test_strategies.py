"""Tests of the Hypothesis strategies that construct separable data (cases.md K13)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import event, find, given, settings
from hypothesis import strategies as st

from theorybox.data import Dataset, check_separable
from theorybox.errors import InvalidParameterError
from theorybox.strategies import rademacher_datasets, separable_datasets

EPS = float(np.finfo(np.float64).eps)
logger = logging.getLogger(__name__)


@given(separable_datasets())
@settings(max_examples=50, deadline=None)
def test_separable_datasets_are_separable(ds):
    assert isinstance(ds, Dataset)
    event(f"n={ds.n}")
    event(f"d={ds.d}")

    # The planted direction keeps every sample at least the drawn margin away.
    u = np.asarray(ds.spec["direction"])
    margin = ds.spec["margin"]
    scores = ds.Z @ u
    assert np.min(scores) >= margin - 64 * EPS * np.max(np.abs(ds.Z).sum(axis=1))
    assert 0.1 <= margin <= 1.0
    assert np.max(np.abs(ds.X)) <= 10.0 + 1.0

    # The independent LP check agrees.
    assert check_separable(ds).margin > 0


@given(rademacher_datasets())
@settings(max_examples=50, deadline=None)
def test_rademacher_datasets_equal_magnitudes_and_separable(ds):
    event(f"n={ds.n}")
    event(f"d={ds.d}")
    magnitudes = np.abs(ds.X)
    assert np.all(magnitudes == magnitudes[:, :1])
    assert np.all((magnitudes >= 0.5) & (magnitudes <= 2.0))
    planted = np.asarray(ds.spec["planted"])
    assert np.min(ds.Z @ planted) > 0
    assert check_separable(ds).margin > 0


def test_strategies_reach_a_range_of_sizes():
    """K13: report the N and d reached; construction must not collapse to tiny N."""
    for strategy in (separable_datasets(), rademacher_datasets()):
        sizes: list[tuple[int, int]] = []

        @given(strategy)
        @settings(max_examples=50, deadline=None, derandomize=True, database=None)
        def collect(ds):
            sizes.append((ds.n, ds.d))  # noqa: B023 (run at once, inside this loop)

        collect()
        ns = sorted({n for n, _ in sizes})
        ds_ = sorted({d for _, d in sizes})
        logger.info("N reached: %s; d reached: %s", ns, ds_)
        assert min(ns) == 2 and max(ns) >= 10 and len(ns) >= 6
        assert min(ds_) == 1 and max(ds_) >= 5


def test_fixed_sizes_and_custom_parameters():
    @given(separable_datasets(n=7, d=3, min_margin=0.5, max_margin=0.5, scale=1.0))
    @settings(max_examples=20, deadline=None)
    def check(ds):
        assert ds.n == 7 and ds.d <= 3
        assert ds.spec["margin"] == 0.5
        assert np.max(np.abs(ds.X)) <= 1.5

    @given(rademacher_datasets(n=st.just(5), d=4, scales=st.sampled_from([1.0, 3.0])))
    @settings(max_examples=20, deadline=None)
    def check_rademacher(ds):
        assert (ds.n, ds.d) == (5, 4)
        assert set(np.unique(np.abs(ds.X))) <= {1.0, 3.0}

    check()
    check_rademacher()


def test_zero_columns_are_kept_unless_asked():
    """Zero features must reach the optimizers' tests (cases.md K4)."""
    kept = find(separable_datasets(d=3), lambda ds: ds.d == 3 and not ds.X[:, 1].any())
    assert kept.d == 3
    dropped = find(separable_datasets(d=3, drop_zero=True), lambda ds: ds.d < 3)
    assert any("dropped" in note for note in dropped.notes)


def test_shrinks_to_small_readable_examples():
    """Minimal examples are tiny, with round numbers (zero raw points, axis u)."""
    ds = find(separable_datasets(), lambda ds: bool(np.any(ds.y < 0)))
    assert (ds.n, ds.d) == (2, 1)
    assert np.all(np.abs(ds.X) <= 1.0) and len(set(np.abs(ds.X).ravel())) == 1
    rd = find(rademacher_datasets(), lambda ds: bool(np.any(ds.y < 0)))
    assert (rd.n, rd.d) == (2, 1)
    assert set(np.abs(rd.X).ravel()) <= {0.5, 1.0, 2.0}
    wide = find(separable_datasets(), lambda ds: ds.n >= 4 and ds.d >= 3)
    assert (wide.n, wide.d) == (4, 3)
    assert np.count_nonzero(wide.X) <= wide.n


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"n": 0}, "n must be a positive int"),
        ({"d": "3"}, "d must be a positive int"),
        ({"min_margin": 0.0}, "0 < min_margin <= max_margin"),
        ({"min_margin": 2.0, "max_margin": 1.0}, "0 < min_margin <= max_margin"),
        ({"scale": -1.0}, "scale must be finite and > 0"),
    ],
)
def test_separable_datasets_parameter_errors(kwargs, pattern):
    with pytest.raises(InvalidParameterError, match=pattern):
        separable_datasets(**kwargs)


def test_rademacher_datasets_parameter_errors():
    with pytest.raises(InvalidParameterError, match="scales must be a Hypothesis"):
        rademacher_datasets(scales=1.0)

    @given(rademacher_datasets(scales=st.just(0.0)))
    @settings(max_examples=1, deadline=None, database=None)
    def draw_zero_scale(ds):
        pass

    with pytest.raises(InvalidParameterError, match="must draw finite numbers > 0"):
        draw_zero_scale()
