"""Headline behaviour at modest horizons on a discriminating Rademacher instance."""

import numpy as np
import pytest

from theorybox.data import rademacher
from theorybox.engine import run
from theorybox.metrics import make_metrics
from theorybox.optimizers import RunConfig, Schedule
from theorybox.references import compute_references, project_to_face


@pytest.fixture(scope="module")
def instance():
    data = rademacher(n=10, d=8, seed=14)
    Z = data.Z / np.abs(data.Z).max()
    refs = compute_references(Z)
    assert refs.discriminating, "the instance must separate l2 from l_inf"
    metrics = make_metrics(
        w2=refs.l2.w,
        gamma2=refs.l2.gamma,
        gamma_inf=refs.linf.gamma,
        face_project=lambda u: project_to_face(refs.face, u),
    )
    return Z, refs, metrics


SCHEDULE = Schedule(0.1, 1.0, 0.5)


def test_per_sample_adam_goes_to_l2(instance):
    Z, refs, metrics = instance
    result = run(Z, RunConfig("adam-ps", steps=100_000, schedule=SCHEDULE),
                 checkpoints=[1_000, 10_000, 100_000], metrics=metrics)
    cos2 = result.series("cos2")
    assert result.status == "ok"
    assert cos2[-1] > 0.99
    assert np.all(np.diff(cos2) > 0)
    # Closer to w_2* than to the l_inf face at the end.
    assert result.metrics[-1]["dist2"] < result.metrics[-1]["dist_face"]


def test_full_batch_adam_l_inf_gap_small_and_shrinking(instance):
    Z, refs, metrics = instance
    result = run(Z, RunConfig("adam", steps=100_000, schedule=SCHEDULE),
                 checkpoints=[1_000, 10_000, 100_000], metrics=metrics)
    gap = result.series("gap_inf")
    assert np.all(np.diff(gap) < 0), gap
    assert gap[-1] < 0.1 * refs.linf.gamma
    # And it is not heading to w_2*: its l_inf gap is below w_2*'s own.
    assert gap[-1] < refs.l2_linf_gap


def test_gd_moves_toward_l2(instance):
    Z, refs, metrics = instance
    result = run(Z, RunConfig("gd", steps=20_000, schedule=SCHEDULE),
                 checkpoints=[200, 2_000, 20_000], metrics=metrics)
    assert np.all(np.diff(result.series("cos2")) > 0)
    assert np.all(np.diff(result.series("gap2")) < 0)


def test_metrics_for_is_make_metrics_with_the_references(instance):
    """The shortcut every experiment uses: the same numbers as spelling it out."""
    from theorybox.metrics import metrics_for

    Z, refs, _ = instance
    w = np.linspace(1.0, 2.0, Z.shape[1])
    spelled = make_metrics(
        w2=refs.l2.w, gamma2=refs.l2.gamma, winf=refs.linf.w,
        gamma_inf=refs.face.gamma,
        face_project=lambda u: project_to_face(refs.face, u),
        extra={"one": np.ones(Z.shape[1])},
    )(Z, w, 7)
    short = metrics_for(refs, extra={"one": np.ones(Z.shape[1])})(Z, w, 7)
    assert short.keys() == spelled.keys()
    for key, value in spelled.items():
        np.testing.assert_array_equal(short[key], value, err_msg=key)
    assert "dist_face" not in metrics_for(refs, face=False)(Z, w, 7)
