"""Epoch-wise view of Inc-Adam against runs (theorybox.experiments.epoch_check)."""

import numpy as np
import pytest

from theorybox.data import gaussian
from theorybox.experiments.epoch_check import (
    epoch_displacement_check,
    epoch_error_bound,
    proxy_departure,
)

B1, B2, ETA = 0.9, 0.99, 1e-3


@pytest.fixture(scope="module")
def Z():
    Z = gaussian(n=5, d=3, seed=0).Z
    return Z / np.abs(Z).max()


def test_epoch_map_error_reaches_first_order_floor(Z):
    rows = epoch_displacement_check(Z, B1, B2, ETA, epochs=(1, 10, 100, 1000))
    errors = [row["rel_err"] for row in rows]
    # The floor eta * R * sqrt(d) * max|z| * (N + 1/(1-b2)) (module docstring) is
    # about 0.46 here: the gradients drift by at most eta R sqrt(d) max|z| per step
    # over the moving averages' memory of N + 1/(1-b2) steps.
    bound = epoch_error_bound(Z, B1, B2, ETA)
    assert bound == pytest.approx(rows[-1]["bound"])
    assert errors[-1] < bound
    assert errors[-1] < errors[0] / 10


def test_float64_and_mpmath_displacements_agree(Z):
    kw = {"epochs": (1, 10)}
    fast = epoch_displacement_check(Z, B1, B2, ETA, **kw)
    slow = epoch_displacement_check(Z, B1, B2, ETA, backend="mpmath", dps=40, **kw)
    for a, b in zip(fast, slow, strict=True):
        scale = np.abs(b["measured"]).max()
        assert np.abs(a["measured"] - b["measured"]).max() <= 1e-10 * scale
        assert a["rel_err"] == pytest.approx(b["rel_err"], rel=1e-10)


def test_proxy_departure_shrinks_as_b2_to_one(Z):
    rows = proxy_departure(Z, (0.99, 0.999, 0.9999), eta0=1e-5, epochs=4000)
    maps = [row["map_one_minus_cos"] for row in rows]
    # The epoch map tends to sqrt(N) S / sqrt(Q) as b2 -> 1.
    assert maps[0] > maps[1] > maps[2]
    assert all(np.isfinite(row["one_minus_cos"]) for row in rows)
