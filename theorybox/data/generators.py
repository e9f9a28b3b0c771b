"""Seeded generators of linearly separable datasets.

Each generator takes an integer ``seed``, draws from ``numpy.random.default_rng(seed)``
(later redraws continue the same stream, so they are deterministic too), returns a
:class:`~theorybox.data.dataset.Dataset` built by
:func:`~theorybox.data.dataset.make_dataset`, and certifies separability with
:func:`~theorybox.data.separability.check_separable` before returning. The ``spec`` of
the result holds the generator's name and every argument, so
``GENERATORS[spec["generator"]](**params)`` rebuilds it exactly.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import linprog

from theorybox.data.dataset import Dataset, make_dataset
from theorybox.data.separability import check_separable
from theorybox.errors import InvalidParameterError, NotSeparableError, SolverError

__all__ = [
    "gaussian",
    "rademacher",
    "shifted_diagonal",
    "with_margin",
    "k17",
    "GENERATORS",
]

logger = logging.getLogger(__name__)

#: Relative l_inf margin gap that makes a Rademacher instance "discriminating".
DISCRIMINATING_GAP = 1e-3


def _count(value: Any, name: str, minimum: int = 1) -> int:
    """Check that ``value`` is an integer ``>= minimum`` and return it."""
    try:
        out = operator.index(value)
    except TypeError:
        raise InvalidParameterError(
            f"{name} must be an integer, got {value!r}; pass e.g. {name}={minimum}."
        ) from None
    if isinstance(value, bool) or out < minimum:
        raise InvalidParameterError(
            f"{name} must be an integer >= {minimum}, got {value!r}."
        )
    return out


def _seed(seed: Any) -> int:
    """Check that ``seed`` is a non-negative integer (what ``default_rng`` accepts)."""
    return _count(seed, "seed", minimum=0)


def _positive(value: Any, name: str) -> float:
    """Check that ``value`` is a finite positive number and return it as float."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"{name} must be a positive number, got {value!r}."
        ) from None
    if not np.isfinite(out) or out <= 0.0:
        raise InvalidParameterError(
            f"{name} must be finite and > 0, got {value!r}; pass a positive value."
        )
    return out


def _certify(dataset: Dataset) -> Dataset:
    """Run the separability check and record the certified margin in ``notes``."""
    result = check_separable(dataset.Z)
    note = (
        f"certified separable by check_separable: l_inf margin {result.margin:.6g} "
        f"(LP {result.lp_margin:.6g})"
    )
    return Dataset(
        name=dataset.name,
        X=dataset.X,
        y=dataset.y,
        notes=(*dataset.notes, note),
        spec=dataset.spec,
        feature_names=dataset.feature_names,
        provenance=dataset.provenance,
    )


