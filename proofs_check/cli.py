"""Command line of the claim checks: ``python -m proofs_check`` / ``theorybox check``.

::

    python -m proofs_check [--profile quick|full] [--select NAME ...] [--json FILE]
                           [--list]

Prints progress on stderr while the checks run, then a table on stdout (one row
per check: verdict, measured and predicted summaries, seconds), and writes the
records as a JSON report when ``--json`` is given. The exit status is 1 when any
check fails and 0 otherwise (``inconclusive`` and ``known deviation`` are not
failures).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from proofs_check.registry import PROFILES, list_checks, run_checks
from theorybox.records import SCHEMA_VERSION, environment

__all__ = ["add_arguments", "register_cli", "main", "format_table", "summary"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options shared by ``python -m proofs_check`` and ``theorybox check``."""
    parser.add_argument(
        "--profile", choices=PROFILES, default="quick",
        help="quick (about a minute on 2 cores) or full (long horizons)",
    )
    parser.add_argument(
        "--select", nargs="+", metavar="NAME", default=None,
        help="run only these checks (check names or family names)",
    )
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="write the records as a JSON report to FILE")
    parser.add_argument("--list", action="store_true",
                        help="list the checks with their claims and sources, and exit")
    return parser


def summary(record) -> str:
    """A short text for the table's measured column."""
    keys = [k for k in record.measured if k != "wall_time_s"]
    parts = []
    for key in keys[:4]:
        value = record.measured[key]
        if isinstance(value, dict):
            inner = [f"{k}={_short(v)}" for k, v in value.items()
                     if not isinstance(v, list | dict)][:2]
            parts.append(f"{key}: " + ", ".join(inner))
        elif not isinstance(value, list):
            parts.append(f"{key}={_short(value)}")
    return "; ".join(parts)


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def format_table(records) -> str:
    """The table printed after a run."""
    rows = [("check", "verdict", "seconds", "measured (first entries)")]
    for record in records:
        rows.append((
            record.name,
            record.verdict or "-",
            f"{record.measured.get('wall_time_s', float('nan')):.1f}",
            summary(record)[:90],
        ))
    widths = [max(len(row[j]) for row in rows) for j in range(3)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row[:3]))
                     + "  " + row[3])
        if i == 0:
            lines.append("-" * (sum(widths) + 6 + 24))
    counts = {}
    for record in records:
        counts[record.verdict] = counts.get(record.verdict, 0) + 1
    lines.append("")
    lines.append(", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    return "\n".join(lines)


def _progress(index, total, check, record):
    if record is None:
        print(f"[{index + 1}/{total}] {check.name} ...", file=sys.stderr, flush=True)
    else:
        print(f"[{index + 1}/{total}] {check.name}: {record.verdict} "
              f"({record.measured.get('wall_time_s', 0):.1f} s)",
              file=sys.stderr, flush=True)


def run_from_args(args) -> int:
    """Run the checks that ``args`` select; return the exit status."""
    if args.list:
        for check in list_checks():
            print(f"{check.name:32s} [{check.family}] {check.claim}  ({check.source})")
        return 0
    if args.json:
        parent = Path(args.json).resolve().parent
        if not parent.is_dir():
            print(f"proofs_check: --json {args.json!r}: the directory {str(parent)!r} "
                  "does not exist; create it or choose another path", file=sys.stderr)
            return 2
    started = time.perf_counter()
    try:
        records = run_checks(args.profile, select=args.select, progress=_progress)
    except KeyError as exc:
        print(f"proofs_check: {exc.args[0]}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    print(format_table(records))
    print(f"profile {args.profile}: {len(records)} check(s) in {seconds:.1f} s")
    if args.json:
        report = {
            "schema": SCHEMA_VERSION,
            "profile": args.profile,
            "wall_time_s": seconds,
            "environment": environment(),
            "records": [r.to_dict() for r in records],
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {args.json}")
    return 1 if any(r.verdict == "fail" for r in records) else 0


def register_cli(subparsers) -> argparse.ArgumentParser:
    """Add ``check`` to a subparsers object (``theorybox check``).

    The parser's ``func`` default is :func:`run_from_args`, which returns the exit
    status.
    """
    parser = subparsers.add_parser(
        "check", help="run the claim checks (proofs_check)",
        description="Run the claim checks and report a verdict for each.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run_from_args)
    return parser


def main(argv=None) -> int:
    """Entry point of ``python -m proofs_check``."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="python -m proofs_check",
        description="Run the claim checks and report a verdict for each.",
    ))
    args = parser.parse_args(argv)
    return run_from_args(args)
