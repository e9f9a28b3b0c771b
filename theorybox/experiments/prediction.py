"""Prediction versus trajectory: the dual fixed point against AdamProxy and Adam.

Theory.md, claim 3 and sections 4, 6. For a dataset, :func:`predict` finds every
fixed point ``c* = T(c*)`` (many starts), the direction ``w(c*)`` each predicts,
its high-precision certificate and its cosines to ``w_2*`` and to the l_inf face;
then it runs AdamProxy and per-sample Adam (``b1 = 0.9``, ``eps = 0``, no bias
correction, ``b2`` in a grid, cyclic / reshuffled / with-replacement batches of
one sample) and compares each final iterate with every fixed point by

.. math::

    1 - \\cos(w_T, w(c^*_j)) \\quad\\text{and}\\quad
    \\Big\\| \\frac{g(w_T)}{\\sum_i g_i(w_T)} - c^*_j \\Big\\|_1 ,
    \\qquad g_i(w) = \\frac{1}{1 + e^{z_i \\cdot w}} ,

the second being sharper: it tells competing fixed points apart even when their
directions are close. Being a fixed point is necessary for a limit, not
sufficient, so the weight distance is kept at every checkpoint (geometric) and a
run that comes near one point and then leaves is reported.

**Clocks.** One epoch of per-sample Adam moves ``w`` by about ``eta sqrt(N) S /
sqrt(Q)`` and one AdamProxy step (mean loss) by ``eta' S / (N sqrt(Q))``
(theory.md, section 2). With the per-sample schedule ``eta_t = eta0 (t +
t0)^(-a)``, the default AdamProxy schedule is ``eta0' = eta0 N^(1.5 - a)``,
``t0' = t0 / N``: AdamProxy step ``k`` then matches per-sample epoch ``k``.

Data are scaled to ``max |z| = 1`` (directions are invariant to a global scale);
the factor is recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from theorybox.data import Dataset, load_dataset
from theorybox.data.instances import (
    InstanceReport,
    analyse_instance,
    discriminating_gaussian,
    linf_instance,
)
from theorybox.engine import run
from theorybox.engine.run import geometric_checkpoints
from theorybox.metrics import metrics_for
from theorybox.optimizers import Batching, RunConfig, Schedule
from theorybox.records import Record, to_jsonable

__all__ = [
    "PredictionReport",
    "RunComparison",
    "predict",
    "run_prediction_experiments",
    "LINGER_THRESHOLD",
]

logger = logging.getLogger(__name__)

#: A run *lingers* near a fixed point when ``||weights - c*||_1`` falls below this
#: at some checkpoint while the run ends nearer another point.
LINGER_THRESHOLD = 0.05

#: Default per-sample Adam grid (theory.md, section 4: the b2 grid is open).
DEFAULT_B2S = (0.99, 0.999, 0.9999)
DEFAULT_BATCHINGS = ("cyclic", "reshuffle", "replacement")


@dataclass(frozen=True, eq=False)
class RunComparison:
    """One trajectory's final direction and weights against every fixed point.

    Attributes
    ----------
    label : str
        ``"AdamProxy"`` or ``"Adam b2=<b2> <batching>"``.
    config : RunConfig
    status : str
        The engine's status (``"ok"``, ``"stalled"``, ``"nonfinite"``).
    direction : numpy.ndarray
        ``w_T / ||w_T||_2``.
    weights : numpy.ndarray
        ``g_i(w_T) / sum_j g_j(w_T)``.
    one_minus_cos : numpy.ndarray
        ``1 - cos(w_T, w(c*_j))`` for each fixed point ``j``.
    weight_l1 : numpy.ndarray
        ``||weights - c*_j||_1`` for each ``j``.
    one_minus_cos_l2, one_minus_cos_face : float
        ``1 - cos`` to ``w_2*`` and to the nearest point of the l_inf face.
    nearest : int
        The point with the smallest ``weight_l1``.
    steps : numpy.ndarray
        Checkpoint steps.
    weight_history : numpy.ndarray, shape (checkpoints, points)
        ``||weights - c*_j||_1`` at each checkpoint.
    cos_history : numpy.ndarray, shape (checkpoints, points)
        ``1 - cos(w_t, w(c*_j))`` at each checkpoint.
    lingered : list of dict
        Points other than ``nearest`` the run came within
        :data:`LINGER_THRESHOLD` of (``point``, ``t``, ``weight_l1``).
    wall_time : float
    """

    label: str
    config: RunConfig
    status: str
    direction: np.ndarray
    weights: np.ndarray
    one_minus_cos: np.ndarray
    weight_l1: np.ndarray
    one_minus_cos_l2: float
    one_minus_cos_face: float
    nearest: int
    steps: np.ndarray
    weight_history: np.ndarray
    cos_history: np.ndarray
    lingered: list = field(default_factory=list)
    wall_time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary."""
        return to_jsonable(
            {
                "label": self.label,
                "config": self.config.to_dict(),
                "status": self.status,
                "direction": self.direction,
                "weights": self.weights,
                "one_minus_cos": self.one_minus_cos,
                "weight_l1": self.weight_l1,
                "one_minus_cos_l2": self.one_minus_cos_l2,
                "one_minus_cos_face": self.one_minus_cos_face,
                "nearest": self.nearest,
                "steps": self.steps,
                "weight_history": self.weight_history,
                "cos_history": self.cos_history,
                "lingered": self.lingered,
                "wall_time": self.wall_time,
            }
        )