def _balanced_labels(rng: np.random.Generator, n: int) -> np.ndarray:
    """``ceil(n/2)`` labels +1 and ``floor(n/2)`` labels -1, in random order."""
    y = np.where(np.arange(n) < (n + 1) // 2, 1.0, -1.0)
    return rng.permutation(y)


def gaussian(
    n: int = 10,
    d: int = 50,
    separation: float = 2.0,
    seed: int = 0,
    max_draws: int = 100,
) -> Dataset:
    """Two Gaussian classes with opposite means, redrawn until separable.

    .. math::

        u \\sim \\mathrm{Unif}(S^{d-1}), \\quad
        \\mu = \\tfrac{\\mathrm{separation}}{2} u, \\quad
        x_i = y_i \\mu + \\xi_i, \\quad \\xi_i \\sim N(0, I_d),

    so ``separation = ||mu_+ - mu_-||_2`` is the distance between the class means.
    The labels are balanced (``ceil(n/2)`` of them +1) and in random order. When
    ``n <= d`` a draw is separable through the origin with probability one; for
    ``n > d`` and small ``separation`` it may not be, and the generator then draws
    again from the same stream, up to ``max_draws`` times.

    Parameters
    ----------
    n : int, default 10
        Number of samples ``N``.
    d : int, default 50
        Dimension.
    separation : float, default 2.0
        Distance between the class means.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.
    max_draws : int, default 100
        Draws to try before giving up.

    Returns
    -------
    Dataset
        Named ``"gaussian"``; ``notes`` say which draw was kept.

    Raises
    ------
    InvalidParameterError
        For invalid arguments, or when no draw in ``max_draws`` was separable.
    """
    n, d, seed = _count(n, "n"), _count(d, "d"), _seed(seed)
    separation = _positive(separation, "separation")
    max_draws = _count(max_draws, "max_draws")
    rng = np.random.default_rng(seed)
    spec = {
        "generator": "gaussian",
        "n": n,
        "d": d,
        "separation": separation,
        "seed": seed,
        "max_draws": max_draws,
    }

    # Draw direction, labels and noise; keep the first separable draw.
    for draw in range(1, max_draws + 1):
        u = rng.standard_normal(d)
        u /= np.linalg.norm(u)
        y = _balanced_labels(rng, n)
        X = y[:, None] * (0.5 * separation * u) + rng.standard_normal((n, d))
        dataset = make_dataset(
            X,
            y,
            name="gaussian",
            spec=spec,
            notes=(f"draw {draw} of at most {max_draws} from default_rng({seed})",),
            provenance=f"theorybox.data.generators.gaussian, seed {seed}",
        )
        try:
            return _certify(dataset)
        except NotSeparableError:
            logger.debug("gaussian: draw %d of seed %d is not separable", draw, seed)
    raise InvalidParameterError(
        f"gaussian(n={n}, d={d}, separation={separation}, seed={seed}): none of "
        f"{max_draws} draws was linearly separable through the origin; increase "
        "separation or d, decrease n, or raise max_draws."
    )


def _l2_direction(Z: np.ndarray) -> np.ndarray:
    """The l2 max-margin direction: ``argmin ||w||^2 / 2`` s.t. ``Z w >= 1``.

    A private helper for :func:`rademacher`; the full, certified reference solvers
    live elsewhere in theorybox. Solved by cvxpy with Clarabel, pinned.
    """
    import cvxpy as cp

    w = cp.Variable(Z.shape[1])
    problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(w)), [Z @ w >= 1.0])
    problem.solve(solver="CLARABEL")
    if problem.status != cp.OPTIMAL or w.value is None:
        raise SolverError(
            f"the l2 max-margin QP ended with status {problem.status!r} under "
            "Clarabel; report this with the data."
        )
    value = np.asarray(w.value, dtype=np.float64)
    if np.min(Z @ value) < 1.0 - 1e-6:
        raise SolverError(
            f"the l2 max-margin QP returned w with min_i z_i . w = "
            f"{np.min(Z @ value):.9g} < 1 - 1e-6 under Clarabel; report this."
        )
    return value


def _linf_margin(Z: np.ndarray) -> float:
    """``gamma_inf = max_{||w||_inf <= 1} min_i z_i . w`` by HiGHS."""
    n, d = Z.shape
    c = np.zeros(d + 1)
    c[-1] = -1.0
    res = linprog(
        c,
        A_ub=np.hstack([-Z, np.ones((n, 1))]),
        b_ub=np.zeros(n),
        bounds=[(-1.0, 1.0)] * d + [(None, None)],
        method="highs",
        options={
            "primal_feasibility_tolerance": 1e-10,
            "dual_feasibility_tolerance": 1e-10,
        },
    )
    if res.status != 0:
        raise SolverError(
            f"the l_inf max-margin LP failed (HiGHS status {res.status}: "
            f"{res.message}); report this with the data."
        )
    return float(-res.fun)


def _linf_gap_of_l2_direction(Z: np.ndarray) -> tuple[float, float]:
    """The l_inf margin gap of the l2 max-margin direction ``w_2*``.

    Parameters
    ----------
    Z : numpy.ndarray, shape (N, d)
        Separable signed samples.

    Returns
    -------
    gap : float
        ``gamma_inf - min_i z_i . w_2* / ||w_2*||_inf``: zero when ``w_2*`` lies in
        the l_inf max-margin face, positive when it is not l_inf-optimal.
    gamma_inf : float
        The l_inf max margin.
    """
    Z = np.asarray(Z, dtype=np.float64)
    w2 = _l2_direction(Z)
    gamma_inf = _linf_margin(Z)
    margin_w2 = float(np.min(Z @ (w2 / np.abs(w2).max())))
    return gamma_inf - margin_w2, gamma_inf


