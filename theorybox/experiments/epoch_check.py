r"""Check the epoch-wise view of per-sample (incremental) Adam against runs.

Two measurements (theory.md section 2):

* :func:`epoch_displacement_check`: run Inc-Adam (``adam-ps``, cyclic order) with a
  small step and compare the displacement over one epoch, divided by the step,
  with the steady-state epoch map :func:`~theorybox.symbolic.epoch.epoch_map_numeric`
  evaluated at the gradients of the epoch's first iterate. The map predicts
  :math:`w_{(r+1)N} - w_{rN} \approx -\eta E(w_{rN})`.
* :func:`proxy_departure`: the final direction of finite-``b2`` per-sample Adam
  against AdamProxy run on the matched clock (one AdamProxy step per epoch with
  step :math:`\eta N^{3/2}`); :math:`1 - \cos` should shrink as ``b2 -> 1``.

Error model of the epoch map. The map freezes ``w`` and assumes the moving
averages are at their periodic steady state. Both assumptions fail by the change
of the gradients over the averages' memory. Without bias correction the ratio
obeys :math:`|m|/\sqrt{v} \le R = (1-b_1)/\sqrt{(1-b_2)(1-b_1^2/b_2)}` per
coordinate, so one step moves ``w`` by at most :math:`\eta R \sqrt{d}` in l2 and
each loss factor :math:`g_i` by a relative :math:`\le \eta R \sqrt{d} \max\|z_i\|`.
Over a memory of :math:`H = N + 1/(1-b_2)` steps this gives the first-order floor

.. math::

    \text{rel. error} \lesssim \eta \, R \sqrt{d} \, \max_i\|z_i\| \, H,

reached once the start-up transient (:math:`b_2^t` not yet small) has died out.
"""

from __future__ import annotations

import logging

import numpy as np

from theorybox.engine import run
from theorybox.engine.mp import run_precise
from theorybox.optimizers import RunConfig, Schedule
from theorybox.symbolic.epoch import adam_proxy_direction, epoch_map_numeric

__all__ = [
    "epoch_displacement_check",
    "epoch_error_bound",
    "per_sample_grads",
    "proxy_departure",
]

logger = logging.getLogger(__name__)


def per_sample_grads(Z, w) -> np.ndarray:
    r"""Per-sample logistic gradients :math:`\nabla L_i = -g_i z_i`.

    Parameters
    ----------
    Z : array, shape (N, d)
        Rows :math:`z_i = y_i x_i`.
    w : array, shape (d,)

    Returns
    -------
    ndarray, shape (N, d)
        With :math:`g_i = 1/(1+e^{z_i \cdot w})`, evaluated stably.
    """
    Z = np.asarray(Z, dtype=np.float64)
    s = Z @ np.asarray(w, dtype=np.float64)
    g = np.exp(-np.logaddexp(0.0, s))
    return -g[:, None] * Z


def epoch_error_bound(Z, b1: float, b2: float, eta: float) -> float:
    r"""First-order floor :math:`\eta R \sqrt{d} \max\|z_i\| (N + 1/(1-b_2))` of the
    epoch map's relative error (module docstring)."""
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    ratio = (1 - b1) / np.sqrt((1 - b2) * (1 - b1**2 / b2))
    zmax = float(np.max(np.linalg.norm(Z, axis=1)))
    return float(eta * ratio * np.sqrt(d) * zmax * (n + 1.0 / (1.0 - b2)))


def _mean_eta(schedule: Schedule, start: int, n: int) -> float:
    """Mean step size over steps ``start .. start + n - 1``."""
    return float(np.mean([schedule(t) for t in range(start, start + n)]))


