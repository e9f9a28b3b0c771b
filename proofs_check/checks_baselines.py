"""Baselines: GD and SGD go to l2 at a logarithmic rate, SignGD goes to l_inf.

Claim 5 of theory.md section 3 (Soudry et al. 2018; Nacson et al. 2019;
Gunasekar et al. 2018), checklist item C13 of paper-notes.md section 7.
"""

from __future__ import annotations

import numpy as np

from proofs_check.checks_persample import judge_to_target
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
from theorybox.optimizers import Batching, RunConfig, Schedule

FAMILY = "baselines"

_GD = {"quick": {"steps": 10**6}, "full": {"steps": 10**7}}
_SGD = {
    "quick": {"steps": 10**6, "batch_sizes": (1, 2, 5, 10)},
    "full": {"steps": 10**7, "batch_sizes": (1, 2, 5, 10)},
}
_SIGNGD = {"quick": {"steps": 10**6}, "full": {"steps": 10**7}}

#: ``1 - cos`` of float64 unit vectors is resolved to about this.
COS_ABS_ERR = 1e-15


def log_rate(t, one_minus_cos, predicted: float = -2.0, two_sided: bool = True):
    r"""Fit ``1 - cos`` against ``log t`` and judge the rate :math:`1/\log^2 t`.

    The model :math:`1 - \cos = A/\log^2 t\,(1 + O(1/\log t))` is a straight line
    of slope -2 in log-log coordinates of ``(log t, 1 - cos)``; the next term of
    the expansion tilts the local slope by about ``2 / ln(t_min)``, which is the
    model slack. Two-sided (an asymptotic equality, as for GD): pass when
    ``|slope + 2| <= tol``; one-sided (an upper bound, as for SGD): pass when
    ``slope <= -2 + tol``. Fail when the quantity does not decay; inconclusive
    otherwise.

    Returns
    -------
    (str, RateFit, float)
    """
    xs, ys = geometric_tail(np.log(t), one_minus_cos, 4)
    fit = fit_rate(xs, ys)
    slack = 2.0 / float(xs[0])
    tol = SE_FACTOR * fit.slope_se + precision_floor(xs, ys, COS_ABS_ERR) + slack
    if two_sided:
        ok = abs(fit.slope - predicted) <= tol
    else:
        ok = fit.slope <= predicted + tol
    if ok:
        verdict = "pass"
    elif shows_no_decay(fit, tol):
        verdict = "fail"
    else:
        verdict = "inconclusive"
    return verdict, fit, tol


@claim_check(
    "gd_l2_log_rate",
    family=FAMILY,
    claim="GD -> w_2* with 1 - cos falling like 1/log^2 t",
    source="theory.md claim 5 (Soudry et al. 2018); checklist C13",
)
def gd_l2_log_rate(profile: str):
    r"""Gradient descent's direction error falls like :math:`1/\log t`.

    **Claim.** On separable data with the logistic loss and a constant step
    below the smoothness bound, :math:`w_t = w_2^* \log t + \rho_t` with bounded
    :math:`\rho_t` (Soudry et al. 2018, for almost all data), so
    :math:`1 - \cos(w_t, w_2^*) = A / \log^2 t + O(\log^{-3} t)`.

    **Judged** by fitting ``log(1 - cos)`` against ``log log t`` on geometric
    points of ``log t`` (:func:`log_rate`): the slope must be -2 within the fit
    error, the float64 floor of ``1 - cos`` and the slack of the next term.

    **Data.** ``rademacher(10, 8, seed=14)``; constant step 1.
    """
    sizes = _GD[profile]
    ds = rademacher_instance()
    metrics = reference_metrics(ds.Z)
    steps = checkpoints(100, sizes["steps"])
    config = RunConfig("gd", sizes["steps"], schedule=Schedule(1.0, 1.0, 0.0))
    t, series, result = run_series(ds.Z, config, steps, metrics)
    omc = 1.0 - series["cos2"]
    verdict, fit, tol = log_rate(t, omc)
    return make_record(
        "gd_l2_log_rate",
        verdict=verdict,
        measured={"slope_vs_log_t": fit.slope, "slope_se": fit.slope_se,
                  "one_minus_cos_final": float(omc[-1]),
                  "one_minus_cos": omc.tolist(), "steps": t.tolist(),
                  "status": result.status},
        predicted={"slope_vs_log_t": -2.0},
        tolerance=tol,
        tolerance_reason=(
            f"{SE_FACTOR:g} standard errors of the slope + float64 floor of 1 - cos "
            "(1e-15) + 2/ln(t_min) for the O(1/log t) next term"
        ),
        data=ds.spec,
        settings=config.to_dict(),
    )