def rademacher(
    n: int = 10,
    d: int = 8,
    scales: Sequence[float] | None = None,
    seed: int = 0,
    discriminating: bool = True,
    max_draws: int = 200,
) -> Dataset:
    """Generalised-Rademacher data: each sample's coordinates share one magnitude.

    .. math::

        x_i = a_i s_i, \\quad s_i \\in \\{-1, +1\\}^d \\text{ uniform}, \\quad
        y_i = \\operatorname{sign}(w_0 \\cdot s_i), \\quad w_0 \\sim N(0, I_d),

    so ``|x_i[k]| = a_i`` for every ``k`` (theory.md, claim 3.2) and ``w_0``
    separates the data. The scales ``a_i`` are drawn uniformly in ``[0.5, 2]``
    unless given. A draw with a tie ``w_0 . s_i = 0`` (probability zero) is
    redrawn.

    With ``discriminating=True`` the generator keeps drawing (signs, ``w_0`` and,
    unless given, scales) until the l2 max-margin direction ``w_2*`` is *not*
    l_inf-optimal: its l_inf margin gap ``gamma_inf - min_i z_i . w_2* /
    ||w_2*||_inf`` must be at least ``1e-3 gamma_inf`` (theory.md, section 6: on
    small data the l_inf max-margin face often contains ``w_2*``, and then l2 and
    l_inf limits cannot be told apart). The gap is recorded in ``notes``. For
    ``d <= 3`` such instances are rare or absent; raise ``d``.

    Parameters
    ----------
    n : int, default 10
        Number of samples ``N``.
    d : int, default 8
        Dimension.
    scales : sequence of float, optional
        The magnitudes ``a_i`` (length ``n``, each finite and positive).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.
    discriminating : bool, default True
        Require ``w_2*`` not to be l_inf-optimal.
    max_draws : int, default 200
        Draws to try before giving up.

    Returns
    -------
    Dataset
        Named ``"rademacher"``.

    Raises
    ------
    InvalidParameterError
        For invalid arguments, or when no draw in ``max_draws`` qualified.
    """
    n, d, seed = _count(n, "n"), _count(d, "d"), _seed(seed)
    max_draws = _count(max_draws, "max_draws")
    given_scales = None
    if scales is not None:
        given_scales = np.asarray(scales, dtype=np.float64)
        if given_scales.shape != (n,):
            raise InvalidParameterError(
                f"scales must have one entry per sample, shape ({n},), but has shape "
                f"{given_scales.shape}; pass n positive magnitudes."
            )
        if not np.all(np.isfinite(given_scales)) or np.any(given_scales <= 0.0):
            raise InvalidParameterError(
                f"scales must be finite and > 0, got {given_scales.tolist()}."
            )
    rng = np.random.default_rng(seed)
    spec = {
        "generator": "rademacher",
        "n": n,
        "d": d,
        "scales": None if given_scales is None else given_scales.tolist(),
        "seed": seed,
        "discriminating": bool(discriminating),
        "max_draws": max_draws,
    }

    # Draw signs, scales and a planted direction until the instance qualifies.
    best_gap = -np.inf
    for draw in range(1, max_draws + 1):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n, d))
        a = rng.uniform(0.5, 2.0, size=n) if given_scales is None else given_scales
        w0 = rng.standard_normal(d)
        y = np.sign(signs @ w0)
        if np.any(y == 0.0):
            continue
        X = a[:, None] * signs
        notes = [f"draw {draw} of at most {max_draws} from default_rng({seed})"]

        # The discriminating test: w_2* must miss the l_inf max margin by 1e-3.
        if discriminating:
            gap, gamma_inf = _linf_gap_of_l2_direction(y[:, None] * X)
            best_gap = max(best_gap, gap / gamma_inf)
            if gap < DISCRIMINATING_GAP * gamma_inf:
                continue
            notes.append(
                f"discriminating: l_inf margin gap of w_2* is {gap:.6g} = "
                f"{gap / gamma_inf:.4g} gamma_inf (gamma_inf = {gamma_inf:.6g})"
            )
        dataset = make_dataset(
            X,
            y,
            name="rademacher",
            spec=spec,
            notes=notes,
            provenance=f"theorybox.data.generators.rademacher, seed {seed}",
        )
        return _certify(dataset)
    raise InvalidParameterError(
        f"rademacher(n={n}, d={d}, seed={seed}): none of {max_draws} draws had an l2 "
        f"max-margin direction that misses the l_inf max margin by "
        f"{DISCRIMINATING_GAP:g} gamma_inf (largest relative gap {best_gap:.3g}); "
        "raise d (d <= 3 rarely works), change n or the seed, raise max_draws, or "
        "pass discriminating=False."
    )