def epoch_displacement_check(
    Z,
    b1: float,
    b2: float,
    eta0: float,
    epochs=(1, 10, 100, 1000),
    *,
    backend: str = "float64",
    dps: int = 40,
    a: float = 0.0,
    t0: float = 1.0,
    w0=None,
) -> list[dict]:
    r"""Measured one-epoch displacements of Inc-Adam against the epoch map.

    Parameters
    ----------
    Z : array, shape (N, d)
        Rows :math:`z_i = y_i x_i`.
    b1, b2 : float
        Moving-average factors (no bias correction, ``eps = 0``).
    eta0 : float
        Step size (constant when ``a = 0``).
    epochs : sequence of int
        Epoch indices ``r`` (0-based) at which to measure; the epoch covers steps
        ``rN .. (r+1)N - 1``.
    backend : {"float64", "mpmath"}
        The float64 engine or :func:`~theorybox.engine.mp.run_precise`.
    dps : int
        Digits for the mpmath backend (and for the map it is compared with).
    a, t0 : float
        Schedule :math:`\eta_t = \eta_0 (t + t_0)^{-a}`; the displacement is
        divided by the mean step over the epoch.
    w0 : array, optional
        Start (default 0).

    Returns
    -------
    list of dict
        One row per epoch: ``epoch``, ``step`` (= rN), ``eta`` (mean step),
        ``measured`` and ``predicted`` (arrays, displacement / eta), ``rel_err``
        and ``bound`` (:func:`epoch_error_bound` at ``eta``).
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    epochs = sorted({int(r) for r in epochs})
    if not epochs or epochs[0] < 0:
        raise ValueError(f"epochs = {epochs!r}; give non-negative epoch indices")
    schedule = Schedule(eta0, t0, a)
    steps = (epochs[-1] + 1) * n
    config = RunConfig("adam-ps", steps, hyper={"b1": b1, "b2": b2}, schedule=schedule)
    marks = sorted({r * n for r in epochs} | {(r + 1) * n for r in epochs})

    # Iterates at the start and end of each measured epoch.
    iterates = {}
    if backend == "float64":
        result = run(Z, config, w0=w0, checkpoints=[m for m in marks if m > 0])
        for row in result.metrics:
            iterates[int(row["t"])] = np.asarray(row["w"], dtype=np.float64)
        if result.status != "ok":
            logger.warning("float64 run ended with status %s", result.status)
    elif backend == "mpmath":
        precise = run_precise(
            Z,
            config,
            backend="mpmath",
            dps=dps,
            record=[m for m in marks if m > 0],
            w0=w0,
        )
        for step, w in precise.history.items():
            iterates[int(step)] = precise.as_float(w)
    else:
        raise ValueError(f"backend = {backend!r}; use 'float64' or 'mpmath'")
    iterates[0] = np.zeros(d) if w0 is None else np.asarray(w0, dtype=np.float64)

    # Compare displacement / eta with -E(w_rN), epoch by epoch.
    rows = []
    map_dps = dps if backend == "mpmath" else None
    for r in epochs:
        start, end = r * n, (r + 1) * n
        if start not in iterates or end not in iterates:
            logger.warning("epoch %d not reached; stopping the comparison", r)
            break
        eta = _mean_eta(schedule, start, n)
        measured = (iterates[end] - iterates[start]) / eta
        predicted = -np.asarray(
            epoch_map_numeric(
                per_sample_grads(Z, iterates[start]), b1, b2, dps=map_dps
            ),
            dtype=np.float64,
        )
        scale = np.linalg.norm(predicted)
        rel = float(np.linalg.norm(measured - predicted) / scale) if scale else np.inf
        rows.append(
            {
                "epoch": r,
                "step": start,
                "eta": eta,
                "measured": measured,
                "predicted": predicted,
                "rel_err": rel,
                "bound": epoch_error_bound(Z, b1, b2, eta),
            }
        )
        logger.info("epoch %d: relative error %.3e", r, rel)
    return rows


def _cosine(u, v) -> float:
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return float("nan")
    return float(np.dot(u, v) / (nu * nv))


def proxy_departure(
    Z,
    b2_values=(0.99, 0.999, 0.9999),
    *,
    b1: float = 0.9,
    eta0: float = 1e-3,
    epochs: int = 20000,
    bias_correction: int = 1,
    w0=None,
) -> list[dict]:
    r"""Final-direction departure of finite-``b2`` per-sample Adam from AdamProxy.

    Per-sample Adam runs ``epochs * N`` cyclic steps with constant step ``eta0``;
    AdamProxy runs ``epochs`` steps with constant step :math:`\eta_0 N^{3/2}`, since
    one epoch of the former moves about :math:`\eta\sqrt{N} S/\sqrt{Q}` and one
    step of the latter (mean loss) :math:`\eta S / (N\sqrt{Q})` (theory.md,
    "Clocks"). Both clocks then read the same time at every epoch boundary.

    Parameters
    ----------
    Z : array, shape (N, d)
    b2_values : sequence of float
    b1, eta0 : float
    epochs : int
    bias_correction : int
        Adam's bias correction (1 removes most of the start-up transient, which
        otherwise grows like :math:`1/\sqrt{1-b_2}` and dominates the direction).
    w0 : array, optional

    Returns
    -------
    list of dict
        One row per ``b2``: ``b2``, ``one_minus_cos`` (final iterates),
        ``map_one_minus_cos`` (the epoch map against :math:`\sqrt{N}S/\sqrt{Q}` at
        AdamProxy's final iterate: the departure of the maps themselves),
        ``w_adam``, ``w_proxy``.
    """
    Z = np.asarray(Z, dtype=np.float64)
    n = Z.shape[0]

    # AdamProxy on the matched clock, once.
    proxy = run(
        Z,
        RunConfig("adamproxy", epochs, schedule=Schedule(eta0 * n**1.5, 1.0, 0.0)),
        w0=w0,
        checkpoints=[epochs],
    )
    w_proxy = proxy.w.copy()
    grads = per_sample_grads(Z, w_proxy)

    # Per-sample Adam for each b2, compared by direction.
    rows = []
    for b2 in b2_values:
        config = RunConfig(
            "adam-ps",
            epochs * n,
            hyper={"b1": b1, "b2": b2, "bias_correction": bias_correction},
            schedule=Schedule(eta0, 1.0, 0.0),
        )
        w_adam = run(Z, config, w0=w0, checkpoints=[epochs * n]).w.copy()
        gap = 1.0 - _cosine(w_adam, w_proxy)
        map_gap = 1.0 - _cosine(
            epoch_map_numeric(grads, b1, b2), adam_proxy_direction(grads, "epoch")
        )
        rows.append(
            {
                "b2": b2,
                "one_minus_cos": gap,
                "map_one_minus_cos": map_gap,
                "w_adam": w_adam,
                "w_proxy": w_proxy,
            }
        )
        logger.info("b2 = %s: 1 - cos = %.3e", b2, gap)
    return rows
