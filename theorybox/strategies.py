"""Hypothesis strategies that construct linearly separable datasets.

Random labels through the origin are rarely separable once ``N`` exceeds about
``2d``, so filtering random data fails health checks or keeps only tiny ``N``
(cases.md, K13). These strategies build separable data directly: they draw a
direction first and derive labels and positions from it, so every draw is valid, no
health check needs suppressing, and a failing example shrinks to a small, readable
one (zero-filled points, a coordinate axis as direction, the smallest margin).

Each strategy yields a :class:`~theorybox.data.Dataset` (use ``.Z`` for the array of
signed samples ``z_i = y_i x_i``) whose ``spec`` records the planted direction. Use
them in tests as::

    @given(separable_datasets())
    @settings(max_examples=50, deadline=None)
    def test_something(dataset): ...
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from theorybox.data.dataset import Dataset, make_dataset
from theorybox.errors import InvalidParameterError

__all__ = ["separable_datasets", "rademacher_datasets"]

#: Largest |integer| in the planted direction of :func:`rademacher_datasets`.
_PLANT_RANGE = 5

#: Default strategies for the number of samples ``N`` and the dimension ``d``.
DEFAULT_N = st.integers(2, 12)
DEFAULT_D = st.integers(1, 6)


def _size_strategy(value: Any, name: str) -> st.SearchStrategy[int]:
    """Accept an int or a strategy of ints for ``n`` or ``d``."""
    if isinstance(value, st.SearchStrategy):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidParameterError(
            f"{name} must be a positive int or a Hypothesis strategy of them, got "
            f"{value!r}; e.g. {name}=st.integers(2, 12)."
        )
    return st.just(int(value))


def _checked_size(value: int, name: str) -> int:
    """Check a drawn ``n`` or ``d``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidParameterError(
            f"the {name} strategy drew {value!r}; it must draw integers >= 1."
        )
    return int(value)


def _bounded_floats(low: float, high: float) -> st.SearchStrategy[float]:
    """Finite, normal float64 values in ``[low, high]``."""
    return st.floats(
        low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False
    )


def separable_datasets(
    n: int | st.SearchStrategy[int] = DEFAULT_N,
    d: int | st.SearchStrategy[int] = DEFAULT_D,
    min_margin: float = 0.1,
    max_margin: float = 1.0,
    scale: float = 10.0,
    drop_zero: bool = False,
) -> st.SearchStrategy[Dataset]:
    """Strategy for datasets separable with l2 margin at least a drawn ``gamma``.

    Construction, with every value drawn by Hypothesis:

    1. a direction ``v`` with ``v[k] = +-1`` at a pivot coordinate ``k`` and the
       other entries in ``[-1, 1]`` (every direction has this form after scaling),
       and ``u = v / ||v||_2``;
    2. a margin ``gamma`` in ``[min_margin, max_margin]``;
    3. raw points ``p_i`` with entries in ``[-scale, scale]``;
    4. labels by the direction, ``y_i = sign(p_i . u)`` (``+1`` on the boundary);
    5. push off the boundary: ``z_i = y_i p_i + max(0, gamma - |p_i . u|) u``, so
       ``z_i . u >= gamma`` (up to rounding), and ``x_i = y_i z_i``.

    Hence ``|x_ik| <= scale + max_margin``. Zero features (all points zero in a
    coordinate) do occur, and are kept unless ``drop_zero``: they are the edge case
    that Adam's ``0/0`` convention must handle (cases.md, K4).

    Parameters
    ----------
    n, d : int or strategy of int
        Number of samples and dimension (defaults: 2..12 and 1..6).
    min_margin, max_margin : float
        Range of the margin ``gamma`` along ``u`` (``0 < min_margin <= max_margin``).
    scale : float
        Bound on the raw coordinates (> 0).
    drop_zero : bool, default False
        Pass to :func:`~theorybox.data.make_dataset`.

    Returns
    -------
    hypothesis.strategies.SearchStrategy of Dataset
        Name ``"separable_datasets"``; ``spec`` holds ``direction`` (``u``) and
        ``margin`` (``gamma``).
    """
    n_st, d_st = _size_strategy(n, "n"), _size_strategy(d, "d")
    values = (float(min_margin), float(max_margin), float(scale))
    if not all(np.isfinite(values)) or not 0.0 < values[0] <= values[1]:
        raise InvalidParameterError(
            f"need finite 0 < min_margin <= max_margin, got min_margin={min_margin!r}"
            f", max_margin={max_margin!r}."
        )
    if not values[2] > 0.0:
        raise InvalidParameterError(f"scale must be finite and > 0, got {scale!r}.")
    min_margin, max_margin, scale = values

    @st.composite
    def build(draw: st.DrawFn) -> Dataset:
        n_val = _checked_size(draw(n_st), "n")
        d_val = _checked_size(draw(d_st), "d")

        # Direction: a pivot coordinate of magnitude one, the rest in [-1, 1].
        pivot = draw(st.integers(0, d_val - 1))
        v = np.array(
            draw(st.lists(_bounded_floats(-1.0, 1.0), min_size=d_val, max_size=d_val))
        )
        v[pivot] = -1.0 if draw(st.booleans()) else 1.0
        u = v / np.linalg.norm(v)

        # Margin and raw points.
        gamma = draw(_bounded_floats(min_margin, max_margin))
        P = draw(
            hnp.arrays(
                np.float64, (n_val, d_val), elements=_bounded_floats(-scale, scale)
            )
        )

        # Labels by the direction, then push every point to margin >= gamma.
        s = P @ u
        y = np.where(s < 0.0, -1.0, 1.0)
        Z = y[:, None] * P
        Z = Z + np.maximum(0.0, gamma - np.abs(s))[:, None] * u
        return make_dataset(
            y[:, None] * Z,
            y,
            name="separable_datasets",
            drop_zero=drop_zero,
            spec={
                "strategy": "separable_datasets",
                "direction": u.tolist(),
                "margin": gamma,
            },
            notes=(f"constructed with z_i . u >= {gamma!r} along a drawn unit u",),
            provenance="theorybox.strategies.separable_datasets (Hypothesis)",
        )

    return build()