def shifted_diagonal(
    n: int = 4,
    d: int = 4,
    shift: float = 0.5,
    seed: int = 0,
    jitter: float = 0.0,
) -> Dataset:
    """A parameterised "shifted-diagonal" family: unit vectors plus a constant shift.

    The paper names a shifted-diagonal dataset on which the AdamProxy prediction is
    ``w_inf*`` but its exact construction is not known here (theory.md, claim 3.3
    marks it open). This is a **guess** at the family, exposed with its parameters
    so that a search can look for instances where the l_inf certificate holds:

    .. math::

        x_i = \\mathrm{shift} \\cdot \\mathbf{1}_d + c_i \\, e_{k(i)}, \\qquad
        k(i) = i \\bmod d, \\qquad c_i = 1 + \\mathrm{jitter} \\cdot U_i, \\qquad
        y_i = +1,

    with ``U_i`` uniform in ``[0, 1)``, and the rows then put in a random order
    (the order matters for cyclic per-sample methods). With ``n > d`` and
    ``jitter = 0`` some rows repeat exactly. The data are separable unless
    ``shift`` sits at the degenerate value ``-1/d`` (for ``jitter = 0``), which is
    reported as an error.

    Parameters
    ----------
    n : int, default 4
        Number of samples ``N``.
    d : int, default 4
        Dimension.
    shift : float, default 0.5
        The constant added to every coordinate.
    seed : int, default 0
        Seed of ``numpy.random.default_rng`` (row order and jitter).
    jitter : float, default 0.0
        Relative spread of the diagonal entries; ``0`` gives exact unit entries.

    Returns
    -------
    Dataset
        Named ``"shifted_diagonal"``.

    Raises
    ------
    InvalidParameterError
        For invalid arguments, or if the requested instance is not separable.
    """
    n, d, seed = _count(n, "n"), _count(d, "d"), _seed(seed)
    shift, jitter = float(shift), float(jitter)
    if not np.isfinite(shift):
        raise InvalidParameterError(f"shift must be finite, got {shift!r}.")
    if not np.isfinite(jitter) or jitter < 0.0:
        raise InvalidParameterError(f"jitter must be finite and >= 0, got {jitter!r}.")
    rng = np.random.default_rng(seed)
    spec = {
        "generator": "shifted_diagonal",
        "n": n,
        "d": d,
        "shift": shift,
        "seed": seed,
        "jitter": jitter,
    }

    # Diagonal part, constant shift, then a random row order.
    c = 1.0 + jitter * rng.random(n)
    X = np.full((n, d), shift)
    X[np.arange(n), np.arange(n) % d] += c
    X = X[rng.permutation(n)]
    dataset = make_dataset(
        X,
        np.ones(n),
        name="shifted_diagonal",
        spec=spec,
        notes=("construction is a parameterised guess, not the paper's data",),
        provenance=f"theorybox.data.generators.shifted_diagonal, seed {seed}",
    )
    try:
        return _certify(dataset)
    except NotSeparableError as exc:
        raise InvalidParameterError(
            f"shifted_diagonal(n={n}, d={d}, shift={shift}, jitter={jitter}) is not "
            f"separable (shift = -1/d = {-1.0 / d:.6g} is the degenerate value); "
            f"choose another shift. Details: {exc}"
        ) from exc


