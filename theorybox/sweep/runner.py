"""Run a sweep on Dask: one task per cell, one tidy row per task, resumable.

Each cell is one Dask task submitted with a unique key and ``pure=False``, so
two cells are never merged by Dask's argument-hash cache (cases.md K16); the
spec already refuses two cells with one configuration. A task loads its dataset,
computes the reference directions (cached per worker process, one solve per
dataset), runs the optimizer, and returns one row: a
:class:`~theorybox.records.Record` of kind ``"sweep-row"``, flattened.

Rows are appended to ``rows.jsonl`` in the output directory as tasks finish; a
restarted sweep reads it and skips the cells whose ids it finds. A cell that
raises is recorded with status ``"error"`` and its cause; a cell whose worker
dies is recorded as ``"killed (memory)"`` when the worker's nanny reported a
memory-limit restart, otherwise ``"killed (worker died)"``; a cell that reaches
``[sweep] time_limit_s`` stops with status ``"time limit"`` and the metrics of
the step it reached. The sweep goes on.
When the loop ends the rows are written as one table (``sweep.csv``, and
``sweep.parquet`` when pyarrow is importable) and a plot of the final
``1 - cos`` of every cell.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from theorybox.records import Record, to_jsonable
from theorybox.sweep.spec import Cell, SweepSpec, check_distinct

__all__ = [
    "FAILED_STATUSES",
    "ROW_COLUMNS",
    "SweepResult",
    "plot_sweep",
    "read_rows",
    "run_cell",
    "run_sweep",
    "write_table",
]

logger = logging.getLogger(__name__)

#: File names inside a sweep's output directory.
ROWS_FILE = "rows.jsonl"
TABLE_FILE = "sweep.csv"
PARQUET_FILE = "sweep.parquet"
PLOT_FILE = "final_1mcos.png"

#: Statuses of a cell that produced no measurement.
FAILED_STATUSES = ("error", "killed (memory)", "killed (worker died)", "time limit")

#: Columns of the tidy table, in order; ``hyper_<name>`` columns follow ``hyper``.
ROW_COLUMNS = (
    "cell_id", "sweep", "dataset", "optimizer", "hyper", "batching", "batch_size",
    "eta0", "t0", "a", "loss", "seed", "steps", "steps_done", "status", "error",
    "wall_time",
    "cos2", "one_minus_cos2", "cos_face", "one_minus_cos_face", "cos_inf_vertex",
    "gap2", "gap_inf", "margin2", "margin_inf", "log10_loss", "norm2",
    "stall_step", "gamma2", "gamma_inf", "l2_linf_gap", "d2inf", "discriminating",
    "worker", "dataset_spec", "kind", "schema", "created",
)

#: Final metrics copied from the run into the row.
_METRIC_KEYS = ("cos2", "cos_face", "cos_inf_vertex", "gap2", "gap_inf", "margin2",
                "margin_inf", "log10_loss", "norm2")


# Worker side.

_REFERENCE_LOCK = threading.Lock()
_REFERENCE_CACHE: dict[str, tuple] = {}


def _dataset_and_references(dataset: dict):
    """Load a cell's dataset and its references, once per worker process."""
    key = json.dumps({"source": dataset["source"], "params": dataset["params"]},
                     sort_keys=True)
    with _REFERENCE_LOCK:
        if key not in _REFERENCE_CACHE:
            from theorybox.data import load_dataset
            from theorybox.references import compute_references

            data = load_dataset(dataset["source"], **dataset["params"])
            _REFERENCE_CACHE[key] = (data, compute_references(data.Z))
        return _REFERENCE_CACHE[key]


