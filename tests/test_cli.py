"""The command line, in-process (a subprocess would pay the numba compile again)."""

import json

import numpy as np
import pytest

from theorybox.cli import main


def test_list_names_every_optimizer(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("gd", "sgd", "signgd", "signum", "adam", "adam-ps", "adam-mb",
                 "adamproxy"):
        assert f"  {name} " in out
    assert "iris" in out and "digits01" in out


def test_run_on_bundled_data_writes_a_record(tmp_path, capsys):
    path = tmp_path / "run.json"
    code = main(["run", "adam-ps", "--dataset", "iris", "--steps", "2000",
                 "--b2", "0.99", "--json", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "status: ok" in out
    record = json.loads(path.read_text())
    assert record["kind"] == "run" and record["schema"] == 1
    assert record["settings"]["hyper"]["b2"] == 0.99
    assert record["settings"]["batching"] == {"scheme": "cyclic", "batch_size": 1}
    assert len(record["measured"]["final"]["w"]) == 4


def test_run_on_a_user_file(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 2))
    y = np.where(x @ [1.0, -0.5] > 0, "yes", "no")
    lines = ["a,b,y"] + [f"{r[0]},{r[1]},{lab}" for r, lab in zip(x, y, strict=True)]
    path = tmp_path / "mine.csv"
    path.write_text("\n".join(lines) + "\n")
    code = main(["run", "signum", "--data", str(path), "--intercept", "--steps",
                 "500", "--batching", "cyclic", "--batch-size", "1"])
    assert code == 0
    assert "N=12, d=3" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "adam", "--b1", "1.5"], "b1"),
        (["run", "adam", "--eta0", "-0.1"], "eta0"),
        (["run", "nosuch"], "unknown optimizer"),
        (["run", "adam", "--data", "/nonexistent/file.csv"], "file.csv"),
        (["reproduce", "--datasets", "mnist"], "mnist"),
        (["reproduce", "--quick", "--per-sample-steps", "50"], "--per-sample-steps"),
        (["run", "gd", "--b1", "0.5"], "--b1 does not apply to gd"),
        (["run", "adam", "--batch-size", "0"], "batch_size = 0"),
        (["run", "adam", "--batch-size", "1000"], "full-batch scheme"),
        (["run", "adam", "--intercept"], "--intercept"),
        (["run", "adam", "--b2", "0"], "0 < b2 < 1"),
        (["run", "adam", "--time-limit", "0"], "--time-limit 0.0"),
        (["run", "adam", "--time-limit", "nan"], "--time-limit nan"),
    ],
)
def test_errors_are_one_line_and_exit_2(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("theorybox: error:")
    assert fragment in err
    assert "\n" not in err and "Traceback" not in err


def test_non_separable_file_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "xor.csv"
    path.write_text("a,b,y\n1,1,1\n-1,-1,1\n1,-1,-1\n-1,1,-1\n")
    assert main(["run", "adam", "--data", str(path)]) == 2
    assert "not linearly separable" in capsys.readouterr().err


def test_reproduce_small(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["reproduce", "--out", str(out), "--datasets", "iris",
                 "--full-steps", "300", "--per-sample-steps", "3000"])
    assert code == 0
    table = (out / "table.txt").read_text()
    assert "Adam (per sample)" in table and "Signum (b=1)" in table
    records = json.loads((out / "records.json").read_text())
    assert len(records) == 8 and all(r["kind"] == "run" for r in records)
    assert (out / "iris.png").stat().st_size > 1000
    assert (out / "table.csv").exists()


def test_zero_steps_is_not_an_error(capsys):
    assert main(["run", "signgd", "--steps", "0"]) == 0
    assert "nothing was run" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"caf\xe9,b,y\n1,2,1\n-1,-2,-1\n", "not UTF-8"),
        (b"1,2,1\n-1,-2,-1\n", "looks like data"),
        (b"a,b,y\n", "no data rows"),
        (b"a,b,y\n1,2,nan\n-1,-2,1\n", "finite"),
    ],
)
def test_bad_csv_files_are_one_line_errors(tmp_path, capsys, content, fragment):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    assert main(["run", "adam", "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_check_command_lists_the_claims(capsys):
    assert main(["check", "--list"]) == 0
    out = capsys.readouterr().out
    assert "adamproxy_rademacher_l2" in out and "gd_l2_log_rate" in out


def test_hyper_flag_and_phi_proxy_takes_n_from_the_data(tmp_path, capsys):
    path = tmp_path / "phi.json"
    assert main(["run", "phi-proxy", "--hyper", "b=5", "--steps", "300",
                 "--json", str(path)]) == 0
    hyper = json.loads(path.read_text())["settings"]["hyper"]
    assert hyper == {"n": 100, "b": 5}
    assert main(["run", "adam", "--hyper", "b1"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


def test_conflicting_or_wrong_hyperparameters_are_refused(capsys):
    assert main(["run", "adam", "--b2", "0.9", "--hyper", "b2=0.5"]) == 2
    assert "give it once" in capsys.readouterr().err
    assert main(["run", "phi-proxy", "--hyper", "n=5"]) == 2
    assert "takes n from the data" in capsys.readouterr().err


def test_run_with_a_time_limit_keeps_what_it_computed(capsys):
    assert main(["run", "adam-ps", "--dataset", "iris", "--steps", "10000000000",
                 "--time-limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "status: time limit" in out
    assert "note: stopped at step" in out and "time_limit = 1.0 s" in out
    assert "rerun with a larger --time-limit" in out


def test_run_whose_limit_ends_before_the_first_step(capsys):
    assert main(["run", "adam-ps", "--dataset", "iris", "--steps", "1000",
                 "--time-limit", "1e-9"]) == 0
    out = capsys.readouterr().out
    assert "status: time limit; final direction: [0. 0. 0. 0.]" in out
    assert ["t", "log10_loss", "cos2", "cos_face", "gap2", "gap_inf"] in [
        line.split() for line in out.splitlines()]
