"""Per-sample Adam on Rademacher data goes to l2; samplers compared.

Claim 2 of theory.md section 3 (Baek, Song, Yun, Thm 3.3 and Cor. 3.2) and the
sampler question of checklist item C14 (paper-notes.md section 7).
"""

from __future__ import annotations

import warnings

import numpy as np

from proofs_check.fit import (
    SE_FACTOR,
    fit_rate,
    geometric_tail,
    precision_floor,
    shows_no_decay,
)
from proofs_check.registry import (
    checkpoints,
    claim_check,
    make_record,
    rademacher_instance,
    reference_metrics,
    references,
    run_series,
    worst_verdict,
)
from theorybox.metrics import direction_distance
from theorybox.optimizers import Batching, RunConfig, Schedule

FAMILY = "per-sample"

_PAIRS = {
    "quick": {"steps": 10**6, "pairs": ((0.9, 0.999), (0.9, 0.99), (0.5, 0.9))},
    "full": {
        "steps": 10**7,
        "pairs": ((0.9, 0.999), (0.9, 0.99), (0.5, 0.9), (0.0, 0.99), (0.9, 0.9),
                  (0.99, 0.999)),
    },
}
_SAMPLERS = {"quick": {"steps": 10**6}, "full": {"steps": 10**7}}

#: Unit directions are resolved to about this in float64 (sqrt of eps, via cos).
DIR_ABS_ERR = 1e-8


def judge_to_target(t, dist, yardstick: float):
    """Verdict for "the direction tends to a target" with no known rate.

    Fit ``log dist`` against ``log t`` on the last four checkpoints. Pass: the
    distance decays (slope below ``-tol``) and ends below a tenth of the yardstick
    (the distance between the two candidate limits). Fail: the fit shows no decay
    (:func:`~proofs_check.fit.shows_no_decay`), or it ends nearer the other
    candidate (above half the yardstick). Otherwise inconclusive: a fit too noisy
    to tell decay from none is a short horizon, not evidence against the claim.

    Returns
    -------
    (str, RateFit, float)
        Verdict, fit and tolerance.
    """
    xs, ys = geometric_tail(t, dist, 4)
    fit = fit_rate(xs, ys)
    tol = SE_FACTOR * fit.slope_se + precision_floor(xs, ys, DIR_ABS_ERR)
    if shows_no_decay(fit, tol) or dist[-1] > 0.5 * yardstick:
        verdict = "fail"
    elif dist[-1] <= 0.1 * yardstick:
        verdict = "pass"
    else:
        verdict = "inconclusive"
    return verdict, fit, tol


@claim_check(
    "adam_ps_rademacher_l2",
    family=FAMILY,
    claim="per-sample (cyclic) Adam on Rademacher data -> w_2* for every b1 <= b2",
    source="theory.md claim 2 (Baek, Song, Yun Thm 3.3, Cor. 3.2); checklist C4",
)
def adam_ps_rademacher_l2(profile: str):
    r"""Inc-Adam on generalised-Rademacher data goes to the l2 max margin.

    **Claim.** For data with :math:`|x_{ik}| = a_i` for all ``k`` (separable),
    per-sample Adam with cyclic order, ``eps = 0``, no bias correction, any
    ``b1 <= b2`` and a decaying step has :math:`w_t/\|w_t\| \to w_2^*`
    (Thm 3.3), because its epoch map is a weighted normalised GD whose weights
    stay between two positive constants (Cor. 3.2). Full-batch Adam on the same
    data goes to l_inf instead (see ``adam_full_linf_rate``).

    **No rate** is stated, so the fitted slope of :math:`\|u_t - u_2^*\|`
    against ``log t`` is reported as measured; the verdict asks that the distance
    decay and end below a tenth of the distance between ``w_2*`` and the l_inf
    face (the yardstick ``d2inf``); ending above half of it fails.

    **Data.** ``rademacher(10, 8, seed=14)``, strongly discriminating.
    Open: the theorem's technical assumption (a); the published construction.
    """
    sizes = _PAIRS[profile]
    ds = rademacher_instance()
    refs = references(ds.Z)
    metrics = reference_metrics(ds.Z)
    steps = checkpoints(1000, sizes["steps"])
    measured, verdicts, tols, notes = {}, [], [], []
    for b1, b2 in sizes["pairs"]:
        config = RunConfig("adam-ps", sizes["steps"], hyper={"b1": b1, "b2": b2},
                           schedule=Schedule(0.1, 1.0, 0.5))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t, series, result = run_series(ds.Z, config, steps, metrics)
        verdict, fit, tol = judge_to_target(t, series["dist2"], refs.d2inf)
        verdicts.append(verdict)
        tols.append(tol)
        measured[f"b1={b1},b2={b2}"] = {
            "slope_dist2_vs_t": fit.slope,
            "slope_se": fit.slope_se,
            "dist2_final": float(series["dist2"][-1]),
            "gap_inf_final": float(series["gap_inf"][-1]),
            "dist2_series": series["dist2"].tolist(),
            "steps": t.tolist(),
            "verdict": verdict,
            "status": result.status,
        }
        if result.status != "ok":
            notes.append(f"b1={b1}, b2={b2}: {result.status}: {result.messages}")
    return make_record(
        "adam_ps_rademacher_l2",
        verdict=worst_verdict(verdicts),
        measured=measured,
        predicted={"limit": "w_2*", "dist2": "-> 0 (no rate stated)",
                   "d2inf_yardstick": refs.d2inf},
        tolerance=max(tols),
        tolerance_reason=(
            f"{SE_FACTOR:g} standard errors of the slope of dist(u_t, u_2*) against "
            "log t + the 1e-8 floor of unit directions; pass needs dist < d2inf/10"
        ),
        data=ds.spec,
        settings={"optimizer": "adam-ps", "batching": "cyclic, b = 1",
                  "eps": 0.0, "bias_correction": 0,
                  "schedule": "0.1 (t + 1)^-0.5", "steps": sizes["steps"]},
        notes=notes,
    )


