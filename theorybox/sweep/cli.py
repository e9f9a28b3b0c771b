"""``theorybox sweep FILE``: run a sweep file on Dask from the command line.

The lead's :mod:`theorybox.cli` calls :func:`register_cli` with its subparsers.
The handler prints a summary table to stdout and returns 0 when every cell has a
measurement, 1 when some cells failed (their causes are in the table), and lets
:class:`~theorybox.errors.TheoryboxError` (a bad sweep file) reach ``main``,
which reports it on one line with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

__all__ = ["register_cli", "cmd_sweep"]

logger = logging.getLogger(__name__)

#: Columns of the summary printed at the end.
SUMMARY_COLUMNS = ["dataset", "optimizer", "hyper", "seed", "steps", "status",
                   "one_minus_cos2", "one_minus_cos_face", "wall_time"]


def _memory_limit(text: str):
    """``--memory-limit`` as Dask takes it: ``"2GB"``, bytes, or ``None``."""
    if text.lower() in ("none", "0", "off"):
        return None
    return int(text) if text.isdigit() else text


def _compact(hyper_json) -> str:
    """``{"b1": 0.9, "b2": 0.999}`` as ``b1=0.9 b2=0.999``."""
    hyper = json.loads(hyper_json or "{}")
    return " ".join(f"{k}={v}" for k, v in hyper.items())


def register_cli(subparsers) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand to ``subparsers`` (from ``add_subparsers``).

    Returns
    -------
    argparse.ArgumentParser
        The new subparser (its handler is ``func``).
    """
    sweep = subparsers.add_parser(
        "sweep",
        help="run a TOML sweep (datasets x optimizers x grids x seeds) on Dask",
        description="Run every unfinished cell of a TOML sweep file on a local "
        "Dask cluster (or an existing scheduler) and write a tidy table; rerun to "
        "resume. See docs/sweeps.md.",
    )
    sweep.add_argument("file", help="the sweep's TOML file")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="a running Dask scheduler, e.g. tcp://127.0.0.1:8786 "
                       "(default: start a local cluster)")
    sweep.add_argument("--workers", type=int, default=2, metavar="N",
                       help="local cluster workers, one thread each (default 2)")
    sweep.add_argument("--memory-limit", dest="memory_limit", default="2GB",
                       metavar="X", help="memory per local worker, e.g. 2GB, or "
                       "none (default 2GB)")
    sweep.add_argument("--out", metavar="DIR",
                       help="output directory (default: <FILE stem>-sweep); "
                       "rerunning with the same directory resumes")
    sweep.add_argument("--threads", action="store_true",
                       help="run local workers as threads in this process (no "
                       "memory-limit kills)")
    sweep.add_argument("--retry-failed", dest="retry_failed", action="store_true",
                       help="rerun cells recorded as failed")
    sweep.set_defaults(func=cmd_sweep)
    return sweep


def cmd_sweep(args) -> int:
    """Handler of ``theorybox sweep``."""
    from theorybox.errors import TheoryboxError
    from theorybox.experiments.report import format_table
    from theorybox.sweep.runner import run_sweep
    from theorybox.sweep.spec import load_spec

    # Read and check everything before any cluster starts.
    spec = load_spec(args.file)
    if args.workers < 1:
        raise TheoryboxError(f"--workers {args.workers}: use at least 1")
    out = Path(args.out or f"{Path(args.file).stem}-sweep")
    if out.exists() and not out.is_dir():
        raise TheoryboxError(f"--out {str(out)!r} is an existing file; give a "
                             "directory")
    where = args.scheduler or (
        f"a local cluster of {args.workers} "
        f"{'thread' if args.threads else 'process'} worker(s)"
    )
    print(f"sweep {spec.name}: {len(spec.cells)} cells on {where}; output in {out}",
          file=sys.stderr)

    # Run, then summarise. Dask's own INFO log (cluster start, dashboard hints) is
    # not the sweep's business; -v still shows theorybox's.
    for name in ("distributed", "bokeh", "tornado"):
        logging.getLogger(name).setLevel(logging.WARNING)
    result = run_sweep(
        spec,
        out_dir=out,
        scheduler=args.scheduler,
        n_workers=args.workers,
        memory_limit=_memory_limit(args.memory_limit),
        processes=not args.threads,
        retry_failed=args.retry_failed,
    )
    summary = [dict(row, hyper=_compact(row.get("hyper"))) for row in result.rows]
    print(format_table(summary, SUMMARY_COLUMNS))
    for row in result.rows:
        if row.get("error"):
            print(f"cell {row.get('cell_id', '?')} ({row.get('dataset')}, "
                  f"{row.get('optimizer')}): {row['error']}", file=sys.stderr)
    print(
        f"{len(result.ran)} cell(s) run, {len(result.skipped)} taken from earlier "
        f"runs, {len(result.failed)} failed; files: "
        + ", ".join(str(p) for p in result.files),
        file=sys.stderr,
    )
    return 1 if result.failed else 0
