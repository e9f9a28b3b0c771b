r"""Batch-size sweep: mini-batch Adam moves from the per-sample prediction to l_inf.

Theory.md, section 4 ("Batch-size sweep"): already at ``b = 5`` Adam departs from
the ``b = 1`` direction, and at ``b = N`` it is l_inf. For each batch size ``b``
this module runs

* mini-batch Adam (``"adam-mb"``, random reshuffling into batches of ``b``;
  ``b = N`` is full batch), ``epochs`` epochs of ``ceil(N / b)`` steps;
* the mini-batch proxy ``Phi_{N,b}`` (``"phi-proxy"`` with ``n = N``), the
  ``b2 -> 1`` limit of the former, one step per epoch;

and measures each final direction against the per-sample prediction ``w(c*)``
(:func:`~theorybox.proxy.solve_fixed_point`), ``w_2*``, the l_inf max-margin face
and the l_inf margin gap. It also evaluates the CONJECTURED batch-size-``b``
prediction (:func:`~theorybox.proxy.batch.conjectured_batch_prediction`) and
reports ``1 - cos`` between it and both runs: a measurement of a conjecture, which
may well fail.

Clocks: an Adam step sees ``b`` samples, and one epoch of ``N / b`` steps moves
``w`` by about ``N / b`` times ``-eta Phi_{N,b}`` (theory.md, section 2: at ``b = 1``
the epoch moves ``sqrt(N) S / sqrt(Q) = N Phi_{N,1}``; at ``b = N`` the step is
``sign(S) = Phi_{N,N}``). So ``Phi_{N,b}`` is the average displacement of one Adam
step, and by default the proxy takes as many steps as Adam, with the same
per-step schedule. At equal epochs the ``b = 1`` run has taken ``N`` times as many
steps as the ``b = N`` run; rows state steps and epochs.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from theorybox.data import check_separable, load_dataset
from theorybox.engine import run
from theorybox.engine.run import as_z, geometric_checkpoints
from theorybox.errors import InvalidParameterError, SolverAccuracyWarning
from theorybox.metrics import cosine, direction_distance, metrics_for
from theorybox.optimizers import Batching, RunConfig, Schedule
from theorybox.proxy import FixedPointWarning, predicted_direction, solve_fixed_point
from theorybox.proxy.batch import conjectured_batch_prediction
from theorybox.records import Record
from theorybox.references import compute_references, project_to_face

__all__ = [
    "BatchSweep",
    "HEADLINE_INSTANCE",
    "batch_size_sweep",
    "default_batch_sizes",
    "phi_proxy_config",
    "run_batch_experiment",
]

logger = logging.getLogger(__name__)

#: The headline Gaussian instance (scaled to max |z| = 1 before use).
HEADLINE_INSTANCE = ("gaussian", {"n": 20, "d": 10, "seed": 0})

#: Fewer starts than the proxy module's default: at b = N the fixed point is a point
#: of the l_inf face and runs from random starts often wander without converging.
CONJECTURE_DEFAULTS = {"n_starts": 2, "max_iter": 300}

#: Columns of the printed table, in order.
TABLE_COLUMNS = (
    "b",
    "epochs",
    "adam_steps",
    "adam_dist_pred1",
    "adam_dist_l2",
    "adam_dist_face",
    "adam_gap_inf",
    "phi_dist_pred1",
    "phi_dist_face",
    "phi_gap_inf",
    "dist_phi_adam",
    "adam_1mcos_pred1",
    "conj_1mcos_adam",
    "phi_1mcos_pred1",
    "conj_1mcos_phi",
    "conj_certified",
)


def default_batch_sizes(n: int) -> tuple[int, ...]:
    """``(1, 2, 5, N // 2, N)`` restricted to ``[1, N]``, sorted, without repeats."""
    return tuple(sorted({b for b in (1, 2, 5, n // 2, n) if 1 <= b <= n}))


def phi_proxy_config(
    Z: Any, b: int, steps: int, schedule: Schedule | None = None, **kwargs
) -> RunConfig:
    """A ``"phi-proxy"`` run configuration with ``n`` set to the data's ``N``.

    The registry's check cannot see the data, so ``n = N`` is enforced here.

    Parameters
    ----------
    Z : array_like, shape (N, d)
    b : int
        Batch size, ``1 <= b <= N``.
    steps : int
    schedule : Schedule, optional
    **kwargs
        Further :class:`~theorybox.optimizers.RunConfig` fields (``seed``, ``loss``).
    """
    n = as_z(Z).shape[0]
    hyper = dict(kwargs.pop("hyper", {}))
    if "n" in hyper and hyper["n"] != n:
        raise InvalidParameterError(
            f"phi-proxy: n = {hyper['n']!r} but the data have N = {n} samples; n must "
            "equal N (G is the mean gradient, S = N G the sum)"
        )
    hyper.update(n=n, b=b)
    return RunConfig(
        "phi-proxy", steps, hyper=hyper, schedule=schedule or Schedule(), **kwargs
    )


@dataclass(frozen=True, eq=False)
class BatchSweep:
    """Result of :func:`batch_size_sweep`.

    Attributes
    ----------
    rows : list of dict
        One row per batch size (see :data:`TABLE_COLUMNS` and the extra keys).
    series : dict
        ``("adam", b)`` and ``("phi", b)`` to the checkpoint metrics.
    finals : dict
        ``("adam", b)`` and ``("phi", b)`` to the final unit-l2 direction.
    prediction : numpy.ndarray
        The per-sample (``b = 1``) prediction ``w(c*)``, unit l2.
    conjectures : dict of int to BatchPrediction
        The CONJECTURED fixed points (empty when ``conjecture=False``).
    settings : dict
    wall_time : float
    """

    rows: list[dict]
    series: dict
    finals: dict
    prediction: np.ndarray
    conjectures: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    wall_time: float = 0.0


def _drift(metrics: list[dict]) -> float:
    """Distance between the last direction and the one about a decade earlier."""
    steps = np.array([row["t"] for row in metrics])
    last = metrics[-1]
    j = int(np.searchsorted(steps, steps[-1] / 10.0))
    j = min(j, len(metrics) - 1)
    return direction_distance(last["direction"], metrics[j]["direction"])


def batch_size_sweep(
    Z: Any,
    bs: Any = None,
    *,
    epochs: int = 10_000,
    proxy_steps: int | None = None,
    b1: float = 0.9,
    b2: float = 0.999,
    schedule: Schedule | None = None,
    seed: int = 0,
    per_decade: int = 4,
    conjecture: bool = True,
    conjecture_options: dict | None = None,
    refs=None,
    prediction: Any = None,
    progress: Callable[[str], None] | None = None,
) -> BatchSweep:
    r"""Run mini-batch Adam and ``Phi_{N,b}`` for each batch size; measure directions.

    For each ``b`` the final directions ``u`` of both runs are compared with

    .. math::

        \hat w_1 = w(c^*) \ (\text{the } b = 1 \text{ prediction}), \quad
        w_2^*, \quad \operatorname{proj}_F(u) \ (\text{the l_inf face}), \quad
        \gamma_\infty - \min_i z_i \cdot u / \|u\|_\infty,

    by cosine and by the distance of unit vectors, and with each other. The
    CONJECTURED prediction ``w_b`` (:mod:`theorybox.proxy.batch`) is scored by
    ``1 - cos(w_b, u)``.

    Parameters
    ----------
    Z : array_like or Dataset, shape (N, d)
        Separable rows ``z_i = y_i x_i`` (scale them to ``max |z| = 1``).
    bs : sequence of int, optional
        Batch sizes; default :func:`default_batch_sizes`. ``b = N`` runs full batch.
    epochs : int
        Adam epochs per batch size (``epochs * ceil(N / b)`` steps).
    proxy_steps : int, optional
        ``Phi_{N,b}`` steps; default the Adam run's steps (the same clock, see the
        module notes).
    b1, b2 : float
        Adam's moving-average factors (``eps = 0``, no bias correction).
    schedule : Schedule, optional
        Per-step learning rates; default ``0.1 (t + 1)^{-1/2}``.
    seed : int
        Batch-order stream of the reshuffled runs.
    per_decade : int
        Checkpoints per decade of steps.
    conjecture : bool
        Also compute the conjectured fixed point for each ``b``.
    conjecture_options : dict, optional
        Passed to :func:`~theorybox.proxy.batch.conjectured_batch_prediction`.
    refs : References, optional
        Precomputed :func:`~theorybox.references.compute_references`.
    prediction : array_like, optional
        Precomputed ``b = 1`` prediction (else :func:`solve_fixed_point`).
    progress : callable, optional
        Receives one line per stage.

    Returns
    -------
    BatchSweep
    """
    started = time.perf_counter()
    z = as_z(Z)
    n = z.shape[0]
    bs = default_batch_sizes(n) if bs is None else tuple(int(b) for b in bs)
    bad = [b for b in bs if not 1 <= b <= n]
    if bad:
        raise InvalidParameterError(f"batch sizes {bad} are outside [1, N] = [1, {n}]")
    if int(epochs) < 1:
        raise InvalidParameterError(f"epochs = {epochs!r}; use at least 1")
    schedule = schedule or Schedule(eta0=0.1, t0=1.0, a=0.5)
    say = progress or (lambda message: logger.info("%s", message))
    conjecture_options = {**CONJECTURE_DEFAULTS, **(conjecture_options or {})}

    # References: w_2*, the l_inf face, and the b = 1 (per-sample) prediction.
    say(f"batch sweep: N = {n}, d = {z.shape[1]}, b in {list(bs)}; references")
    refs = refs if refs is not None else compute_references(z)
    if prediction is None:
        prediction = predicted_direction(solve_fixed_point(z))
    w_pred = np.asarray(prediction, dtype=np.float64)
    w_pred = w_pred / np.linalg.norm(w_pred)
    w2 = refs.l2.w / np.linalg.norm(refs.l2.w)

    rows, series, finals, conjectures = [], {}, {}, {}
    for b in bs:
        # The CONJECTURED batch-size-b prediction (may fail to converge).
        w_conj = None
        if conjecture:
            say(f"b = {b}: CONJECTURED fixed point")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FixedPointWarning)
                warnings.simplefilter("ignore", SolverAccuracyWarning)
                pred = conjectured_batch_prediction(z, b, **conjecture_options)
            say(pred.summary())
            conjectures[b] = pred
            if pred.points:
                w_conj = pred.w
        extra = {"pred1": w_pred} | ({"conj": w_conj} if w_conj is not None else {})
        metrics = metrics_for(refs, extra=extra)

        # Mini-batch Adam (b = N is full batch) and the proxy Phi_{N,b}.
        batching = Batching("full") if b == n else Batching("reshuffle", b)
        adam_steps = int(epochs) * (-(-n // b))
        phi_steps = adam_steps if proxy_steps is None else int(proxy_steps)
        configs = {
            "adam": RunConfig(
                "adam-mb",
                adam_steps,
                hyper={"b1": b1, "b2": b2},
                batching=batching,
                schedule=schedule,
                seed=seed,
            ),
            "phi": phi_proxy_config(z, b, phi_steps, schedule),
        }
        last = {}
        for kind, config in configs.items():
            say(f"b = {b}: {config.optimizer}, {config.steps} steps")
            result = run(
                z,
                config,
                checkpoints=geometric_checkpoints(config.steps, per_decade),
                metrics=metrics,
            )
            series[(kind, b)] = result.metrics
            finals[(kind, b)] = result.metrics[-1]["direction"]
            last[kind] = dict(
                result.metrics[-1], status=result.status, drift=_drift(result.metrics)
            )

        # One row: distances of both runs, to each other, and the conjecture's fit.
        u_adam, u_phi = finals[("adam", b)], finals[("phi", b)]
        row = {
            "b": b,
            "epochs": int(epochs),
            "adam_steps": adam_steps,
            "phi_steps": phi_steps,
        }
        for kind in ("adam", "phi"):
            m = last[kind]
            row[f"{kind}_cos_pred1"] = m["cos_pred1"]
            row[f"{kind}_1mcos_pred1"] = 1.0 - m["cos_pred1"]
            row[f"{kind}_dist_pred1"] = m["dist_pred1"]
            row[f"{kind}_cos_l2"] = m["cos2"]
            row[f"{kind}_dist_l2"] = m["dist2"]
            row[f"{kind}_cos_face"] = m["cos_face"]
            row[f"{kind}_dist_face"] = m["dist_face"]
            row[f"{kind}_gap_inf"] = m["gap_inf"]
            row[f"{kind}_drift"] = m["drift"]
            row[f"{kind}_status"] = m["status"]
        row["dist_phi_adam"] = direction_distance(u_phi, u_adam)
        nan = float("nan")
        row["conj_1mcos_phi"] = nan if w_conj is None else 1 - cosine(w_conj, u_phi)
        row["conj_1mcos_adam"] = nan if w_conj is None else 1 - cosine(w_conj, u_adam)
        row["conj_1mcos_pred1"] = nan if w_conj is None else 1 - cosine(w_conj, w_pred)
        row["conj_dist_face"] = nan if w_conj is None else _face_dist(refs, w_conj)
        pred = conjectures.get(b)
        row["conj_certified"] = bool(pred is not None and pred.certified)
        row["conj_points"] = 0 if pred is None else len(pred.points)
        row["dist_l2_pred1"] = direction_distance(w2, w_pred)
        rows.append(row)
        logger.info("batch sweep row: %s", row)

    return BatchSweep(
        rows=rows,
        series=series,
        finals=finals,
        prediction=w_pred,
        conjectures=conjectures,
        settings={
            "bs": list(bs),
            "epochs": int(epochs),
            "proxy_steps": proxy_steps,
            "conjecture_options": dict(conjecture_options),
            "b1": b1,
            "b2": b2,
            "schedule": {"eta0": schedule.eta0, "t0": schedule.t0, "a": schedule.a},
            "seed": int(seed),
        },
        wall_time=time.perf_counter() - started,
    )


def _face_dist(refs, u: np.ndarray) -> float:
    """Distance of unit vectors between ``u`` and its nearest l_inf face point."""
    u = np.asarray(u, dtype=np.float64)
    return direction_distance(u, project_to_face(refs.face, u / np.abs(u).max()))


def run_batch_experiment(
    quick: bool = False,
    *,
    epochs: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[dict], list[Record], dict]:
    """The batch-size sweep on the headline Gaussian instance, for ``reproduce``.

    ``gaussian(n=20, d=10, seed=0)`` scaled to ``max |z| = 1``; batch sizes
    ``(1, 2, 5, 10, 20)``; Adam with ``b1 = 0.9``, ``b2 = 0.999``, ``eps = 0``;
    ``eta_t = 0.1 (t + 1)^{-1/2}`` per step.

    Parameters
    ----------
    quick : bool
        ``epochs = 1_000`` instead of ``100_000`` (a smoke test, not a result).
    epochs : int, optional
        Override the horizon.
    progress : callable, optional

    Returns
    -------
    (rows, records, series)
        Table rows (:data:`TABLE_COLUMNS` first), one ``"sweep-row"``
        :class:`~theorybox.records.Record` per batch size, and ``series`` keyed
        ``("gaussian-batch", label)`` for :func:`~theorybox.experiments.report.
        plot_series`.
    """
    name, params = HEADLINE_INSTANCE
    epochs = int(epochs if epochs is not None else (1_000 if quick else 100_000))

    # Data, scaled to max |z| = 1, with a separability certificate.
    data = load_dataset(name, **params)
    z = data.Z / np.abs(data.Z).max()
    check_separable(z)

    # The sweep, then rows, records and plot series.
    sweep = batch_size_sweep(z, epochs=epochs, progress=progress)
    rows, records, series = [], [], {}
    for row in sweep.rows:
        b = row["b"]
        ordered = {k: row[k] for k in TABLE_COLUMNS} | row
        rows.append(ordered)
        pred = sweep.conjectures.get(b)
        records.append(
            Record(
                kind="sweep-row",
                name=f"gaussian/batch-size/b={b}",
                data=dict(data.spec),
                settings=dict(sweep.settings, b=b),
                measured={k: v for k, v in row.items() if not k.startswith("conj")},
                predicted={
                    "b1_prediction": sweep.prediction,
                    "CONJECTURE_direction": None
                    if not pred or not pred.points
                    else pred.w,
                    "CONJECTURE_fit": {
                        k: v for k, v in row.items() if k.startswith("conj")
                    },
                },
                notes=[
                    *data.notes,
                    "Z scaled to max |z| = 1",
                    "predicted['CONJECTURE_*'] is a conjectured fixed point of T_b "
                    "(theorybox.proxy.batch), not a theorem",
                ],
            )
        )
        series[("gaussian-batch", f"Adam b={b}")] = sweep.series[("adam", b)]
        series[("gaussian-batch", f"Phi b={b}")] = sweep.series[("phi", b)]
    return rows, records, series
