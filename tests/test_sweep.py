"""Sweeps: TOML parsing and validation, expansion, Dask runs, resume, failures.

Clusters are local (threads in this process, or one small worker process on
127.0.0.1), always closed, and every test that starts one has its own timeout
(cases.md K16).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import re
from pathlib import Path

import pytest

from theorybox.errors import TheoryboxError
from theorybox.sweep import (
    FAILED_STATUSES,
    ROW_COLUMNS,
    SweepSpec,
    SweepSpecError,
    load_spec,
    parse_spec,
    read_rows,
    register_cli,
    run_cell,
    run_sweep,
)

#: Parsing needs no Dask; running does (the optional ``dask[distributed]``).
needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="dask[distributed] is not installed",
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sweep_small.toml"

#: A small generated dataset: references and runs take milliseconds.
TINY = {"name": "gaussian", "params": {"n": 6, "d": 3, "seed": 0}}


def spec_of(optimizers, seeds=(0,), steps=20, datasets=(TINY,), **sweep):
    return parse_spec({
        "sweep": {"seeds": list(seeds), "steps": steps, **sweep},
        "datasets": [dict(d) for d in datasets],
        "optimizers": [dict(o) for o in optimizers],
    })


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# Parsing and expansion.


def test_example_file_parses():
    spec = load_spec(EXAMPLE)
    assert spec.name == "small"
    # 2 datasets x (adam: 2 values of b1; signum: 1) x 2 seeds.
    assert len(spec.cells) == 2 * 3 * 2
    assert all(re.fullmatch("[0-9a-f]{16}", i) for i in spec.ids)
    assert len(set(spec.ids)) == len(spec.ids)


def test_expansion_counts():
    spec = spec_of(
        [
            {"name": "adam", "b1": [0.9, 0.0], "b2": [0.99, 0.999]},
            {"name": "signum", "batching": "cyclic", "batch_size": [1, 2]},
            {"name": "gd", "eta0": [0.1, 1.0], "a": [0.0, 0.5], "steps": 7},
        ],
        seeds=[0, 1, 2],
        steps=[10, 20],
        datasets=[{"name": "iris"},
                  {"name": "gaussian", "params": {"n": 6, "d": 3, "seed": [0, 1]}}],
    )
    # Datasets: iris + 2 gaussian draws. Per dataset and seed: adam 4 x 2 horizons,
    # signum 2 x 2 horizons, gd 4 (its own horizon).
    assert len(spec.cells) == 3 * 3 * (8 + 4 + 4)
    labels = {c.dataset.label for c in spec.cells}
    assert labels == {"iris", "gaussian(d=3,n=6,seed=0)", "gaussian(d=3,n=6,seed=1)"}
    gd = [c for c in spec.cells if c.config["optimizer"] == "gd"]
    assert {c.config["steps"] for c in gd} == {7}
    signum = [c for c in spec.cells if c.config["optimizer"] == "signum"]
    assert {c.config["batching"]["batch_size"] for c in signum} == {1, 2}


def test_ids_are_stable_and_canonical():
    a = spec_of([{"name": "adam", "b1": 0.9}, {"name": "gd"}], seeds=[0, 1])
    # Reordered entries, and a default written out, give the same ids.
    b = spec_of([{"name": "gd"}, {"name": "adam", "b2": 0.999, "b1": 0.9}],
                seeds=[1, 0])
    assert set(a.ids) == set(b.ids)
    # Any change of setting changes the id.
    c = spec_of([{"name": "adam", "b1": 0.8}, {"name": "gd"}], seeds=[0, 1])
    assert len(set(a.ids) & set(c.ids)) == 2  # the gd cells only


@pytest.mark.parametrize(
    ("sweep", "match"),
    [
        ({"sweep": {"steps": 10}}, r"sweep\.seeds.*missing.*seeds = \["),
        ({"sweep": {"seeds": [0, 0, 1]}}, r"sweep\.seeds.*\[0\].*more than once"),
        ({"sweep": {"seeds": [-1]}}, r"sweep\.seeds.*-1.*integer >= 0"),
        ({"sweep": {"seeds": []}}, r"sweep\.seeds.*empty list"),
        ({"sweep": {"seeds": [0], "step": 3}}, r"sweep\.step: unknown key"),
        ({"extra": {}}, r"\(top level\)\.extra: unknown key"),
        ({"datasets": []}, r"sweep key datasets.*\[\[datasets\]\]"),
        ({"datasets": [{"name": "nope"}]}, r"datasets\[0\]\.name.*unknown dataset"),
        ({"datasets": [{"name": "iris", "params": {"n": 3}}]},
         r"datasets\[0\]\.params.*takes no parameters"),
        ({"datasets": [{"name": "gaussian", "params": {"m": 3}}]},
         r"datasets\[0\]\.params\.m.*parameters are n, d"),
        ({"datasets": [{"path": "missing.csv"}]}, r"datasets\[0\]\.path.*not exist"),
        ({"optimizers": [{"b1": 0.9}]}, r"optimizers\[0\]\.name.*missing"),
        ({"optimizers": [{"name": "adamw"}]}, r"optimizers\[0\]\.name.*unknown"),
        ({"optimizers": [{"name": "adam", "beta": 0.9}]},
         r"optimizers\[0\]\.beta: unknown key.*b1, b2"),
        ({"optimizers": [{"name": "adam", "b1": [0.9, 1.5]}]},
         r"optimizers\[0\] \(adam, b1=1\.5\).*b1 = 1\.5.*outside"),
        ({"optimizers": [{"name": "adam", "b1": "high"}]},
         r"optimizers\[0\]\.b1.*finite number"),
        ({"optimizers": [{"name": "gd", "batch_size": 2}]},
         r"optimizers\[0\]\.batch_size.*full-batch.*batching ="),
        ({"optimizers": [{"name": "gd", "batching": "sometimes"}]},
         r"optimizers\[0\].*scheme 'sometimes'"),
        ({"optimizers": [{"name": "gd", "steps": 0}]},
         r"optimizers\[0\]\.steps.*integer >= 1"),
        ({"optimizers": [{"name": "gd", "eta0": -1.0}]},
         r"optimizers\[0\].*eta0 = -1\.0.*positive"),
        ({"optimizers": [{"name": "gd", "_test_raise": "OSError"}]},
         r"_test_raise.*MemoryError"),
        ({"sweep": {"seeds": [0], "time_limit_s": 0}},
         r"sweep\.time_limit_s.*positive number of seconds"),
        ({"sweep": {"seeds": [0], "time_limit_s": "1h"}},
         r"sweep\.time_limit_s.*positive number of seconds"),
    ],
)
def test_validation_errors_name_the_key(sweep, match):
    data = {"sweep": {"seeds": [0]}, "datasets": [TINY],
            "optimizers": [{"name": "gd"}]}
    data.update(sweep)
    with pytest.raises(SweepSpecError, match=match):
        parse_spec(data)


def test_toml_syntax_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[sweep\nseeds = [0]\n")
    with pytest.raises(SweepSpecError, match="not valid TOML"):
        load_spec(path)


def test_relative_dataset_path(tmp_path):
    (tmp_path / "d.csv").write_text("x1,x2,y\n1,0,1\n-1,0,-1\n0,1,1\n0,-1,-1\n")
    path = tmp_path / "s.toml"
    path.write_text('[sweep]\nseeds = [0]\n[[datasets]]\npath = "d.csv"\n'
                    '[[optimizers]]\nname = "gd"\n')
    (cell,) = load_spec(path).cells
    assert cell.dataset.source == str((tmp_path / "d.csv").resolve())
    assert cell.dataset.label == "d(intercept=False)"


# K16: every repeat is a separate, seeded run.


@needs_dask
def test_identical_cells_are_refused_by_name(tmp_path):
    with pytest.raises(SweepSpecError,
                       match=r"optimizers\[0\].*optimizers\[1\].*distinct seeds"):
        spec_of([{"name": "gd"}, {"name": "gd", "eta0": 0.1}])
    spec = spec_of([{"name": "gd"}])
    twice = SweepSpec(name="twice", cells=spec.cells * 2)
    with pytest.raises(SweepSpecError, match="same configuration"):
        run_sweep(twice, out_dir=tmp_path / "out", processes=False)
    assert not (tmp_path / "out").exists()


# One cell without Dask.


def test_run_cell_row_and_error_row():
    ok, boom = spec_of([{"name": "gd"}, {"name": "gd", "_test_raise": "MemoryError"}],
                       steps=50).cells
    row = run_cell(dict(ok.to_dict(), sweep="t"))
    assert row["status"] == "ok" and row["error"] == ""
    assert row["kind"] == "sweep-row" and row["cell_id"] == ok.id
    assert set(row) <= set(ROW_COLUMNS)
    assert -1 <= row["cos2"] <= 1
    assert row["one_minus_cos2"] == pytest.approx(1 - row["cos2"])
    assert row["gamma2"] > 0 and row["steps"] == 50

    row = run_cell(dict(boom.to_dict(), sweep="t"))
    assert row["status"] == "error"
    assert row["error"].startswith("MemoryError: test-only failure")
    assert "cos2" not in row


def test_time_limit_stops_a_cell_with_its_step_and_metrics():
    """``[sweep] time_limit_s`` bounds each cell's run; a cell that reaches it is
    recorded as ``time limit`` (a failure: ``--retry-failed`` reruns it) with the
    step it reached and that step's metrics. The limit is not part of the id."""
    short = spec_of([{"name": "adam"}], steps=10**10, time_limit_s=0.5)
    (cell,) = short.cells
    (free,) = spec_of([{"name": "adam"}], steps=10**10).cells
    assert cell.id == free.id and cell.time_limit == 0.5
    run_cell(dict(spec_of([{"name": "adam"}], steps=10).cells[0].to_dict(), sweep="t"))
    row = run_cell(dict(cell.to_dict(), sweep="t"))
    assert row["status"] == "time limit" and "time limit" in FAILED_STATUSES
    assert 0 < row["steps_done"] < row["steps"] == 10**10
    assert "time_limit = 0.5 s" in row["error"]
    assert -1 <= row["cos2"] <= 1

    (done,) = spec_of([{"name": "adam"}], steps=50, time_limit_s=600).cells
    row = run_cell(dict(done.to_dict(), sweep="t"))
    assert row["status"] == "ok" and row["steps_done"] == 50


