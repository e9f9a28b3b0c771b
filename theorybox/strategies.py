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

__all__ = [
    "separable_datasets",
    "rademacher_datasets",
    "integer_separable_datasets",
    "rational_separable_datasets",
    "awkward_datasets",
    "AWKWARD_KINDS",
]

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



# Exact integer and binary-rational data, and the awkward cases.


def _integer_data(draw: st.DrawFn, n_val: int, d_val: int, bound: int,
                  zero_at: int | None = None):
    """Integer points labelled by a drawn integer direction ``v``.

    ``v`` has a non-zero pivot; a point with ``p . v = 0`` is replaced by
    ``p + v`` (then ``(p + v) . v = |v|^2 > 0``). Returns ``Z`` (rows
    ``z_i = y_i p_i``, every ``z_i . v >= 1``) and ``v``. With ``zero_at`` set,
    ``v[zero_at] = 0`` (the pivot is elsewhere).
    """
    v = np.array(
        draw(st.lists(st.integers(-bound, bound), min_size=d_val, max_size=d_val)),
        dtype=float,
    )
    choices = [k for k in range(d_val) if k != zero_at]
    pivot = draw(st.sampled_from(choices))
    if v[pivot] == 0:
        v[pivot] = 1.0
    if zero_at is not None:
        v[zero_at] = 0.0
    P = draw(
        hnp.arrays(np.float64, (n_val, d_val),
                   elements=st.integers(-bound, bound).map(float))
    )
    s = P @ v
    P[s == 0] += v
    s = P @ v
    Z = np.where(s < 0, -1.0, 1.0)[:, None] * P
    return Z, v


def _as_dataset(Z: np.ndarray, name: str, spec: dict, notes=()) -> Dataset:
    """A dataset with labels ``+1`` and ``x_i = z_i`` (the engine sees only ``Z``).

    Zero features are kept: they are one of the cases these strategies exist for.
    """
    return make_dataset(
        Z, np.ones(Z.shape[0]), name=name, drop_zero=False, spec=spec,
        notes=tuple(notes), provenance=f"theorybox.strategies.{name} (Hypothesis)",
    )


def integer_separable_datasets(
    n: int | st.SearchStrategy[int] = DEFAULT_N,
    d: int | st.SearchStrategy[int] = DEFAULT_D,
    bound: int = 3,
) -> st.SearchStrategy[Dataset]:
    """Strategy for separable data with small integer coordinates, by construction.

    Construction: an integer direction ``v`` (a non-zero pivot, entries in
    ``[-bound, bound]``), integer points ``p_i`` with entries in the same range,
    ``p_i -> p_i + v`` where ``p_i . v = 0``, and ``z_i = sign(p_i . v) p_i``. So
    ``z_i . v >= 1`` exactly (integers), every margin is computed exactly in
    float64, and a failing example shrinks to zeros and ones. Labels are ``+1``
    and ``x_i = z_i`` (the optimizers see only ``Z``).

    Returns
    -------
    hypothesis.strategies.SearchStrategy of Dataset
        ``spec["planted"]`` holds ``v``.
    """
    n_st, d_st = _size_strategy(n, "n"), _size_strategy(d, "d")
    if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
        raise InvalidParameterError(f"bound must be an int >= 1, got {bound!r}.")

    @st.composite
    def build(draw: st.DrawFn) -> Dataset:
        n_val = _checked_size(draw(n_st), "n")
        d_val = _checked_size(draw(d_st), "d")
        Z, v = _integer_data(draw, n_val, d_val, bound)
        return _as_dataset(
            Z, "integer_separable_datasets",
            {"strategy": "integer_separable_datasets", "planted": v.tolist()},
        )

    return build()


def rational_separable_datasets(
    n: int | st.SearchStrategy[int] = DEFAULT_N,
    d: int | st.SearchStrategy[int] = DEFAULT_D,
    bound: int = 8,
    max_shift: int = 4,
) -> st.SearchStrategy[Dataset]:
    """Strategy for separable data with exact binary-rational coordinates.

    Integer data as in :func:`integer_separable_datasets`, each coordinate
    divided by ``2^k_j`` with ``k_j`` drawn in ``[0, max_shift]``: every value is
    exact in float64, and the per-coordinate scales differ by powers of two (a
    positive diagonal scaling keeps the data separable: ``z . D^{-1} v`` has the
    sign of ``z . v`` in the unscaled coordinates).
    """
    base = integer_separable_datasets(n, d, bound)

    @st.composite
    def build(draw: st.DrawFn) -> Dataset:
        ds = draw(base)
        shifts = np.array(
            draw(st.lists(st.integers(0, max_shift), min_size=ds.d, max_size=ds.d)),
            dtype=float,
        )
        Z = ds.Z / 2.0**shifts
        return _as_dataset(
            Z, "rational_separable_datasets",
            {"strategy": "rational_separable_datasets",
             "planted": (np.asarray(ds.spec["planted"]) * 2.0**shifts).tolist(),
             "shifts": shifts.tolist()},
        )

    return build()