def with_margin(
    n: int = 10,
    d: int = 5,
    margin: float = 0.5,
    seed: int = 0,
    spread: float = 1.0,
) -> Dataset:
    """Random separable data whose l2 max margin is exactly ``margin``.

    .. math::

        u \\sim \\mathrm{Unif}(S^{d-1}), \\quad
        z_i = t_i u + P_\\perp g_i, \\quad g_i \\sim N(0, I_d), \\quad
        t_i = \\mathrm{margin} + \\mathrm{spread} \\, |h_i|, \\quad h_i \\sim N(0, 1),

    with ``P_perp`` the projection onto ``u``'s orthogonal complement, then labels
    ``y_i`` uniform in ``{-1, +1}`` and ``x_i = y_i z_i``. Every ``z_i . u >=
    margin``. For ``n >= 2`` the first two samples are a mirrored support pair,
    ``z_{1,2} = margin u +- P_perp g_1``, so ``u`` lies in the cone of the samples
    with ``z_i . u = margin`` and the KKT conditions of the hard SVM hold at
    ``w = u / margin``: ``u`` is the l2 max-margin direction and ``gamma_2 =
    margin`` exactly (up to rounding). For ``n = 1`` the single sample is
    ``margin u``.

    Parameters
    ----------
    n : int, default 10
        Number of samples ``N``.
    d : int, default 5
        Dimension.
    margin : float, default 0.5
        The l2 max margin ``gamma_2`` (> 0).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.
    spread : float, default 1.0
        Scale of the extra distance of non-support samples from the boundary.

    Returns
    -------
    Dataset
        Named ``"with_margin"``; ``notes`` give ``u`` for ``d <= 10``.
    """
    n, d, seed = _count(n, "n"), _count(d, "d"), _seed(seed)
    margin = _positive(margin, "margin")
    spread = _positive(spread, "spread")
    rng = np.random.default_rng(seed)
    spec = {
        "generator": "with_margin",
        "n": n,
        "d": d,
        "margin": margin,
        "seed": seed,
        "spread": spread,
    }

    # Direction u and the samples' components orthogonal to it.
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    G = rng.standard_normal((n, d))
    G -= np.outer(G @ u, u)

    # Components along u: at least margin, the first two exactly margin, mirrored.
    t = margin + spread * np.abs(rng.standard_normal(n))
    t[: min(n, 2)] = margin
    if n == 1:
        G[0] = 0.0
    else:
        G[1] = -G[0]
    Z = t[:, None] * u + G
    y = rng.choice(np.array([-1.0, 1.0]), size=n)
    notes = [f"l2 max margin {margin:g} along a random unit direction u"]
    if d <= 10:
        notes.append(f"u = {np.array2string(u, precision=6, separator=', ')}")
    dataset = make_dataset(
        y[:, None] * Z,
        y,
        name="with_margin",
        spec=spec,
        notes=notes,
        provenance=f"theorybox.data.generators.with_margin, seed {seed}",
    )
    return _certify(dataset)


def k17() -> Dataset:
    """The fixed K17 example ``z = [[1, 0, 0], [0, 1, 0], [2, 2, 1]]``, all ``y = +1``.

    Coordinate 3 is touched only by the non-support sample 3: AdamProxy and
    per-sample Adam go to ``(1, 1, 1)/sqrt(3)`` while ``w_2* = (1, 1, 0)/sqrt(2)``
    (cases.md, K17; theory.md, claim 3.3).

    Returns
    -------
    Dataset
        Named ``"k17"``.
    """
    X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [2.0, 2.0, 1.0]])
    dataset = make_dataset(
        X,
        np.ones(3),
        name="k17",
        spec={"generator": "k17"},
        provenance="fixed example K17 of theorybox's cases (shared/cases.md)",
    )
    return _certify(dataset)


#: Generator name -> function; ``load_dataset(name, **params)`` looks names up here.
GENERATORS: dict[str, Callable[..., Dataset]] = {
    "gaussian": gaussian,
    "rademacher": rademacher,
    "shifted_diagonal": shifted_diagonal,
    "with_margin": with_margin,
    "k17": k17,
}