# Dask runs.


@needs_dask
@pytest.mark.timeout(120)
def test_sweep_on_threads_records_failures_and_resumes(tmp_path):
    spec = spec_of(
        [{"name": "gd"}, {"name": "gd", "eta0": 0.2, "_test_raise": "MemoryError"}],
        seeds=[0, 1, 2, 3],
    )
    out = tmp_path / "out"

    # Four seeded repeats are four runs; the raising cells are recorded.
    result = run_sweep(spec, out_dir=out, n_workers=2, memory_limit="500MB",
                       processes=False)
    assert len(result.ran) == 8 and not result.skipped
    rows = read_csv(out / "sweep.csv")
    assert len(rows) == 8 and len({r["cell_id"] for r in rows}) == 8
    ok = [r for r in rows if r["status"] == "ok"]
    assert sorted(int(r["seed"]) for r in ok) == [0, 1, 2, 3]
    failed = [r for r in rows if r["status"] == "error"]
    assert len(failed) == 4 and sorted(result.failed) == sorted(
        r["cell_id"] for r in failed)
    assert all("MemoryError" in r["error"] for r in failed)
    assert (out / "final_1mcos.png").exists()

    # A rerun skips every recorded cell and starts no cluster.
    again = run_sweep(spec, out_dir=out, processes=False)
    assert not again.ran and len(again.skipped) == 8

    # An interrupted sweep (three rows, then half a line) resumes the rest.
    lines = (out / "rows.jsonl").read_text().splitlines()
    (out / "rows.jsonl").write_text("\n".join(lines[:3]) + '\n{"cell_id": "12')
    resumed = run_sweep(spec, out_dir=out, n_workers=2, processes=False)
    assert len(resumed.skipped) == 3 and len(resumed.ran) == 5
    assert set(resumed.ran).isdisjoint(json.loads(x)["cell_id"] for x in lines[:3])
    assert len(read_rows(out)) == 8

    # retry_failed reruns only the failed cells.
    retried = run_sweep(spec, out_dir=out, processes=False, retry_failed=True)
    assert sorted(retried.ran) == sorted(result.failed)