@claim_check(
    "samplers_cyclic_vs_reshuffle",
    family=FAMILY,
    claim="cyclic order and random reshuffling reach the same limits "
          "(per-sample Adam -> l2, per-sample Signum -> l_inf)",
    source="paper-notes.md checklist C14 (open in the sources), theory.md claims 2, 4",
)
def samplers_cyclic_vs_reshuffle(profile: str):
    r"""Per-sample Adam and Signum under cyclic order and random reshuffling.

    **Claim (open).** Thm 3.3 is stated for the cyclic order (Inc-Adam); whether
    it survives random reshuffling (RR) is not established in the accessible
    sources (C14). Thm 5.1 (Signum) covers both. This check measures: per-sample
    Adam (``b1 = 0.9``, ``b2 = 0.999``) under both samplers must approach
    ``w_2*``; Signum with one sample a step and ``beta = 0.99`` under both must
    approach the l_inf face. Reported beside them: the distance between the two
    samplers' final directions.

    **Judged** with the same rule as ``adam_ps_rademacher_l2`` (decay fitted on
    four geometric checkpoints; final distance below a tenth of the yardstick).
    """
    sizes = _SAMPLERS[profile]
    ds = rademacher_instance()
    refs = references(ds.Z)
    metrics = reference_metrics(ds.Z, face=True)
    steps = checkpoints(1000, sizes["steps"])
    measured, verdicts, tols, finals = {}, [], [], {}
    cases = (
        ("adam-ps", {"b1": 0.9, "b2": 0.999}, "dist2"),
        ("signum", {"beta": 0.99}, "dist_face"),
    )
    for optimizer, hyper, target in cases:
        for scheme in ("cyclic", "reshuffle"):
            config = RunConfig(optimizer, sizes["steps"], hyper=hyper,
                               batching=Batching(scheme, 1),
                               schedule=Schedule(0.1, 1.0, 0.5), seed=1)
            t, series, result = run_series(ds.Z, config, steps, metrics)
            verdict, fit, tol = judge_to_target(t, series[target], refs.d2inf)
            verdicts.append(verdict)
            tols.append(tol)
            finals[(optimizer, scheme)] = result.w.copy()
            measured[f"{optimizer}/{scheme}"] = {
                "target": "w_2*" if target == "dist2" else "l_inf face",
                "slope_vs_t": fit.slope,
                "slope_se": fit.slope_se,
                "dist_final": float(series[target][-1]),
                "series": series[target].tolist(),
                "verdict": verdict,
            }
        measured[f"{optimizer}: cyclic vs reshuffle"] = {
            "direction_distance": direction_distance(
                finals[(optimizer, "cyclic")], finals[(optimizer, "reshuffle")]
            )
        }
    gaps = [row["direction_distance"] for key, row in measured.items() if "vs" in key]
    return make_record(
        "samplers_cyclic_vs_reshuffle",
        verdict=worst_verdict(verdicts),
        measured=measured,
        predicted={"adam-ps": "w_2* under both samplers (RR: open)",
                   "signum": "l_inf face under both (Thm 5.1)",
                   "d2inf_yardstick": refs.d2inf},
        tolerance=max(tols),
        tolerance_reason=(
            f"{SE_FACTOR:g} standard errors of the fitted slope + the 1e-8 floor of "
            "unit directions; pass needs the final distance < d2inf/10"
        ),
        data=ds.spec,
        settings={"batch_size": 1, "schedule": "0.1 (t + 1)^-0.5",
                  "steps": sizes["steps"], "seed": 1},
        notes=[f"cyclic vs reshuffle, distance of final directions (adam-ps, "
               f"signum): {np.round(gaps, 4).tolist()}"],
    )
