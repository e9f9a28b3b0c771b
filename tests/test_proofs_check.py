"""Acceptance tests of proofs_check: the quick profile, a planted bug, the CLI."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pytest

import proofs_check
from proofs_check import cli, list_checks, run_check
from proofs_check.fit import (
    effective_time,
    fit_rate,
    geometric_tail,
    judge_bound,
    precision_floor,
    shows_no_decay,
)
from theorybox.optimizers import get_optimizer, register
from theorybox.optimizers.registry import OptimizerSpec
from theorybox.records import Record

#: The quick profile must fit the default test run (about a minute on 2 cores).
QUICK_BUDGET_S = 150.0


def test_quick_profile_lists_every_claim_and_fails_none(tmp_path, capsys):
    report = tmp_path / "report.json"
    started = time.perf_counter()
    status = cli.main(["--profile", "quick", "--json", str(report)])
    seconds = time.perf_counter() - started
    out, err = capsys.readouterr()
    with capsys.disabled():
        print(f"\n[proofs_check quick] {seconds:.1f} s\n{out}")

    assert status == 0, out
    assert seconds < QUICK_BUDGET_S
    data = json.loads(report.read_text())
    names = [r["name"] for r in data["records"]]
    assert names == [c.name for c in list_checks()]
    assert len(names) >= 15
    for record in data["records"]:
        assert record["kind"] == "check"
        assert record["verdict"] in ("pass", "inconclusive", "known deviation")
        assert record["tolerance_reason"]
        assert record["measured"] and record["predicted"]
        Record.from_dict(record)
    # Progress went to stderr, the table to stdout.
    assert f"[{len(names)}/{len(names)}]" in err
    for name in names:
        assert name in out


def test_every_check_documents_claim_and_source():
    for check in list_checks():
        assert check.claim and check.source, check.name
        doc = check.doc
        assert "Claim" in doc or "claim" in doc.lower(), check.name
        assert len(doc) > 200, check.name


def _sign_proxy_step(lr, t, s, G, Q):
    """The planted bug: divide by |sum_i grad L_i| (i.e. SignGD), not sqrt(Q)."""
    return (-lr * ops.div0(G, ops.sqrt(G * G)),)  # noqa: F821 (bound per backend)


@pytest.fixture
def planted_proxy_bug():
    original = get_optimizer("adamproxy")
    register(
        OptimizerSpec("adamproxy", _sign_proxy_step, description="planted bug"),
        replace=True,
    )
    try:
        yield
    finally:
        register(original, replace=True)


def test_planted_bug_fails_the_rademacher_check(planted_proxy_bug):
    record = run_check("adamproxy_rademacher_l2", "quick")
    assert record.verdict == "fail", record.measured
    # The run went to l_inf instead: far from w_2*.
    assert record.measured["dist2_final"] > 0.5 * record.predicted["d2inf_yardstick"]


def test_planted_bug_is_removed_afterwards():
    assert get_optimizer("adamproxy").rule.__name__ == "adam_proxy_step"


def test_exit_status_is_nonzero_only_on_failure(planted_proxy_bug, capsys):
    assert cli.main(["--select", "adamproxy_rademacher_l2"]) == 1
    capsys.readouterr()


def test_unknown_selection_is_refused(capsys):
    assert cli.main(["--select", "no_such_check"]) == 2
    assert "no_such_check" in capsys.readouterr().err


def test_list_option(capsys):
    assert cli.main(["--list"]) == 0
    out = capsys.readouterr().out
    for check in list_checks():
        assert check.name in out


def test_register_cli_adds_check_subcommand():
    parser = argparse.ArgumentParser(prog="theorybox")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register_cli(sub)
    args = parser.parse_args(["check", "--profile", "full", "--select", "a", "b",
                              "--json", "x.json"])
    assert args.func is cli.run_from_args
    assert (args.profile, args.select, args.json) == ("full", ["a", "b"], "x.json")


def test_a_crashing_check_is_a_failed_record(monkeypatch):
    def broken(profile):
        raise RuntimeError("boom")

    proofs_check.claim_check("broken_for_test", family="test", claim="c", source="s",
                             replace=True)(broken)
    try:
        record = run_check("broken_for_test")
    finally:
        from proofs_check import registry

        registry._CHECKS.pop("broken_for_test")
    assert record.verdict == "fail" and record.status == "error"
    assert "boom" in record.notes[0]


# The rate fits.


def test_fit_rate_recovers_a_power_law():
    x = np.logspace(2, 6, 5)
    fit = fit_rate(x, 3.0 * x**-0.7)
    assert fit.slope == pytest.approx(-0.7, abs=1e-12)
    assert fit.slope_se < 1e-10


def test_fit_rate_refuses_bad_input():
    with pytest.raises(ValueError, match="geometrically"):
        fit_rate([1.0, 1.1, 1.2], [1.0, 0.9, 0.8])
    with pytest.raises(ValueError, match="at least 3"):
        fit_rate([1.0, 10.0], [1.0, 0.1])
    with pytest.raises(ValueError, match="positive"):
        fit_rate([1.0, 10.0, 100.0], [1.0, 0.0, 0.1])


def test_judge_bound_and_helpers():
    x = np.logspace(2, 5, 4)
    fast = fit_rate(x, x**-1.0)
    slow = fit_rate(x, x**-0.1)
    flat = fit_rate(x, np.ones(4))
    assert judge_bound(fast, -0.5, 0.01) == "pass"
    assert judge_bound(slow, -0.5, 0.01) == "inconclusive"
    assert judge_bound(flat, -0.5, 0.01) == "fail"
    xs, _ = geometric_tail(np.array([1, 2, 3, 4, 100.0]), np.ones(5), 3)
    assert xs.tolist() == [3.0, 4.0, 100.0]
    assert precision_floor(x, np.ones(4), 1e-16) < 1e-15
    exact = np.cumsum(0.1 * (np.arange(20000) + 1.0) ** -0.5)
    assert effective_time([20000], 0.1, 1.0, 0.5)[0] == pytest.approx(exact[-1],
                                                                        rel=1e-9)


def test_a_noisy_decaying_fit_is_not_a_failure():
    """The full profile's Signum case at beta = 0.9999: the distance falls by 10x
    but the geometric tail is too noisy for the slope to be significant."""
    x = np.logspace(4, 7, 4)
    noisy = fit_rate(x, np.array([0.16, 0.02, 0.05, 0.016]))
    assert noisy.slope < 0 and 3 * noisy.slope_se > abs(noisy.slope)
    assert not shows_no_decay(noisy, 3 * noisy.slope_se)
    rising = fit_rate(x, 0.2 * x**0.002)
    assert shows_no_decay(rising, 1e-6)
    assert judge_bound(rising, -0.5, 1e-6) == "fail"