@dataclass(frozen=True, eq=False)
class PredictionReport:
    """The fixed points of one dataset and the trajectories compared with them.

    Attributes
    ----------
    name : str
    spec : dict
        The dataset's spec (enough to rebuild it).
    notes : list of str
        The dataset's notes and the scaling.
    instance : InstanceReport
        Fixed points, certificates, references and cosines (scaled data).
    runs : list of RunComparison
    settings : dict
        Horizons, schedules, grids, fixed-point settings, the clock.
    series : dict
        Run label to the metrics rows at checkpoints (for plots).
    wall_time : float
    """

    name: str
    spec: dict
    notes: list
    instance: InstanceReport
    runs: list[RunComparison]
    settings: dict
    series: dict = field(default_factory=dict)
    wall_time: float = 0.0

    def fixed_point_rows(self) -> list[dict[str, Any]]:
        """One row per fixed point: support, residual, cosines, certificate."""
        rows = []
        for j, p in enumerate(self.instance.fixed_points.points):
            cert = p.certificate
            rows.append(
                {
                    "point": j,
                    "support": p.support.tolist(),
                    "residual": p.residual,
                    "one_minus_cos_l2": float(1.0 - self.instance.cos_l2[j]),
                    "one_minus_cos_face": float(1.0 - self.instance.cos_face[j]),
                    "certificate_ok": bool(cert.ok),
                    "stationarity": cert.stationarity,
                    "complementarity": cert.complementarity,
                    "duality_gap": cert.duality_gap,
                    "tolerance": cert.tolerance,
                    "direction_group": p.direction_group,
                }
            )
        return rows

    def run_rows(self) -> list[dict[str, Any]]:
        """One row per run, against its nearest fixed point."""
        return [
            {
                "run": r.label,
                "steps": r.config.steps,
                "nearest": r.nearest,
                "1-cos_pred": float(r.one_minus_cos[r.nearest]),
                "|weights-c*|_1": float(r.weight_l1[r.nearest]),
                "1-cos_l2": r.one_minus_cos_l2,
                "1-cos_face": r.one_minus_cos_face,
                "lingered": ",".join(str(x["point"]) for x in r.lingered) or "-",
                "status": r.status,
            }
            for r in self.runs
        ]

    def format(self) -> str:
        """A readable multi-line report (what ``theorybox predict`` prints)."""
        from theorybox.experiments.report import format_table

        inst = self.instance
        fp = inst.fixed_points
        lines = [
            f"dataset {self.name}: N={inst.Z.shape[0]}, d={inst.Z.shape[1]}, "
            f"Z scaled by {inst.scale:.6g} to max|z| = 1",
            f"references: gamma_2 {inst.references.l2.gamma:.6g}, gamma_inf "
            f"{inst.references.face.gamma:.6g}, distance w_2* to l_inf face "
            f"(d2inf) {inst.references.d2inf:.4g}",
            f"fixed points: {len(fp.runs)} runs, {int(fp.converged.sum())} converged, "
            f"{len(fp.points)} point(s), {fp.n_directions} direction(s)",
            format_table(self.fixed_point_rows()),
            "",
            "trajectories (schedules and horizons in settings):",
            format_table(self.run_rows()),
        ]
        for note in self.notes:
            lines.append(f"note: {note}")
        s = self.settings
        lines.append(
            f"settings: per-sample Adam {s['adam_steps']} steps, eta_t = "
            f"{s['schedule']['eta0']:g} (t + {s['schedule']['t0']:g})^-"
            f"{s['schedule']['a']:g}, b1 = {s['b1']}, eps = 0; AdamProxy "
            f"{s['proxy_steps']} steps, eta0 = {s['proxy_schedule']['eta0']:.4g}, "
            f"t0 = {s['proxy_schedule']['t0']:.4g}, a = "
            f"{s['proxy_schedule']['a']:g} ({s['clock']})"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary of everything but the per-checkpoint series."""
        inst = self.instance
        return to_jsonable(
            {
                "name": self.name,
                "spec": self.spec,
                "notes": self.notes,
                "N": inst.Z.shape[0],
                "d": inst.Z.shape[1],
                "scale": inst.scale,
                "references": {
                    "w2": inst.references.l2.w,
                    "gamma2": inst.references.l2.gamma,
                    "winf_vertex": inst.references.linf.w,
                    "gamma_inf": inst.references.face.gamma,
                    "d2inf": inst.references.d2inf,
                },
                "fixed_points": [
                    {**row, "c": p.c, "w": p.w, "certificate": p.certificate.to_dict()}
                    for row, p in zip(
                        self.fixed_point_rows(), inst.fixed_points.points, strict=True
                    )
                ],
                "n_directions": inst.fixed_points.n_directions,
                "runs": [r.to_dict() for r in self.runs],
                "settings": self.settings,
                "wall_time": self.wall_time,
            }
        )

    def records(self, label: str | None = None) -> list[Record]:
        """One ``reference`` record for the fixed points and one ``run`` record per
        trajectory, in the shared schema."""
        label = label or self.name
        inst = self.instance
        out = [
            Record(
                kind="reference",
                name=f"{label}/fixed-points",
                data=dict(self.spec),
                settings=dict(self.settings["fixed_point"]),
                measured={"fixed_points": self.fixed_point_rows()},
                predicted={"w": inst.prediction, "c": inst.c},
                notes=list(self.notes),
            )
        ]
        for r in self.runs:
            nearest = r.nearest
            out.append(
                Record(
                    kind="run",
                    name=f"{label}/{r.label}",
                    data=dict(self.spec),
                    settings=r.config.to_dict(),
                    measured={
                        "direction": r.direction,
                        "weights": r.weights,
                        "one_minus_cos": r.one_minus_cos,
                        "weight_l1": r.weight_l1,
                        "one_minus_cos_l2": r.one_minus_cos_l2,
                        "one_minus_cos_face": r.one_minus_cos_face,
                        "nearest": nearest,
                        "lingered": r.lingered,
                    },
                    predicted={
                        "w": inst.fixed_points.points[nearest].w,
                        "c": inst.fixed_points.points[nearest].c,
                    },
                    status=r.status,
                    notes=list(self.notes),
                )
            )
        return out


def _label(config: RunConfig) -> str:
    """A short run label."""
    if config.optimizer == "adamproxy":
        return "AdamProxy"
    return f"Adam b2={config.hyper['b2']:g} {config.batching.scheme}"


def clock_matched_schedule(schedule: Schedule, n: int) -> Schedule:
    """AdamProxy's schedule on the per-sample epoch clock (module notes).

    .. math::

        \\eta'_0 = \\eta_0 N^{3/2 - a}, \\qquad t'_0 = t_0 / N .
    """
    return Schedule(
        schedule.eta0 * n ** (1.5 - schedule.a), schedule.t0 / n, schedule.a
    )


def _compare(
    z: np.ndarray,
    inst: InstanceReport,
    config: RunConfig,
    per_decade: int,
) -> tuple[RunComparison, list[dict]]:
    """Run ``config`` and compare it with every fixed point at each checkpoint."""
    points = inst.fixed_points.points
    refs = inst.references
    metrics = metrics_for(refs, extra={f"p{j}": p.w for j, p in enumerate(points)})
    result = run(
        z,
        config,
        checkpoints=geometric_checkpoints(config.steps, per_decade),
        metrics=metrics,
    )
    rows = result.metrics

    # Distances to every point at every checkpoint.
    cs = np.array([p.c for p in points])
    weight_history = np.array([np.abs(row["weights"] - cs).sum(axis=1) for row in rows])
    cos_history = np.array(
        [[1.0 - row[f"cos_p{j}"] for j in range(len(points))] for row in rows]
    )
    last = rows[-1]
    nearest = int(np.argmin(weight_history[-1]))

    # Points the run came near before ending nearer another one.
    lingered = []
    for j in range(len(points)):
        if j == nearest:
            continue
        k = int(np.argmin(weight_history[:, j]))
        if weight_history[k, j] < LINGER_THRESHOLD:
            lingered.append(
                {"point": j, "t": int(rows[k]["t"]), "weight_l1": weight_history[k, j]}
            )
    comparison = RunComparison(
        label=_label(config),
        config=config,
        status=result.status,
        direction=last["direction"],
        weights=last["weights"],
        one_minus_cos=cos_history[-1],
        weight_l1=weight_history[-1],
        one_minus_cos_l2=float(1.0 - last["cos2"]),
        one_minus_cos_face=float(1.0 - last["cos_face"]),
        nearest=nearest,
        steps=result.steps,
        weight_history=weight_history,
        cos_history=cos_history,
        lingered=lingered,
        wall_time=result.wall_time,
    )
    return comparison, rows


def predict(
    dataset: Dataset | str,
    *,
    adam_steps: int = 1_000_000,
    proxy_steps: int = 1_000_000,
    b1: float = 0.9,
    b2s: Sequence[float] = DEFAULT_B2S,
    batchings: Sequence[str] = DEFAULT_BATCHINGS,
    schedule: Schedule | None = None,
    proxy_schedule: Schedule | None = None,
    n_starts: int = 8,
    seed: int = 0,
    per_decade: int = 4,
    instance: InstanceReport | None = None,
    progress: Callable[[str], None] | None = None,
) -> PredictionReport:
    """Compare the fixed-point prediction with AdamProxy and per-sample Adam.

    Parameters
    ----------
    dataset : Dataset or str
        The data (a name or path goes through :func:`~theorybox.data.load_dataset`).
    adam_steps : int
        Steps of each per-sample Adam run (one sample a step).
    proxy_steps : int
        Steps of the AdamProxy run (one step = one epoch on the matched clock).
    b1 : float
        Adam's first-moment factor ``b1`` (``b1 <= b2`` for every ``b2``).
    b2s : sequence of float
        Adam's second-moment factors ``b2``.
    batchings : sequence of str
        Schemes among ``"cyclic"``, ``"reshuffle"``, ``"replacement"`` (batch 1).
    schedule : Schedule, optional
        Per-sample schedule; default ``eta_t = 0.1 (t + 1)^-0.5`` (the headline's).
    proxy_schedule : Schedule, optional
        AdamProxy's schedule; default :func:`clock_matched_schedule`.
    n_starts : int
        Random starts of the fixed-point search (besides the uniform start).
    seed : int
        Seed of those starts and of the batch orders.
    per_decade : int
        Checkpoints a decade.
    instance : InstanceReport, optional
        A precomputed analysis of the scaled data (skips the fixed-point search).
    progress : callable, optional
        ``progress(message)`` before each stage.

    Returns
    -------
    PredictionReport
    """
    started = time.perf_counter()
    data = load_dataset(dataset) if isinstance(dataset, str) else dataset
    schedule = schedule or Schedule(0.1, 1.0, 0.5)

    # Fixed points, certificates and references on the scaled data.
    if progress:
        progress(f"{data.name}: fixed points from {n_starts + 1} starts, references")
    inst = instance or analyse_instance(data, n_starts=n_starts, seed=seed)
    z = inst.Z
    n = z.shape[0]
    proxy_schedule = proxy_schedule or clock_matched_schedule(schedule, n)

    # The trajectories: AdamProxy, then per-sample Adam over the grid.
    configs = [RunConfig("adamproxy", steps=int(proxy_steps), schedule=proxy_schedule)]
    for b2 in b2s:
        for scheme in batchings:
            configs.append(
                RunConfig(
                    "adam-ps",
                    steps=int(adam_steps),
                    hyper={"b1": b1, "b2": b2},
                    batching=Batching(scheme, 1),
                    schedule=schedule,
                    seed=seed,
                )
            )
    runs, series = [], {}
    for config in configs:
        if progress:
            progress(f"{data.name}: {_label(config)}, {config.steps} steps")
        comparison, rows = _compare(z, inst, config, per_decade)
        runs.append(comparison)
        series[comparison.label] = rows
        logger.info(
            "%s: nearest point %d, 1-cos %.3g, weights %.3g",
            comparison.label,
            comparison.nearest,
            comparison.one_minus_cos[comparison.nearest],
            comparison.weight_l1[comparison.nearest],
        )
    settings = {
        "adam_steps": int(adam_steps),
        "proxy_steps": int(proxy_steps),
        "b1": float(b1),
        "b2s": [float(b) for b in b2s],
        "batchings": list(batchings),
        "schedule": vars(schedule).copy(),
        "proxy_schedule": vars(proxy_schedule).copy(),
        "clock": "AdamProxy step k ~ per-sample epoch k"
        if proxy_schedule == clock_matched_schedule(schedule, n)
        else "AdamProxy schedule given by the caller",
        "per_decade": int(per_decade),
        "linger_threshold": LINGER_THRESHOLD,
        "fixed_point": dict(inst.fixed_points.settings),
        "scale": inst.scale,
    }
    return PredictionReport(
        name=data.name,
        spec=dict(data.spec),
        notes=[*data.notes, f"Z scaled by {inst.scale:.6g} to max |z| = 1"],
        instance=inst,
        runs=runs,
        settings=settings,
        series=series,
        wall_time=time.perf_counter() - started,
    )


#: Path of the two-fixed-point regression dataset, when one was found and shipped.
TWO_FIXED_POINTS_CSV = (
    Path(__file__).resolve().parent.parent
    / "data"
    / "files"
    / "regression_two_fixed_points.csv"
)


def _experiment_datasets(quick: bool) -> list[tuple[str, Any]]:
    """(label, dataset) pairs of :func:`run_prediction_experiments`."""
    from theorybox.data import rademacher

    out: list[tuple[str, Any]] = [
        ("discriminating-gaussian", discriminating_gaussian()[0]),
        ("rademacher", rademacher(n=10, d=8, seed=14)),
        ("linf-instance", linf_instance(d=3, ratio=3.0, seed=0)[0]),
    ]
    if TWO_FIXED_POINTS_CSV.exists():
        out.append(("two-fixed-points", load_dataset(TWO_FIXED_POINTS_CSV)))
    out.append(("iris", load_dataset("iris")))
    if not quick:
        out.append(("digits01", load_dataset("digits01")))
    return out


def run_prediction_experiments(
    quick: bool = False,
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[dict], list[Record], dict]:
    """The prediction experiments of ``theorybox reproduce``.

    Datasets: the certified discriminating Gaussian instance
    (:func:`~theorybox.data.instances.discriminating_gaussian`), the headline's
    generalised-Rademacher draw (prediction ``w_2*``), the l_inf instance
    (:func:`~theorybox.data.instances.linf_instance`, ``d = 3``), the
    two-fixed-point regression set when it ships, iris, and digits01 (left out
    with ``quick``). On each, :func:`predict` with 10^6 steps (10^4 with
    ``quick``, which also drops ``b2 = 0.99`` and the replacement scheme).

    Parameters
    ----------
    quick : bool
        Short horizons and a smaller grid (for tests and smoke runs).
    progress : callable, optional
        ``progress(message)`` before each stage.

    Returns
    -------
    (list of dict, list of Record, dict)
        Table rows (one per fixed point and one per run), records, and ``series``
        keyed by ``(dataset, run label)`` in the format of
        :func:`~theorybox.experiments.report.plot_series`.
    """
    steps = 10_000 if quick else 1_000_000
    b2s = (0.999, 0.9999) if quick else DEFAULT_B2S
    batchings = ("cyclic", "reshuffle") if quick else DEFAULT_BATCHINGS
    rows, records, series = [], [], {}
    for label, data in _experiment_datasets(quick):
        report = predict(
            data,
            adam_steps=steps,
            proxy_steps=steps,
            b2s=b2s,
            batchings=batchings,
            n_starts=2 if quick else 8,
            progress=progress,
        )
        for row in report.fixed_point_rows():
            rows.append(
                {
                    "dataset": label,
                    "what": f"fixed point {row['point']}",
                    "steps": "-",
                    "1-cos_pred": 0.0,
                    "|weights-c*|_1": 0.0,
                    "1-cos_l2": row["one_minus_cos_l2"],
                    "1-cos_face": row["one_minus_cos_face"],
                    "note": f"certificate ok={row['certificate_ok']}",
                }
            )
        for r in report.run_rows():
            rows.append(
                {
                    "dataset": label,
                    "what": r["run"],
                    "steps": r["steps"],
                    "1-cos_pred": r["1-cos_pred"],
                    "|weights-c*|_1": r["|weights-c*|_1"],
                    "1-cos_l2": r["1-cos_l2"],
                    "1-cos_face": r["1-cos_face"],
                    "note": f"point {r['nearest']}, lingered {r['lingered']}, "
                    f"{r['status']}",
                }
            )
        records.extend(report.records(label))
        for run_label, metric_rows in report.series.items():
            series[(label, run_label)] = metric_rows
    return rows, records, series