@needs_dask
@pytest.mark.timeout(120)
def test_thread_workers_ignore_a_memory_limit_below_the_process_size(tmp_path):
    """Thread workers live in this process; Dask would measure the whole process
    (hundreds of MB here) against the limit and pause the workers for good.
    The limit is not applied to them (a CI run hung this way once the test
    process outgrew 80 % of 1 GB)."""
    # Cells that last long enough (about a second each) for Dask's memory
    # monitor to look.
    spec = spec_of([{"name": "adam"}], seeds=[0, 1, 2, 3], steps=2_000_000)
    result = run_sweep(spec, out_dir=tmp_path / "out", n_workers=2,
                       memory_limit="50MB", processes=False)
    assert len(result.ran) == 4 and not result.failed


@needs_dask
@pytest.mark.timeout(120)
def test_existing_scheduler_is_used_and_left_running(tmp_path):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                           dashboard_address=None)
    try:
        result = run_sweep(spec_of([{"name": "gd"}], seeds=[0, 1]),
                           out_dir=tmp_path, scheduler=cluster.scheduler_address)
        assert [r["status"] for r in result.rows] == ["ok", "ok"]
        # The sweep closed its client only: the cluster still takes work.
        with Client(cluster, timeout=30) as client:
            assert client.submit(sum, [1, 2]).result(timeout=30) == 3
    finally:
        cluster.close(timeout=30)