def rademacher_datasets(
    n: int | st.SearchStrategy[int] = DEFAULT_N,
    d: int | st.SearchStrategy[int] = DEFAULT_D,
    scales: st.SearchStrategy[float] | None = None,
) -> st.SearchStrategy[Dataset]:
    """Strategy for separable generalised-Rademacher data, ``|x_ik| = a_i``.

    Construction, with every value drawn by Hypothesis:

    1. signs ``s_i`` in ``{-1, +1}^d`` and magnitudes ``a_i`` (default: floats in
       ``[0.5, 2]``), ``x_i = a_i s_i``;
    2. a planted integer direction ``v = 2^d w_0 + p``, where ``w_0`` has integer
       entries in ``[-5, 5]`` and ``p_k = +-2^{pi(k)}`` for a drawn permutation
       ``pi`` and signs. ``s . p`` is a sum of distinct powers of two with signs,
       hence an odd integer, never zero; and ``|s . p| < 2^d``, so ``sign(s . v)``
       is ``sign(s . w_0)`` unless that is zero;
    3. labels ``y_i = sign(s_i . v)``, computed exactly in float64 (small
       integers), so ``z_i . v = a_i |s_i . v| >= a_i > 0``: separable.

    Parameters
    ----------
    n, d : int or strategy of int
        Number of samples and dimension (defaults: 2..12 and 1..6).
    scales : strategy of float, optional
        The magnitudes ``a_i``; must draw finite positive numbers.

    Returns
    -------
    hypothesis.strategies.SearchStrategy of Dataset
        Name ``"rademacher_datasets"``; ``spec["planted"]`` holds ``v``.
    """
    n_st, d_st = _size_strategy(n, "n"), _size_strategy(d, "d")
    a_st = _bounded_floats(0.5, 2.0) if scales is None else scales
    if not isinstance(a_st, st.SearchStrategy):
        raise InvalidParameterError(
            f"scales must be a Hypothesis strategy of positive floats, got {scales!r};"
            " e.g. scales=st.floats(0.5, 2.0)."
        )

    @st.composite
    def build(draw: st.DrawFn) -> Dataset:
        n_val = _checked_size(draw(n_st), "n")
        d_val = _checked_size(draw(d_st), "d")

        # Signs and per-sample magnitudes.
        flips = draw(hnp.arrays(np.bool_, (n_val, d_val)))
        signs = np.where(flips, -1.0, 1.0)
        a = np.array(draw(st.lists(a_st, min_size=n_val, max_size=n_val)), dtype=float)
        if not np.all(np.isfinite(a)) or np.any(a <= 0.0):
            raise InvalidParameterError(
                f"the scales strategy drew {a.tolist()}; it must draw finite numbers "
                "> 0 (a zero scale makes a zero sample, which no direction separates)."
            )

        # Planted integer direction with an exact tie-break.
        w0 = np.array(
            draw(
                st.lists(
                    st.integers(-_PLANT_RANGE, _PLANT_RANGE),
                    min_size=d_val,
                    max_size=d_val,
                )
            ),
            dtype=float,
        )
        order = draw(st.permutations(range(d_val)))
        p_signs = np.where(draw(hnp.arrays(np.bool_, d_val)), -1.0, 1.0)
        p = p_signs * 2.0 ** np.asarray(order, dtype=float)
        v = 2.0**d_val * w0 + p

        # Labels from the planted direction: exact, never zero.
        y = np.sign(signs @ v)
        return make_dataset(
            a[:, None] * signs,
            y,
            name="rademacher_datasets",
            spec={"strategy": "rademacher_datasets", "planted": v.tolist()},
            notes=("constructed: |x_ik| = a_i, labels from a planted direction",),
            provenance="theorybox.strategies.rademacher_datasets (Hypothesis)",
        )

    return build()