@claim_check(
    "sgd_l2_batch_sizes",
    family=FAMILY,
    claim="SGD -> w_2* for every batch size, 1 - cos like 1/log^2 t",
    source="theory.md claim 5 (Nacson, Srebro, Soudry 2019); checklist C13",
)
def sgd_l2_batch_sizes(profile: str):
    r"""SGD goes to the l2 max margin for every batch size.

    **Claim.** SGD with a fixed small step, sampling without replacement
    (random reshuffling), converges in direction to ``w_2*`` at the rate
    :math:`O(1/\log t)` for any batch size (Nacson et al. 2019), so
    ``1 - cos`` falls like :math:`1/\log^2 t`.

    **Judged** as ``gd_l2_log_rate`` but one-sided (the rate is an upper bound:
    a faster fall over the window passes), for each batch size ``b`` in
    ``{1, 2, N/2, N}``; the verdict is the worst of them.
    """
    sizes = _SGD[profile]
    ds = rademacher_instance()
    metrics = reference_metrics(ds.Z)
    steps = checkpoints(100, sizes["steps"])
    measured, verdicts, tols = {}, [], []
    for b in sizes["batch_sizes"]:
        config = RunConfig("sgd", sizes["steps"], batching=Batching("reshuffle", b),
                           schedule=Schedule(1.0, 1.0, 0.0), seed=4)
        t, series, result = run_series(ds.Z, config, steps, metrics)
        omc = 1.0 - series["cos2"]
        verdict, fit, tol = log_rate(t, omc, two_sided=False)
        verdicts.append(verdict)
        tols.append(tol)
        measured[f"b={b}"] = {"slope_vs_log_t": fit.slope, "slope_se": fit.slope_se,
                              "one_minus_cos_final": float(omc[-1]),
                              "one_minus_cos": omc.tolist(), "verdict": verdict,
                              "status": result.status}
    return make_record(
        "sgd_l2_batch_sizes",
        verdict=worst_verdict(verdicts),
        measured=measured,
        predicted={"slope_vs_log_t_at_most": -2.0, "limit": "w_2*"},
        tolerance=max(tols),
        tolerance_reason=(
            f"{SE_FACTOR:g} standard errors of the slope + float64 floor of 1 - cos "
            "+ 2/ln(t_min) for the O(1/log t) next term"
        ),
        data=ds.spec,
        settings={"optimizer": "sgd", "batching": "reshuffle", "lr": 1.0,
                  "steps": sizes["steps"], "seed": 4},
    )


@claim_check(
    "signgd_linf",
    family=FAMILY,
    claim="SignGD (l_inf steepest descent) -> the l_inf max-margin face",
    source="theory.md claim 5 (Gunasekar et al. 2018); checklist C13",
)
def signgd_linf(profile: str):
    r"""SignGD goes to the l_inf max margin.

    **Claim.** Steepest descent with respect to a norm converges in direction to
    that norm's max margin on separable data (Gunasekar et al. 2018); SignGD is
    l_inf steepest descent (unnormalised by the dual norm, equivalent in
    direction for a decaying step).

    **Judged** by the distance to the l_inf face (the solution is often a set),
    as in ``adam_ps_rademacher_l2``: it must decay on four geometric checkpoints
    and end below a tenth of the distance between ``w_2*`` and the face.
    """
    sizes = _SIGNGD[profile]
    ds = rademacher_instance()
    refs = references(ds.Z)
    metrics = reference_metrics(ds.Z, face=True)
    steps = checkpoints(1000, sizes["steps"])
    config = RunConfig("signgd", sizes["steps"], schedule=Schedule(0.1, 1.0, 0.5))
    t, series, result = run_series(ds.Z, config, steps, metrics)
    verdict, fit, tol = judge_to_target(t, series["dist_face"], refs.d2inf)
    return make_record(
        "signgd_linf",
        verdict=verdict,
        measured={"slope_dist_face_vs_t": fit.slope, "slope_se": fit.slope_se,
                  "dist_face_final": float(series["dist_face"][-1]),
                  "gap_inf_final": float(series["gap_inf"][-1]),
                  "dist_face": series["dist_face"].tolist(), "steps": t.tolist(),
                  "status": result.status},
        predicted={"limit": "l_inf face", "d2inf_yardstick": refs.d2inf},
        tolerance=tol,
        tolerance_reason=(
            f"{SE_FACTOR:g} standard errors of the slope + the 1e-8 floor of unit "
            "directions; pass needs the final distance < d2inf/10"
        ),
        data=ds.spec,
        settings=config.to_dict(),
    )