@needs_dask
@pytest.mark.timeout(120)
def test_memory_kill_is_recorded(tmp_path):
    # One worker process with a 300 MB limit; the cell allocates up to 1.5 GB in
    # 8 MiB blocks and the nanny restarts the worker at 95 % of the limit.
    spec = spec_of([{"name": "gd", "_test_allocate_mb": 1500}])
    result = run_sweep(spec, out_dir=tmp_path, n_workers=1, memory_limit="300MB",
                       processes=True, timeout=30)
    (row,) = result.rows
    assert row["status"] == "killed (memory)", row["error"]
    assert "memory limit" in row["error"]
    assert result.failed == [row["cell_id"]]
    assert "killed (memory)" in FAILED_STATUSES


# The command line, in process.


def _parser():
    parser = argparse.ArgumentParser(prog="theorybox")
    register_cli(parser.add_subparsers(dest="command", required=True))
    return parser


@needs_dask
@pytest.mark.timeout(120)
def test_cli_runs_the_example_with_tiny_horizons(tmp_path, capsys):
    text = EXAMPLE.read_text()
    text = re.sub(r"(?m)^steps = \d+", "steps = 20", text)
    assert "steps = 20" in text
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    out = tmp_path / "out"
    args = _parser().parse_args(
        ["sweep", str(path), "--threads", "--workers", "2", "--memory-limit", "1GB",
         "--out", str(out)]
    )
    assert args.func(args) == 0
    rows = read_csv(out / "sweep.csv")
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
    assert {int(r["steps"]) for r in rows} == {20}
    captured = capsys.readouterr()
    assert "one_minus_cos2" in captured.out
    assert "12 cell(s) run" in captured.err

    # Rerunning resumes: nothing left to do.
    assert args.func(args) == 0
    assert "0 cell(s) run, 12 taken from earlier runs" in capsys.readouterr().err


def test_cli_bad_file_is_a_theorybox_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[sweep]\n[[datasets]]\nname = "iris"\n[[optimizers]]\n'
                    'name = "gd"\n')
    args = _parser().parse_args(["sweep", str(path), "--threads"])
    with pytest.raises(TheoryboxError, match="sweep.seeds"):
        args.func(args)