def _test_hooks(test: dict) -> None:
    """Test-only failures (``_test_allocate_mb``, ``_test_raise``)."""
    if "raise" in test:
        kind = {"MemoryError": MemoryError, "RuntimeError": RuntimeError}[test["raise"]]
        raise kind("test-only failure requested by _test_raise")
    if "allocate_mb" in test:
        # Grow in 8 MiB blocks, touching every page, then hold for a while so
        # that a nanny with a smaller memory limit sees it and kills the worker.
        blocks = []
        for _ in range(int(test["allocate_mb"]) // 8):
            blocks.append(bytearray(b"\1" * (8 << 20)))
            time.sleep(0.01)
        time.sleep(5.0)
        del blocks


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return ""


def run_cell(cell: dict) -> dict:
    """Run one cell and return its tidy row; exceptions become an error row.

    Parameters
    ----------
    cell : dict
        :meth:`Cell.to_dict`.

    Returns
    -------
    dict
        A flattened ``"sweep-row"`` record (:data:`ROW_COLUMNS`).
    """
    started = time.perf_counter()
    try:
        _test_hooks(cell["test"])
        from theorybox.engine import run
        from theorybox.metrics import metrics_for
        from theorybox.optimizers import RunConfig

        # References of the dataset (cached), then the run to the horizon.
        data, refs = _dataset_and_references(cell["dataset"])
        config = RunConfig.from_dict(cell["config"])
        metrics = metrics_for(refs, config.loss)
        result = run(data.Z, config, checkpoints=[config.steps], metrics=metrics,
                     time_limit=cell.get("time_limit"))

        # The run's final metrics and the dataset's figures, as a record.
        final = result.metrics[-1] if result.metrics else {}
        measured = {k: final[k] for k in _METRIC_KEYS if k in final}
        measured.update(
            steps_done=int(result.state.t[0]),
            stall_step=result.stall_step,
            gamma2=refs.l2.gamma,
            gamma_inf=refs.linf.gamma,
            l2_linf_gap=refs.l2_linf_gap,
            d2inf=refs.d2inf,
            discriminating=refs.discriminating,
            wall_time=time.perf_counter() - started,
        )
        record = Record(
            kind="sweep-row",
            name=f"{cell['dataset']['label']}/{config.optimizer}",
            data=dict(data.spec),
            settings=config.to_dict(),
            measured=measured,
            status=result.status,
            notes=list(result.messages),
        )
        error = "; ".join(result.messages)
        if result.status == "time limit":
            error += ("; a sweep keeps no state: rerun the cell with a larger "
                      "[sweep] time_limit_s and --retry-failed")
    except Exception as exc:  # noqa: BLE001 - a failed cell is data, not a crash
        logger.warning("cell %s failed: %s: %s", cell["id"], type(exc).__name__, exc)
        return failed_row(cell, "error", f"{type(exc).__name__}: {exc}",
                          time.perf_counter() - started)
    row = flatten(record, cell)
    row["error"] = error
    return row


# Rows.


def flatten(record: Record, cell: dict) -> dict:
    """A ``"sweep-row"`` record as one flat row of the tidy table."""
    settings = record.settings or cell["config"]
    hyper = settings.get("hyper", {})
    row = {
        "cell_id": cell["id"],
        "sweep": cell.get("sweep", ""),
        "dataset": cell["dataset"]["label"],
        "optimizer": settings["optimizer"],
        "hyper": json.dumps(hyper, sort_keys=True),
        **{f"hyper_{k}": v for k, v in hyper.items()},
        "batching": settings["batching"]["scheme"],
        "batch_size": settings["batching"]["batch_size"],
        "eta0": settings["schedule"]["eta0"],
        "t0": settings["schedule"]["t0"],
        "a": settings["schedule"]["a"],
        "loss": settings["loss"],
        "seed": settings["seed"],
        "steps": settings["steps"],
        "status": record.status,
        "error": "",
        "worker": _worker_address(),
        "dataset_spec": json.dumps(record.data or cell["dataset"], sort_keys=True),
        "kind": record.kind,
        "schema": record.schema,
        "created": record.created,
    }
    for key, value in record.measured.items():
        row[key] = value
    for key in ("cos2", "cos_face"):
        if key in row and row[key] is not None:
            row[f"one_minus_{key}"] = 1.0 - float(row[key])
    return to_jsonable(row)


def failed_row(cell: dict, status: str, cause: str, wall_time: float) -> dict:
    """The row of a cell that produced no measurement."""
    record = Record(kind="sweep-row",
                    name=f"{cell['dataset']['label']}/{cell['config']['optimizer']}",
                    data={}, settings=cell["config"],
                    measured={"wall_time": wall_time}, status=status,
                    notes=[cause])
    row = flatten(record, cell)
    row["error"] = cause
    return row


def read_rows(out_dir: str | Path) -> dict[str, dict]:
    """The latest row of each cell id in ``out_dir/rows.jsonl`` (empty if none).

    A line that does not parse (a write cut short by an interrupt) is skipped
    with a warning; that cell counts as not finished.
    """
    path = Path(out_dir) / ROWS_FILE
    rows: dict[str, dict] = {}
    if not path.exists():
        return rows
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows[row["cell_id"]] = row
            except (json.JSONDecodeError, KeyError, TypeError):
                logger.warning("%s line %d is not a complete row; ignored", path,
                               number)
    return rows


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


def _append(handle, row: dict) -> None:
    handle.write(json.dumps(row, sort_keys=True) + "\n")
    handle.flush()


def _columns(rows: list[dict]) -> list[str]:
    """:data:`ROW_COLUMNS` with the ``hyper_*`` columns after ``hyper``."""
    extra = sorted({k for row in rows for k in row if k not in ROW_COLUMNS})
    at = ROW_COLUMNS.index("hyper") + 1
    return [*ROW_COLUMNS[:at], *extra, *ROW_COLUMNS[at:]]


def write_table(rows: list[dict], out_dir: str | Path) -> list[Path]:
    """Write the tidy table: CSV always, Parquet when pyarrow is importable.

    Returns
    -------
    list of Path
        The files written.
    """
    import csv

    out_dir = Path(out_dir)
    columns = _columns(rows)
    path = out_dir / TABLE_FILE
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    written = [path]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        logger.info("pyarrow is not installed; wrote %s only", path)
        return written
    table = pa.table({c: [_parquet_value(row.get(c)) for row in rows]
                      for c in columns})
    pq.write_table(table, out_dir / PARQUET_FILE)
    written.append(out_dir / PARQUET_FILE)
    return written


def _parquet_value(value):
    """Cells of one column must share a type: numbers stay, the rest is text."""
    if value is None or isinstance(value, bool | int | float):
        return None if value is None else float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def plot_sweep(rows: list[dict], out_dir: str | Path) -> list[Path]:
    """One PNG: final ``1 - cos(w, w_2*)`` and ``1 - cos`` to the l_inf face.

    One panel per dataset, one point pair per finished cell (log scale, values
    clipped at 1e-16). Returns the paths written (none without matplotlib or
    finished cells).
    """
    finished = [r for r in rows if r.get("status") not in FAILED_STATUSES]
    if not finished:
        return []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib is not installed; no sweep plot")
        return []
    datasets = list(dict.fromkeys(r["dataset"] for r in finished))
    fig, axes = plt.subplots(len(datasets), 1, squeeze=False,
                             figsize=(max(6.0, 0.35 * len(finished) + 3), 3.2
                                      * len(datasets)), constrained_layout=True)
    for ax, dataset in zip(axes[:, 0], datasets, strict=True):
        cells = [r for r in finished if r["dataset"] == dataset]
        x = range(len(cells))
        for key, label, marker in (("one_minus_cos2", "1 - cos(w, w_2*)", "o"),
                                   ("one_minus_cos_face", "1 - cos(w, l_inf face)",
                                    "s")):
            y = [_positive(r.get(key)) for r in cells]
            ax.semilogy(x, y, marker, label=label)
        ax.set_xticks(list(x))
        ax.set_xticklabels(
            [f"{r['optimizer']} {_short_hyper(r)} s{r['seed']} T{r['steps']}"
             for r in cells], rotation=60, ha="right", fontsize="x-small")
        ax.set_title(f"{dataset}: final direction per cell")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small")
    path = Path(out_dir) / PLOT_FILE
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [path]


def _positive(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return max(value, 1e-16) if math.isfinite(value) else math.nan


def _short_hyper(row: dict) -> str:
    hyper = json.loads(row.get("hyper") or "{}")
    return ",".join(f"{k}={v}" for k, v in hyper.items()
                    if k in ("b1", "b2", "beta"))


# Driver side.


@dataclass
class SweepResult:
    """What :func:`run_sweep` did.

    Attributes
    ----------
    rows : list of dict
        One row per cell of the spec (latest attempt), in spec order; cells not
        run (interrupted) are absent.
    ran, skipped : list of str
        Ids computed now, and ids taken from an earlier run.
    failed : list of str
        Ids whose row has a status in :data:`FAILED_STATUSES`.
    files : list of Path
        The table(s), plot and ``rows.jsonl``.
    """

    rows: list = field(default_factory=list)
    ran: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    files: list = field(default_factory=list)


def _killed_cause(client, exc, wait: float = 3.0) -> tuple[str, str]:
    """Status and cause of a cell whose worker died (``KilledWorker``).

    ``"killed (memory)"`` when the worker's nanny reported a memory-limit
    restart: it logs a ``worker-restart-memory`` event on the scheduler before it
    terminates the worker. The event may arrive a moment after the task's
    failure, so it is polled for up to ``wait`` seconds.
    """
    address = getattr(getattr(exc, "last_worker", None), "address", None)
    tries = getattr(exc, "allowed_failures", 0) + 1
    died = (
        "killed (worker died)",
        f"worker {address} died while running the cell ({tries} attempt(s)); "
        "see the worker logs",
    )
    deadline = time.monotonic() + wait
    while True:
        try:
            events = client.get_events("worker-restart-memory")
        except Exception as error:  # noqa: BLE001 - old scheduler: cause unknown
            logger.warning("could not read the scheduler's events: %s", error)
            return died
        for _, msg in events:
            if msg.get("worker") == address:
                return (
                    "killed (memory)",
                    f"worker {address} passed its memory limit (rss "
                    f"{msg.get('rss', 0) / 2**20:.0f} MiB) and was restarted by "
                    f"its nanny while running the cell ({tries} attempt(s)); "
                    "raise --memory-limit or shrink the cell",
                )
        if time.monotonic() > deadline:
            return died
        time.sleep(0.1)


@contextlib.contextmanager
def _client(scheduler, n_workers, memory_limit, processes, allowed_failures,
            timeout):
    """A client on ``scheduler``, or on a new local cluster; always closed."""
    import dask
    from distributed import Client, LocalCluster

    cluster = None
    client = None
    try:
        if scheduler is None:
            options = {"host": "127.0.0.1"} if processes else {}
            if not processes and memory_limit:
                # Thread workers would measure this whole process against the
                # limit and pause (never resume) once it grew past 80 % of it.
                logger.info("thread workers share this process's memory: the "
                            "memory limit %s is not applied", memory_limit)
                memory_limit = None
            with dask.config.set(
                {"distributed.scheduler.allowed-failures": allowed_failures}
            ):
                cluster = LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=processes,
                    memory_limit=memory_limit,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                    **options,
                )
            client = Client(cluster, timeout=timeout)
        else:
            client = Client(scheduler, timeout=timeout)
        yield client
    finally:
        if client is not None:
            client.close(timeout=timeout)
        if cluster is not None:
            cluster.close(timeout=timeout)


def run_sweep(
    spec: SweepSpec,
    *,
    out_dir: str | Path,
    scheduler: str | None = None,
    n_workers: int = 2,
    memory_limit: str | int | None = "2GB",
    processes: bool = True,
    retry_failed: bool = False,
    allowed_failures: int = 0,
    timeout: float = 60.0,
) -> SweepResult:
    """Run every unfinished cell of ``spec`` on Dask and write the results.

    Parameters
    ----------
    spec : SweepSpec
        From :func:`~theorybox.sweep.load_spec` or
        :func:`~theorybox.sweep.parse_spec`.
    out_dir : str or Path
        Where ``rows.jsonl``, ``sweep.csv`` (``sweep.parquet``) and the plot go.
        Rerunning with the same directory resumes.
    scheduler : str, optional
        Address of a running Dask scheduler (``"tcp://host:8786"``). Default: a
        new :class:`distributed.LocalCluster`, closed at the end.
    n_workers, memory_limit, processes : optional
        The local cluster: workers (one thread each), the memory limit per
        worker (``"2GB"``, bytes, or ``None`` for none; a worker process whose
        memory passes 95 % of it is restarted by its nanny), and whether workers
        are processes (``False``: threads in this process, no memory kills).
        Ignored with ``scheduler``.
    retry_failed : bool
        Also rerun cells whose recorded status is in :data:`FAILED_STATUSES`.
    allowed_failures : int
        How many worker deaths a task may cause before it is given up (local
        cluster only; an existing scheduler keeps its own setting).
    timeout : float
        Seconds allowed to connect, and to close the client and cluster.

    Returns
    -------
    SweepResult

    Raises
    ------
    SweepSpecError
        When two cells share a configuration (cases.md K16).
    """
    check_distinct(spec.cells)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    # Which cells an earlier run already finished.
    previous = read_rows(out_dir)
    todo: list[Cell] = []
    result = SweepResult()
    for cell in spec.cells:
        row = previous.get(cell.id)
        if row is None or (retry_failed and row.get("status") in FAILED_STATUSES):
            todo.append(cell)
        else:
            result.skipped.append(cell.id)
    logger.info("sweep %s: %d cells, %d finished earlier, %d to run", spec.name,
                len(spec.cells), len(result.skipped), len(todo))

    # Submit every cell under its own key; append rows as they finish.
    if todo:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        with (_client(scheduler, n_workers, memory_limit, processes,
                      allowed_failures, timeout) as client,
              open(out_dir / ROWS_FILE, "a") as handle):
            # A line cut short by an interrupt must not swallow the next row.
            if handle.tell() and not _ends_with_newline(out_dir / ROWS_FILE):
                handle.write("\n")
            futures = {}
            for cell in todo:
                payload = dict(cell.to_dict(), sweep=spec.name)
                key = f"theorybox-cell-{cell.id}-{uuid.uuid4().hex[:8]}"
                future = client.submit(run_cell, payload, key=key, pure=False)
                futures[future] = (cell, payload, time.perf_counter())
            try:
                for future in as_completed(futures):
                    cell, payload, submitted = futures[future]
                    try:
                        row = future.result()
                    except KilledWorker as exc:
                        status, cause = _killed_cause(client, exc)
                        row = failed_row(payload, status, cause,
                                         time.perf_counter() - submitted)
                    except Exception as exc:  # noqa: BLE001 - recorded, sweep goes on
                        row = failed_row(payload, "error",
                                         f"{type(exc).__name__}: {exc}",
                                         time.perf_counter() - submitted)
                    _append(handle, row)
                    result.ran.append(cell.id)
                    logger.info("cell %s (%s): %s", cell.id, cell.label,
                                row["status"])
            finally:
                # An interrupt leaves no task running on a shared scheduler.
                client.cancel(list(futures))

    # The table and the plot, for the cells of this spec.
    latest = read_rows(out_dir)
    result.rows = [latest[c.id] for c in spec.cells if c.id in latest]
    stale = len(set(latest) - set(spec.ids))
    if stale:
        logger.info("%d row(s) in %s belong to cells no longer in the spec; left "
                    "out of the table", stale, ROWS_FILE)
    result.failed = [r["cell_id"] for r in result.rows
                     if r.get("status") in FAILED_STATUSES]
    if result.rows:
        result.files = [*write_table(result.rows, out_dir),
                        *plot_sweep(result.rows, out_dir)]
    result.files.append(out_dir / ROWS_FILE)
    return result
