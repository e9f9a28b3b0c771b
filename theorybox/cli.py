"""The ``theorybox`` command line.

``theorybox reproduce`` runs the headline comparison on bundled data;
``theorybox run`` runs one optimizer with every knob on the command line;
``theorybox list`` shows optimizers and datasets. Errors are one line on stderr
and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from theorybox.errors import InvalidParameterError, TheoryboxError

logger = logging.getLogger("theorybox")


def _progress_printer(stream=sys.stderr):
    started = time.perf_counter()

    def report(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", file=stream)
        stream.flush()

    return report


EXPERIMENTS = ("headline", "prediction", "batch-size")


def _write_outputs(rows, records, series, out: Path, report, columns=None) -> None:
    from theorybox.experiments.report import (
        format_table,
        plot_series,
        write_csv,
        write_json,
    )

    table = format_table(rows, columns)
    print(table)
    (out / "table.txt").write_text(table + "\n")
    write_csv(rows, out / "table.csv")
    write_json(records, out / "records.json")
    plots = plot_series(series, out)
    report(f"wrote table.txt, table.csv, records.json and {len(plots)} plot(s)")


def _out_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise TheoryboxError(
            f"--out {str(out)!r} is an existing file; give a directory path"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def _cmd_reproduce(args) -> int:
    if args.experiment == "prediction":
        from theorybox.experiments.prediction import run_prediction_experiments

        out = _out_dir(args.out)
        report = _progress_printer()
        size = "quick" if args.quick else "full"
        report(f"fixed-point prediction against runs ({size}); output in {out}")
        rows, records, series = run_prediction_experiments(
            quick=args.quick, progress=report
        )
        _write_outputs(rows, records, series, out, report)
        return 0
    if args.experiment == "batch-size":
        from theorybox.experiments.batchsize import TABLE_COLUMNS, run_batch_experiment

        out = _out_dir(args.out)
        report = _progress_printer()
        size = "quick" if args.quick else "full"
        report(f"batch-size sweep ({size}); output in {out}")
        rows, records, series = run_batch_experiment(quick=args.quick, progress=report)
        _write_outputs(rows, records, series, out, report, list(TABLE_COLUMNS))
        return 0
    from theorybox.experiments import HEADLINE_DATASETS, run_headline

    datasets = HEADLINE_DATASETS
    if args.datasets:
        wanted = args.datasets.split(",")
        known = [d[0] for d in HEADLINE_DATASETS]
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise TheoryboxError(
                f"unknown dataset {unknown[0]!r} for reproduce; choose from "
                f"{', '.join(known)}"
            )
        datasets = tuple(d for d in HEADLINE_DATASETS if d[0] in wanted)
    full, per_sample = args.full_steps, args.per_sample_steps
    if args.quick:
        full, per_sample = full // 100, per_sample // 100
    for flag, value in (("--full-steps", full), ("--per-sample-steps", per_sample)):
        if value < 1:
            quick = " after --quick divides by 100" if args.quick else ""
            raise TheoryboxError(
                f"{flag} gives {value} steps{quick}; use at least 1 (at least 100 "
                "with --quick)"
            )
    out = _out_dir(args.out)
    report = _progress_printer()
    report(
        f"headline comparison: full-batch {full} steps, per-sample {per_sample} "
        f"steps; eta_t = {args.eta0} (t + 1)^-{args.a} (GD, SGD: constant "
        f"1 / max_i (|z_i|^2 / 4)); output in {out}"
    )
    from theorybox.optimizers import Schedule

    rows, records, series = run_headline(
        datasets=datasets,
        full_steps=full,
        per_sample_steps=per_sample,
        schedule=Schedule(args.eta0, 1.0, args.a),
        progress=report,
    )
    _write_outputs(rows, records, series, out, report)
    return 0


def _load_cli_data(args):
    """The dataset named by ``--data``/``--dataset``, checked before any work."""
    from theorybox.data import check_separable, load_dataset

    if args.intercept and not args.data:
        raise TheoryboxError(
            "--intercept applies to a user file given with --data; bundled and "
            "generated datasets have fixed features"
        )
    if args.json:
        parent = Path(args.json).resolve().parent
        if not parent.is_dir():
            raise TheoryboxError(
                f"--json {args.json!r}: the directory {str(parent)!r} does not exist"
            )
    if args.data:
        data = load_dataset(args.data, intercept=args.intercept)
    else:
        data = load_dataset(args.dataset)
    for note in data.notes:
        print(f"data note: {note}")
    check_separable(data.Z)
    return data


def _cmd_predict(args) -> int:
    from theorybox.experiments.prediction import predict

    data = _load_cli_data(args)
    steps = args.steps if args.steps is not None else (2_000 if args.quick else 10**6)
    if steps < 1:
        raise TheoryboxError(f"--steps {steps}: use at least 1")
    options = {"adam_steps": steps, "proxy_steps": steps}
    if args.quick:
        options.update(b2s=(0.999,), batchings=("cyclic",), n_starts=1)
    report = predict(data, progress=_progress_printer(sys.stdout), **options)
    print(report.format())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1))
        print(f"wrote {args.json}")
    return 0


def _cmd_run(args) -> int:
    from theorybox.engine import run
    from theorybox.engine.run import geometric_checkpoints, is_time_limit
    from theorybox.experiments.report import format_table
    from theorybox.metrics import metrics_for
    from theorybox.optimizers import Batching, RunConfig, Schedule, get_optimizer
    from theorybox.references import compute_references

    # A bad limit is refused before any data are read.
    limit = args.time_limit
    if limit is not None and not is_time_limit(limit):
        raise InvalidParameterError(
            f"--time-limit {limit}: give a positive number of seconds"
        )

    # Data and references.
    data = _load_cli_data(args)
    Z = data.Z
    refs = compute_references(Z)

    # The configuration, from the optimizer's defaults and the flags.
    spec = get_optimizer(args.optimizer)
    hyper = {}
    for key in HYPER_FLAGS:
        value = getattr(args, key, None)
        if value is None:
            continue
        if key not in spec.hyper:
            flag = "--" + key.replace("_", "-")
            raise TheoryboxError(
                f"{flag} does not apply to {args.optimizer}; its hyperparameters are "
                f"{', '.join(spec.hyper) or 'none'}"
            )
        hyper[key] = value
    for item in args.hyper or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise TheoryboxError(f"--hyper {item!r}: write it as NAME=VALUE")
        key = key.strip()
        if key in hyper:
            flag = "--" + key.replace("_", "-")
            raise TheoryboxError(
                f"--hyper {item!r} and {flag} both set {key}; give it once"
            )
        if key == "n" and args.optimizer == "phi-proxy" and value.strip() != str(
            Z.shape[0]
        ):
            raise TheoryboxError(
                f"--hyper {item!r}: phi-proxy takes n from the data (N = "
                f"{Z.shape[0]}); drop it"
            )
        try:
            hyper[key] = float(value)
        except ValueError:
            raise TheoryboxError(
                f"--hyper {item!r}: {value!r} is not a number"
            ) from None
    if "n" in spec.hyper and args.optimizer == "phi-proxy":
        # Phi_{N,b} needs N, which only the data know.
        hyper.setdefault("n", Z.shape[0])
    batching = None
    if args.batching is not None or args.batch_size is not None:
        batching = Batching(args.batching or spec.scheme, args.batch_size)
    config = RunConfig(
        args.optimizer,
        steps=args.steps,
        hyper=hyper,
        batching=batching,
        schedule=Schedule(args.eta0, args.t0, args.a),
        loss=args.loss,
        seed=args.seed,
    )
    print(f"config: {json.dumps(config.to_dict())}")
    print(f"data: {data.name}, N={Z.shape[0]}, d={Z.shape[1]}; "
          f"gamma_2={refs.l2.gamma:.6g}, gamma_inf={refs.linf.gamma:.6g}")
    metrics = metrics_for(refs, args.loss)
    result = run(Z, config, checkpoints=geometric_checkpoints(args.steps, 3),
                 metrics=metrics, time_limit=args.time_limit)
    if not result.metrics:
        print("steps = 0: nothing was run")
        return 0
    columns = ["t", "log10_loss", "cos2", "cos_face", "gap2", "gap_inf"]
    # A row at w = 0 (a time limit shorter than the setup) has no face cosine.
    print(format_table([{c: row.get(c, float("nan")) for c in columns}
                        for row in result.metrics]))
    print(f"status: {result.status}; final direction: "
          f"{np.array2string(result.metrics[-1]['direction'], precision=5)}")
    for message in result.messages:
        print(f"note: {message}")
    if result.status == "time limit":
        print("note: the command line keeps no state to continue from; rerun with "
              "a larger --time-limit, or use theorybox.engine.run_long and resume "
              "from Python (docs/long-runs.md)")
    if args.json:
        record = result.record(f"{data.name}/{args.optimizer}", data.spec)
        Path(args.json).write_text(record.to_json(indent=1))
    return 0


def _cmd_list(args) -> int:
    from theorybox.data import BUNDLED, GENERATORS
    from theorybox.optimizers import get_optimizer, list_optimizers

    print("optimizers:")
    for name in list_optimizers():
        spec = get_optimizer(name)
        hyper = ", ".join(f"{k}={v}" for k, v in spec.hyper.items()) or "-"
        size = spec.batch_size or "N"
        print(f"  {name:10s} {spec.description} [{spec.scheme}, b={size}; {hyper}]")
    print("bundled datasets: " + ", ".join(BUNDLED))
    print("generators: " + ", ".join(sorted(GENERATORS)))
    return 0


#: Hyperparameter flags of ``theorybox run`` (each applies to some optimizers).
HYPER_FLAGS = ("b1", "b2", "eps", "eps_mode", "bias_correction", "beta")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="theorybox",
        description="Check the implicit bias of optimizers on separable data.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("reproduce", help="the headline comparison on bundled data")
    rep.add_argument("--out", default="theorybox-out", help="output directory")
    rep.add_argument("--quick", action="store_true", help="horizons divided by 100")
    rep.add_argument("--datasets", help="comma-separated subset")
    rep.add_argument("--full-steps", type=int, default=100_000)
    rep.add_argument("--per-sample-steps", type=int, default=1_000_000)
    rep.add_argument("--eta0", type=float, default=0.1)
    rep.add_argument("--a", type=float, default=0.5)
    rep.add_argument("--experiment", choices=EXPERIMENTS, default="headline",
                     help="which comparison to run (default: headline)")
    rep.set_defaults(func=_cmd_reproduce)

    one = sub.add_parser("run", help="run one optimizer on one dataset")
    one.add_argument("optimizer", help="a registered optimizer (theorybox list)")
    where = one.add_mutually_exclusive_group()
    where.add_argument("--dataset", default="iris", help="bundled or generator name")
    where.add_argument("--data", help="a CSV (header, label column y) or NPZ file")
    one.add_argument("--intercept", action="store_true",
                     help="append a constant-1 feature to a --data file")
    one.add_argument("--steps", type=int, default=10_000,
                     help="optimizer steps (one step = one batch)")
    one.add_argument("--eta0", type=float, default=0.1,
                     help="step size scale: eta_t = eta0 (t + t0)^-a")
    one.add_argument("--t0", type=float, default=1.0, help="schedule offset t0")
    one.add_argument("--a", type=float, default=0.5,
                     help="schedule exponent a in [0, 1] (0: constant)")
    one.add_argument("--b1", type=float, help="Adam's first-moment factor")
    one.add_argument("--b2", type=float, help="Adam's second-moment factor")
    one.add_argument("--eps", type=float, help="Adam's eps (default 0)")
    one.add_argument("--eps-mode", dest="eps_mode", type=int, choices=(0, 1, 2),
                     help="0: sqrt(v)+eps, 1: sqrt(v+eps), 2: PyTorch-style folded")
    one.add_argument("--bias-correction", dest="bias_correction", type=int,
                     choices=(0, 1), help="Adam's bias correction (default 0)")
    one.add_argument("--beta", type=float, help="Signum's momentum")
    one.add_argument("--batching", choices=("full", "cyclic", "reshuffle",
                                            "replacement"),
                     help="which samples a step sees (default: the optimizer's)")
    one.add_argument("--batch-size", dest="batch_size", type=int,
                     help="samples per step for cyclic/reshuffle/replacement")
    one.add_argument("--loss", default="logistic", choices=("logistic",
                                                            "exponential"))
    one.add_argument("--seed", type=int, default=0,
                     help="key of the batch-order stream")
    one.add_argument("--hyper", action="append", metavar="NAME=VALUE",
                     help="any hyperparameter by name (repeatable), e.g. b=5")
    one.add_argument("--time-limit", dest="time_limit", type=float,
                     metavar="SECONDS", help="stop after about this much wall "
                     "time, keeping what was computed (status 'time limit')")
    one.add_argument("--json", help="write the run's record to this file")
    one.set_defaults(func=_cmd_run)

    lst = sub.add_parser("list", help="optimizers and datasets")
    lst.set_defaults(func=_cmd_list)

    # Commands defined next to the code they drive.
    from theorybox.sweep.cli import register_cli as register_sweep

    register_sweep(sub)
    pred = sub.add_parser(
        "predict", help="the fixed-point prediction against AdamProxy and Adam"
    )
    where = pred.add_mutually_exclusive_group()
    where.add_argument("--dataset", default="gaussian",
                       help="bundled or generator name")
    where.add_argument("--data", help="a CSV (header, label column y) or NPZ file")
    pred.add_argument("--intercept", action="store_true",
                      help="append a constant-1 feature to a --data file")
    pred.add_argument("--steps", type=int,
                      help="steps of every run (default 10^6; 2000 with --quick)")
    pred.add_argument("--quick", action="store_true",
                      help="short runs, one b2 (0.999) and cyclic order only")
    pred.add_argument("--json", help="write the report as JSON to this file")
    pred.set_defaults(func=_cmd_predict)

    # Commands defined next to the code they drive.
    from proofs_check.cli import register_cli as register_check

    register_check(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"theorybox: warning ({category.__name__}): {message}\n"


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    # numba's own debug output is not what -v asks for.
    logging.getLogger("numba").setLevel(logging.WARNING)
    show_warning = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    try:
        return args.func(args)
    except (TheoryboxError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):
            return 0
        print(f"theorybox: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.verbose:
            raise
        print(
            f"theorybox: unexpected error: {type(exc).__name__}: {exc} (run with -v "
            "for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 3
    finally:
        warnings.formatwarning = show_warning


if __name__ == "__main__":
    sys.exit(main())