#: Default sizes of the base data of :func:`awkward_datasets`.
AWKWARD_N = st.integers(1, 6)
AWKWARD_D = st.integers(1, 4)

#: The awkward cases :func:`awkward_datasets` draws from.
AWKWARD_KINDS = (
    "zero_column",
    "non_support_coordinate",
    "duplicated_point",
    "single_support_vector",
    "nearly_tied_margins",
    "zero_gradient_coordinate",
)


def _awkward(draw: st.DrawFn, kind: str, n_val: int, d_val: int) -> np.ndarray:
    """Build the data of one awkward kind (see :func:`awkward_datasets`)."""
    if kind == "zero_gradient_coordinate":
        d_val = max(d_val, 2)
        k = draw(st.integers(0, d_val - 1))
        Z, _ = _integer_data(draw, n_val, d_val, 3, zero_at=k)
        mirror = Z.copy()
        mirror[:, k] = -mirror[:, k]
        out = np.empty((2 * n_val, d_val))
        out[0::2], out[1::2] = Z, mirror
        return out
    Z, v = _integer_data(draw, n_val, d_val, 3)
    if kind == "zero_column":
        k = draw(st.integers(0, d_val))
        return np.insert(Z, k, 0.0, axis=1)
    if kind == "non_support_coordinate":
        j = draw(st.integers(0, n_val - 1))
        touch = float(draw(st.sampled_from([-2, -1, 1, 2])))
        far = np.append(2.0 * Z[j], touch)
        return np.vstack([np.hstack([Z, np.zeros((n_val, 1))]), far])
    if kind == "duplicated_point":
        j = draw(st.integers(0, n_val - 1))
        return np.vstack([Z, Z[j]])
    if kind == "single_support_vector":
        z1 = Z[0]
        sq = float(z1 @ z1)
        rest = Z[1:]
        a = 2.0 + np.ceil(np.maximum(0.0, -(rest @ z1)) / sq)
        return np.vstack([z1, a[:, None] * z1 + rest])
    if kind == "nearly_tied_margins":
        j = draw(st.integers(0, n_val - 1))
        k = draw(st.integers(20, 50))
        return np.vstack([Z, Z[j] * (1.0 + 2.0**-k)])
    raise InvalidParameterError(f"unknown awkward kind {kind!r}; use {AWKWARD_KINDS}")


def awkward_datasets(
    kinds=AWKWARD_KINDS,
    n: int | st.SearchStrategy[int] = AWKWARD_N,
    d: int | st.SearchStrategy[int] = AWKWARD_D,
) -> st.SearchStrategy[Dataset]:
    """Strategy for the awkward separable cases, built from exact integer data.

    Kinds (``spec["kind"]``):

    ``zero_column``
        A feature that is zero on every sample, inserted at a drawn position
        (kept, not dropped: Adam's ``0/0 = 0`` convention, cases.md K4).
    ``non_support_coordinate``
        An extra coordinate touched only by one extra sample ``2 z_j + c e_new``,
        whose margin is at least twice ``z_j``'s along any separating direction
        with a zero last coordinate, so it is never a support vector (K17).
    ``duplicated_point``
        One row repeated exactly (duals are not unique, K7).
    ``single_support_vector``
        ``z_1`` and rows ``a_i z_1 + r_i`` with ``(a_i z_1 + r_i) . z_1 >=
        2 |z_1|^2``, so ``w_2*`` is ``z_1 / |z_1|`` and ``z_1`` alone is support.
    ``nearly_tied_margins``
        A row ``z_j (1 + 2^-k)``, ``k`` in ``[20, 50]``: margins tied to 1e-6 ..
        1e-15 relative.
    ``zero_gradient_coordinate``
        Rows interleaved with their mirror in a drawn coordinate ``k`` (the
        planted direction has ``v_k = 0``): along any full-batch run from
        ``w_0 = 0`` the mean gradient's coordinate ``k`` is *exactly* 0 (K6; the
        pairs cancel in summation order).

    Parameters
    ----------
    kinds : sequence of str
        Which kinds to draw from (default all).
    n, d : int or strategy of int
        Size of the base integer data (before the kind adds rows or columns).
    """
    kinds = tuple(kinds)
    unknown = sorted(set(kinds) - set(AWKWARD_KINDS))
    if not kinds or unknown:
        raise InvalidParameterError(
            f"kinds must be a non-empty subset of {AWKWARD_KINDS}; got {kinds!r}."
        )
    n_st, d_st = _size_strategy(n, "n"), _size_strategy(d, "d")

    @st.composite
    def build(draw: st.DrawFn) -> Dataset:
        kind = draw(st.sampled_from(kinds))
        n_val = _checked_size(draw(n_st), "n")
        d_val = _checked_size(draw(d_st), "d")
        if kind == "single_support_vector":
            n_val = max(n_val, 2)
        Z = _awkward(draw, kind, n_val, d_val)
        return _as_dataset(
            Z, "awkward_datasets", {"strategy": "awkward_datasets", "kind": kind},
            notes=(f"awkward case: {kind}",),
        )

    return build()
