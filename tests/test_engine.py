"""The float64 engine against independent references, and its contract.

* Every registered optimizer, under every batching scheme that makes sense for
  it, against a hand-written float64 recurrence (style.md habit 3) that does not
  use :mod:`theorybox.optimizers.rules`: the iterate after each of 50 steps.
* Every optimizer against :func:`theorybox.engine.mp.run_mpmath` at 60 digits, far
  past float64's underflow wall, on dense and on sparse data (cases.md K17).
* Checkpoint and resume, state files, reproducibility, validation errors and
  warnings, and a user-registered optimizer.
"""

import math
import warnings

import numpy as np
import pytest

from theorybox.engine import EngineState, advance, run
from theorybox.engine.mp import run_mpmath
from theorybox.errors import (
    DivergenceWarning,
    InvalidDataError,
    InvalidParameterError,
    PrecisionWarning,
)
from theorybox.optimizers import (
    Batching,
    OptimizerSpec,
    RunConfig,
    Schedule,
    get_optimizer,
    register,
)
from theorybox.optimizers import registry as registry_module
from theorybox.rng import draw_indices, permutation

EPS = float(np.finfo(np.float64).eps)

#: Six samples in three dimensions, mixed signs, separated by w = (1, 1, 1) with
#: margins 1 to 2. Every entry is a short binary fraction, so the data are exact.
Z_DENSE = np.array(
    [
        [1.0, 0.5, -0.25],
        [0.75, -0.5, 1.25],
        [-0.25, 1.0, 0.5],
        [1.5, 0.25, 0.25],
        [0.5, 1.25, -0.5],
        [0.25, -0.25, 1.0],
    ]
)
W0_DENSE = np.array([0.125, -0.25, 0.0625])

#: cases.md K17: coordinate 3 is touched only by sample 3.
Z_K17 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [2.0, 2.0, 1.0]])


# The reference: a scalar recurrence written from theory.md section 2, in plain
# numpy float64, sharing nothing with the engine but the random stream.


def _weight(s, loss):
    """g = -l'(s): 1 / (1 + e^s) (logistic) or e^-s (exponential).

    Formed directly, which is right only at moderate margins (|s| < 700).
    """
    if loss == "exponential":
        return math.exp(-s)
    return 1.0 / (1.0 + math.exp(s))


def _batches(n, batching, seed):
    """The sample indices of steps 0, 1, 2, ... (run 0 of the seed's stream).

    An epoch has ceil(n / b) steps; cyclic and reshuffled epochs are cut into
    consecutive slices of a fixed order or of that epoch's permutation (the last
    slice smaller when b does not divide n); with replacement, step j of an epoch
    takes the epoch stream's draws j b, ..., j b + b - 1.
    """
    scheme = batching.scheme
    b = n if scheme == "full" or batching.batch_size is None else batching.batch_size
    per_epoch = -(-n // b)
    t = 0
    while True:
        epoch, j = divmod(t, per_epoch)
        start = j * b
        if scheme == "full":
            yield list(range(n))
        elif scheme == "cyclic":
            yield list(range(start, min(start + b, n)))
        elif scheme == "reshuffle":
            yield list(permutation(seed, 0, epoch, n)[start : start + b])
        else:
            yield list(draw_indices(seed, 0, epoch, start, b, n))
        t += 1


def _ratio(a, b):
    """a / b coordinate-wise with 0 / 0 = 0."""
    return np.divide(a, b, out=np.zeros_like(a), where=b != 0)


_FAMILY = {
    "gd": "gd",
    "sgd": "gd",
    "signgd": "sign",
    "signum": "signum",
    "adam": "adam",
    "adam-ps": "adam",
    "adam-mb": "adam",
    "adamproxy": "proxy",
}


def reference_trajectory(Z, config, w0, steps):
    """Iterates w_1, ..., w_steps of ``config`` by the textbook recurrence."""
    n, d = Z.shape
    kind = _FAMILY[config.optimizer]
    h = config.hyper
    sched = config.schedule
    batches = _batches(n, config.batching, config.seed)
    w = np.array(w0, dtype=np.float64)
    m = np.zeros(d)
    v = np.zeros(d)
    out = []
    for t in range(steps):
        lr = sched.eta0 if sched.a == 0 else sched.eta0 * (t + sched.t0) ** -sched.a
        batch = next(batches)

        # Per-sample gradients grad L_i = -g_i z_i; G their mean, Q the sum of
        # their squares.
        grads = [-_weight(float(Z[i] @ w), config.loss) * Z[i] for i in batch]
        G = sum(grads) / len(batch)
        Q = sum(gi * gi for gi in grads)

        # The update direction (theory.md section 2); t + 1 steps taken.
        k = t + 1
        if kind == "gd":
            direction = G
        elif kind == "sign":
            direction = np.sign(G)
        elif kind == "signum":
            m = h["beta"] * m + (1 - h["beta"]) * G
            direction = np.sign(m)
        elif kind == "proxy":
            direction = _ratio(G, np.sqrt(Q))
        else:
            b1, b2, eps = h["b1"], h["b2"], h["eps"]
            m = b1 * m + (1 - b1) * G
            v = b2 * v + (1 - b2) * G**2
            c1 = 1 - b1**k if h["bias_correction"] else 1.0
            c2 = 1 - b2**k if h["bias_correction"] else 1.0
            if h["eps_mode"] == 0:
                direction = _ratio(m / c1, np.sqrt(v / c2) + eps)
            elif h["eps_mode"] == 1:
                direction = _ratio(m / c1, np.sqrt(v / c2 + eps))
            else:
                direction = math.sqrt(c2) / c1 * _ratio(m, np.sqrt(v) + eps)
        w = w - lr * direction
        out.append(w.copy())
    return out


def engine_trajectory(Z, config, w0, steps):
    """The engine's iterates, advancing one step at a time."""
    state = EngineState.initial(np.asarray(w0, dtype=np.float64),
                                len(config.spec.state))
    out = []
    for _ in range(steps):
        advance(Z, config, state, 1)
        out.append(state.w[0].copy())
    return out


DECAY = Schedule(0.1, 1.0, 0.5)
CONST = Schedule(0.05, 1.0, 0.0)
ADAM_OFF = {"eps": 0.0, "bias_correction": 0}
ADAM_BC = {"eps": 0.0, "bias_correction": 1}

# (optimizer, hyper, batching, schedule, loss); batching None is the optimizer's
# default. Batch sizes 1, 2, 4 and 5 (uneven: an epoch's last batch has 2 or 1
# samples) and N = 6.
REFERENCE_CASES = [
    ("sgd", {}, None, DECAY, "logistic"),
    ("adam-ps", ADAM_OFF, None, DECAY, "logistic"),
    ("adam-mb", ADAM_BC, None, DECAY, "logistic"),
    ("gd", {}, Batching("full"), CONST, "logistic"),
    ("gd", {}, Batching("full"), DECAY, "exponential"),
    ("sgd", {}, Batching("cyclic", 1), DECAY, "logistic"),
    ("sgd", {}, Batching("reshuffle", 1), CONST, "logistic"),
    ("sgd", {}, Batching("reshuffle", 4), DECAY, "logistic"),
    ("sgd", {}, Batching("replacement", 2), DECAY, "logistic"),
    ("sgd", {}, Batching("cyclic", 6), CONST, "logistic"),
    ("signgd", {}, Batching("full"), DECAY, "logistic"),
    ("signgd", {}, Batching("full"), CONST, "exponential"),
    ("signum", {"beta": 0.9}, Batching("full"), DECAY, "logistic"),
    ("signum", {"beta": 0.9}, Batching("cyclic", 1), CONST, "logistic"),
    ("signum", {"beta": 0.5}, Batching("reshuffle", 2), DECAY, "logistic"),
    ("signum", {"beta": 0.9}, Batching("replacement", 1), DECAY, "logistic"),
    ("adam", ADAM_OFF, Batching("full"), DECAY, "logistic"),
    ("adam", ADAM_BC, Batching("full"), CONST, "logistic"),
    ("adam", {"eps": 1e-8, "eps_mode": 0, "bias_correction": 1}, None, DECAY,
     "logistic"),
    ("adam", {"eps": 1e-3, "eps_mode": 0, "bias_correction": 0}, None, DECAY,
     "logistic"),
    ("adam", {"eps": 1e-3, "eps_mode": 1, "bias_correction": 1}, None, CONST,
     "logistic"),
    ("adam", {"eps": 1e-3, "eps_mode": 1, "bias_correction": 0}, None, DECAY,
     "logistic"),
    ("adam", {"eps": 1e-3, "eps_mode": 2, "bias_correction": 1}, None, DECAY,
     "logistic"),
    ("adam", ADAM_OFF, None, DECAY, "exponential"),
    ("adam-ps", ADAM_OFF, Batching("cyclic", 1), DECAY, "logistic"),
    ("adam-ps", ADAM_BC, Batching("cyclic", 1), CONST, "logistic"),
    ("adam-ps", {"eps": 1e-3, "eps_mode": 0}, Batching("reshuffle", 1), DECAY,
     "logistic"),
    ("adam-ps", ADAM_OFF, Batching("replacement", 1), DECAY, "logistic"),
    ("adam-mb", ADAM_OFF, Batching("reshuffle", 2), DECAY, "logistic"),
    ("adam-mb", ADAM_BC, Batching("cyclic", 4), DECAY, "logistic"),
    ("adam-mb", ADAM_OFF, Batching("replacement", 4), CONST, "logistic"),
    ("adam-mb", ADAM_BC, Batching("reshuffle", 6), DECAY, "logistic"),
    ("adamproxy", {}, Batching("full"), DECAY, "logistic"),
    ("adamproxy", {}, Batching("full"), CONST, "exponential"),
    ("adamproxy", {}, Batching("reshuffle", 2), DECAY, "logistic"),
]


def _case_id(case):
    opt, hyper, batching, sched, loss = case
    bits = [opt]
    if batching is not None:
        bits.append(f"{batching.scheme}{batching.batch_size or ''}")
    bits += [f"{k}={v}" for k, v in hyper.items()]
    bits.append("const" if sched.a == 0 else "decay")
    if loss != "logistic":
        bits.append(loss)
    return "-".join(bits)


REFERENCE_STEPS = 50


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=_case_id)
def test_engine_matches_reference_recurrence(case):
    """Each step's iterate equals the textbook recurrence to float64 round-off.

    Tolerance: the engine and the reference each round ``w + dw`` (at most
    EPS/2 max|w| a step) and each form ``dw`` with a relative error of a few EPS
    (a sum over at most N = 6 samples, about ten operations in the rule), so a
    step adds at most about 2 (EPS/2 + 2 EPS) max(|w|, |dw|) to their difference.
    An earlier difference delta shifts the margins (|s| < 10 here) by at most
    ||z||_1 delta <= 2.5 delta, hence the weights and the next step by a relative
    2.5 delta, which is of the same order at these step sizes. Summed over t
    steps: |w_engine - w_ref| <= 8 EPS t max(1, max|w|), with |dw| <= 1 here.
    """
    opt, hyper, batching, sched, loss = case
    config = RunConfig(opt, REFERENCE_STEPS, hyper=hyper, batching=batching,
                       schedule=sched, loss=loss, seed=7)
    ref = reference_trajectory(Z_DENSE, config, W0_DENSE, REFERENCE_STEPS)
    got = engine_trajectory(Z_DENSE, config, W0_DENSE, REFERENCE_STEPS)
    scale = 1.0
    for t, (a, b) in enumerate(zip(got, ref, strict=True), start=1):
        scale = max(scale, float(np.abs(b).max()))
        tol = 8 * EPS * t * scale
        assert np.abs(a - b).max() <= tol, (
            f"step {t}: engine {a!r} vs reference {b!r}, tolerance {tol:.3g}"
        )
    # The run moved, so the comparison is not between two frozen iterates.
    assert np.abs(ref[-1] - W0_DENSE).max() > 0.1


# Engine against 60-digit mpmath past the underflow wall.

#: Dense data at margins 825.6, 826, 838.25 and 950.25 (w0 below): weights
#: e^-825 and smaller, all zero in plain float64; two samples nearly tied, so the
#: weight ratios, not only the largest weight, decide the steps.
Z_WALL = np.array(
    [
        [1.0, 0.5, 0.25],
        [0.75, 0.25, 0.625],
        [0.5, 0.25, 1.0],
        [1.0, -0.125, 0.75],
    ]
)
W0_WALL = np.array([600.0, 500.0, 401.0])
W0_K17 = np.array([900.0, 850.0, 0.0])  # margins 900, 850, 3500: gap 2600

WALL_STEPS = 300

#: Every registered optimizer; the default batching unless it does not fit N = 3.
WALL_CONFIGS = {
    "gd": ({}, None),
    "sgd": ({}, None),
    "signgd": ({}, None),
    "signum": ({"beta": 0.9}, None),
    "adam": (ADAM_OFF, None),
    "adam-ps": (ADAM_OFF, None),
    "adam-mb": (ADAM_BC, Batching("reshuffle", 2)),
    "adamproxy": ({}, None),
}


def test_every_builtin_optimizer_is_covered():
    builtin = {"gd", "sgd", "signgd", "signum", "adam", "adam-ps", "adam-mb",
               "adamproxy"}
    assert builtin <= set(registry_module.list_optimizers())
    assert set(_FAMILY) == builtin
    assert set(WALL_CONFIGS) == builtin
    assert {case[0] for case in REFERENCE_CASES} == builtin


@pytest.mark.parametrize("data", ["dense", "sparse-K17"])
@pytest.mark.parametrize("opt", list(WALL_CONFIGS))
def test_engine_matches_mpmath_past_the_underflow_wall(opt, data):
    """The float64 engine follows 60-digit mpmath at margins 850 to 3500.

    Tolerance: the mpmath run is exact to 1e-55 here. Each engine step rounds
    ``w + dw`` (EPS/2 |w|) and forms ``dw`` with relative error a few EPS; an
    error delta in ``w`` changes margin differences by about |z| delta ~ 1e-10,
    hence the weights' ratios by a relative 1e-10, which feeds back negligibly.
    So after T steps |w_engine - w_mp| <= T (EPS/2 max|w| + c EPS max|dw|) with
    max|dw| <= 8 lr << max|w|; 2 EPS T max|w| bounds it with room to spare.
    Hyperparameters enter mpmath as their exact binary values, so both runs
    compute the same mathematical recurrence.
    """
    Z, w0 = (Z_WALL, W0_WALL) if data == "dense" else (Z_K17, W0_K17)
    hyper, batching = WALL_CONFIGS[opt]
    config = RunConfig(opt, WALL_STEPS, hyper=hyper, batching=batching,
                       schedule=Schedule(0.1, 1.0, 0.5), seed=3)
    assert (Z @ w0).min() > 800

    mp = run_mpmath(Z, config, w0=w0, dps=60, hyper_as="binary")
    if _FAMILY[opt] == "gd":
        # Steps of e^-850 cannot move an iterate of size 900: the engine must say
        # so (and mpmath agrees that w has not changed to float64 precision).
        with pytest.warns(PrecisionWarning):
            result = run(Z, config, w0=w0, checkpoints=[WALL_STEPS])
        assert result.status == "stalled"
        assert result.stall_step == 0
        assert result.stall_count == WALL_STEPS
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = run(Z, config, w0=w0, checkpoints=[WALL_STEPS])
        assert result.status == "ok"
        assert result.stall_step is None
    want = mp.as_float()
    tol = 2 * EPS * WALL_STEPS * float(np.abs(want).max())
    assert np.abs(result.w - want).max() <= tol, (result.w, want, tol)
    if _FAMILY[opt] != "gd":
        # Every coordinate moved, coordinate 3 of K17 included.
        assert np.abs(want - w0).min() > 0.5


# Checkpoint and resume.

RESUME_CASES = [
    ("adam-ps", ADAM_BC, Batching("reshuffle", 1), Z_DENSE, W0_DENSE),
    ("signum", {"beta": 0.9}, Batching("replacement", 2), Z_DENSE, W0_DENSE),
    ("adam-mb", ADAM_OFF, Batching("cyclic", 4), Z_DENSE, W0_DENSE),
    ("adamproxy", {}, Batching("full"), Z_DENSE, W0_DENSE),
    ("sgd", {}, Batching("reshuffle", 4), Z_DENSE, W0_DENSE),
    # Past the wall: the per-coordinate scales are far from 0 when resuming.
    ("adam-ps", ADAM_OFF, Batching("cyclic", 1), Z_K17, W0_K17),
]


def _assert_states_identical(a, b):
    for key, x in a.to_arrays().items():
        y = b.to_arrays()[key]
        assert x.dtype == y.dtype, key
        np.testing.assert_array_equal(x, y, err_msg=key)


@pytest.mark.parametrize(
    "case", RESUME_CASES, ids=lambda c: f"{c[0]}-{c[2].scheme}{c[2].batch_size}"
)
def test_resume_is_bit_for_bit(case, tmp_path):
    """100 steps in one go equal 40 steps, then 60 more from the returned state
    (a decaying schedule, so the resumed run must continue the step count), and
    equal 40 + 60 through a state file."""
    opt, hyper, batching, Z, w0 = case

    def config(steps):
        return RunConfig(opt, steps, hyper=hyper, batching=batching,
                         schedule=DECAY, seed=11)

    whole = run(Z, config(100), w0=w0, checkpoints=[40, 100])
    first = run(Z, config(40), w0=w0, checkpoints=[40])
    second = run(Z, config(60), state=first.state, checkpoints=[60])
    _assert_states_identical(whole.state, second.state)
    assert second.steps.tolist() == [100]
    assert second.metrics[-1]["t"] == 100
    np.testing.assert_array_equal(whole.metrics[0]["w"], first.w)
    # The first run's state is not modified by resuming from it.
    assert int(first.state.t[0]) == 40

    path = tmp_path / "state.npz"
    first.state.save(path)
    loaded = EngineState.load(path)
    _assert_states_identical(first.state, loaded)
    third = run(Z, config(60), state=loaded, checkpoints=[60])
    _assert_states_identical(whole.state, third.state)


def test_advance_in_pieces_equals_one_call():
    config = RunConfig("adam-mb", 0, hyper=ADAM_BC,
                       batching=Batching("reshuffle", 4), schedule=DECAY, seed=5)
    a = EngineState.initial(W0_DENSE, 2)
    b = EngineState.initial(W0_DENSE, 2)
    advance(Z_DENSE, config, a, 37)
    for chunk in (1, 5, 13, 18):
        advance(Z_DENSE, config, b, chunk)
    _assert_states_identical(a, b)


def test_state_roundtrip_keeps_every_array(tmp_path):
    state = EngineState.initial(np.array([[1.0, 2.0], [3.0, 4.0]]), 2)
    state.moments[:] = np.arange(8.0).reshape(2, 2, 2) * 1e-300
    state.scale[:] = [[-1234.5, 0.0], [7.0, -3.0e4]]
    state.t[:] = [17, 2**40]
    state.stall[:] = [[3, 5], [0, 0]]
    path = tmp_path / "s.npz"
    state.save(path)
    _assert_states_identical(state, EngineState.load(path))
    _assert_states_identical(state, EngineState.from_arrays(state.to_arrays()))


# Reproducibility.


@pytest.mark.parametrize("scheme", ["reshuffle", "replacement"])
def test_same_seed_same_bits_other_seed_other_order(scheme):
    def go(seed):
        config = RunConfig("adam-ps", 60, hyper=ADAM_OFF,
                           batching=Batching(scheme, 1), schedule=DECAY, seed=seed)
        return run(Z_DENSE, config, w0=W0_DENSE, checkpoints=[60]).w

    np.testing.assert_array_equal(go(1), go(1))
    assert not np.array_equal(go(1), go(2))
    n = len(Z_DENSE)
    if scheme == "reshuffle":
        orders_1 = [permutation(1, 0, e, n).tolist() for e in range(10)]
        orders_2 = [permutation(2, 0, e, n).tolist() for e in range(10)]
    else:
        orders_1 = [draw_indices(1, 0, e, 0, n, n).tolist() for e in range(10)]
        orders_2 = [draw_indices(2, 0, e, 0, n, n).tolist() for e in range(10)]
    assert orders_1 != orders_2


def test_many_runs_at_once_match_single_runs():
    """A state with several runs advances each as run r of the seed's stream; run 0
    of a multi-run state is exactly the single run."""
    config = RunConfig("sgd", 0, batching=Batching("reshuffle", 2), schedule=DECAY,
                       seed=9)
    multi = EngineState.initial(np.tile(W0_DENSE, (3, 1)), 0)
    single = EngineState.initial(W0_DENSE, 0)
    advance(Z_DENSE, config, multi, 25)
    advance(Z_DENSE, config, single, 25)
    np.testing.assert_array_equal(multi.w[0], single.w[0])
    # Other runs draw other orders, so they end elsewhere.
    assert not np.array_equal(multi.w[1], multi.w[0])


# Validation: loud, early, specific.


def test_divergence_warning_when_b1_exceeds_sqrt_b2():
    with pytest.warns(DivergenceWarning, match="b1"):
        RunConfig("adam", 10, hyper={"b1": 0.99, "b2": 0.9, "eps": 0.0})
    with pytest.warns(DivergenceWarning):
        RunConfig("adam-ps", 10, hyper={"b1": 0.9, "b2": 0.5})
    # No warning at b1 <= sqrt(b2), or with eps > 0.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RunConfig("adam", 10, hyper={"b1": 0.9, "b2": 0.81})
        RunConfig("adam", 10, hyper={"b1": 0.99, "b2": 0.9, "eps": 1e-8})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "adam", "hyper": {"b1": 1.0}}, "b1"),
        ({"optimizer": "adam", "hyper": {"b1": 1.5}}, "b1"),
        ({"optimizer": "adam", "hyper": {"b1": -0.1}}, "b1"),
        ({"optimizer": "adam", "hyper": {"b2": 0.0}}, "b2"),
        ({"optimizer": "adam", "hyper": {"b2": -0.5}}, "b2"),
        ({"optimizer": "adam-ps", "hyper": {"b2": 1.0}}, "b2"),
        ({"optimizer": "adam", "hyper": {"eps": -1e-8}}, "eps"),
        ({"optimizer": "adam", "hyper": {"eps_mode": 3}}, "eps_mode"),
        ({"optimizer": "adam", "hyper": {"bias_correction": 2}}, "bias_correction"),
        ({"optimizer": "adam", "hyper": {"b1": float("nan")}}, "b1"),
        ({"optimizer": "signum", "hyper": {"beta": 1.0}}, "beta"),
        ({"optimizer": "adam", "hyper": {"b3": 0.5}}, "b3"),
        ({"optimizer": "gd", "hyper": {"beta": 0.5}}, "beta"),
        ({"optimizer": "no-such-optimizer"}, "no-such-optimizer"),
        ({"optimizer": "gd", "steps": -1}, "steps"),
        ({"optimizer": "gd", "loss": "hinge"}, "hinge"),
    ],
)
def test_invalid_parameters_raise(kwargs, match):
    kwargs = {"steps": 10, **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        RunConfig(**kwargs)


@pytest.mark.parametrize("eta0", [-0.1, 0.0, float("inf"), float("nan")])
def test_nonpositive_learning_rate_raises(eta0):
    with pytest.raises(InvalidParameterError, match="eta0"):
        Schedule(eta0, 1.0, 0.5)


def test_bad_schedule_and_batching_raise():
    with pytest.raises(InvalidParameterError, match="a = "):
        Schedule(0.1, 1.0, 1.5)
    with pytest.raises(InvalidParameterError, match="bogus"):
        Batching("bogus", 2)
    with pytest.raises(InvalidParameterError, match="batch_size"):
        Batching("cyclic", 0)


@pytest.mark.parametrize("backend", ["engine", "mpmath"])
def test_batch_larger_than_data_raises(backend):
    config = RunConfig("sgd", 5, batching=Batching("reshuffle", 7))
    with pytest.raises(InvalidParameterError, match="batch_size = 7"):
        if backend == "engine":
            run(Z_DENSE, config)
        else:
            run_mpmath(Z_DENSE, config, dps=20)


_BAD_DATA = {
    "nan": (np.array([[1.0, np.nan], [0.0, 1.0]]), None),
    "inf": (np.array([[1.0, np.inf], [0.0, 1.0]]), None),
    "empty": (np.zeros((0, 2)), None),
    "one-dimensional": (np.array([1.0, 2.0]), None),
    "w0-too-short": (np.eye(2), np.array([1.0])),
    "w0-too-long": (np.eye(2), np.array([1.0, 2.0, 3.0])),
    "w0-nan": (np.eye(2), np.array([1.0, np.nan])),
}


@pytest.mark.parametrize("backend", ["engine", "mpmath"])
@pytest.mark.parametrize("bad", list(_BAD_DATA))
def test_invalid_data_raise(bad, backend):
    """Every entry point rejects malformed data with InvalidDataError."""
    Z, w0 = _BAD_DATA[bad]
    config = RunConfig("signgd", 3)
    with pytest.raises(InvalidDataError):
        if backend == "engine":
            run(Z, config, w0=w0)
        else:
            run_mpmath(Z, config, w0=w0, dps=20)


def test_advance_rejects_state_of_wrong_width():
    config = RunConfig("gd", 1)
    with pytest.raises(InvalidDataError, match="d = 2"):
        advance(Z_DENSE, config, EngineState.initial(np.zeros(2), 0), 1)


# A user-registered optimizer runs through the engine and through mpmath.

ops = None  # rebound per backend by theorybox.arith.bind_ops


def half_sign_step(lr, t, s, G, Q):
    r"""Half-step SignGD: :math:`w \leftarrow w - \eta_t \operatorname{sign}(G) / 2`."""
    return (-0.5 * lr * ops.sign(G),)


def heavy_ball_step(lr, t, s, G, Q, m, mu):
    r"""Heavy ball: :math:`m \leftarrow \mu m + G`, :math:`w \leftarrow w - \eta_t m`.

    ``m`` has power 1 in the coordinate's scale; the step leaves the scale with
    ``mulexp``.
    """
    m = mu * m + G
    return (-ops.mulexp(lr * m, s), m)


@pytest.fixture
def private_registry(monkeypatch):
    """Registrations made in the test are discarded afterwards."""
    monkeypatch.setattr(
        registry_module, "_REGISTRY", dict(registry_module._REGISTRY)
    )


def test_user_registered_stateless_optimizer(private_registry):
    name = "test-engine-half-sign"
    register(OptimizerSpec(name, half_sign_step, description="half SignGD"),
             replace=True)
    assert get_optimizer(name).rule is half_sign_step
    config = RunConfig(name, 40, schedule=DECAY)
    engine = run(Z_DENSE, config, w0=W0_DENSE, checkpoints=[40])

    # Half the step of SignGD with the same (halved, exactly) schedule: equal bits.
    signgd = RunConfig("signgd", 40, schedule=Schedule(0.05, 1.0, 0.5))
    np.testing.assert_array_equal(
        engine.w, run(Z_DENSE, signgd, w0=W0_DENSE, checkpoints=[40]).w
    )
    # The same rule at 60 digits: sign steps of exact binary sizes, so the only
    # float64 error is rounding w + dw and lr's power (40 steps, |w| <= 4).
    mp = run_mpmath(Z_DENSE, config, w0=W0_DENSE, dps=60, hyper_as="binary")
    np.testing.assert_allclose(engine.w, mp.as_float(), rtol=0, atol=8 * EPS * 40 * 4)

    # Past the wall, where only the log-domain weights keep the sign right.
    wall = run(Z_WALL, config, w0=W0_WALL, checkpoints=[40])
    mp_wall = run_mpmath(Z_WALL, config, w0=W0_WALL, dps=60, hyper_as="binary")
    assert wall.status == "ok"
    np.testing.assert_allclose(wall.w, mp_wall.as_float(), rtol=2 * EPS * 40, atol=0)


def test_user_registered_stateful_optimizer(private_registry):
    name = "test-engine-heavy-ball"
    register(
        OptimizerSpec(name, heavy_ball_step, state=(("m", 1),), hyper={"mu": 0.5}),
        replace=True,
    )
    steps = 30
    config = RunConfig(name, steps, hyper={"mu": 0.75}, schedule=CONST)
    engine = engine_trajectory(Z_DENSE, config, W0_DENSE, steps)

    # Reference: heavy ball by hand.
    w = W0_DENSE.copy()
    m = np.zeros(3)
    ref = []
    for _ in range(steps):
        g = np.array([_weight(float(z @ w), "logistic") for z in Z_DENSE])
        G = -(g[:, None] * Z_DENSE).mean(axis=0)
        m = 0.75 * m + G
        w = w - CONST.eta0 * m
        ref.append(w.copy())
    for t, (a, b) in enumerate(zip(engine, ref, strict=True), start=1):
        assert np.abs(a - b).max() <= 8 * EPS * t * max(1.0, np.abs(b).max())

    mp = run_mpmath(Z_DENSE, config, w0=W0_DENSE, dps=60, hyper_as="binary")
    scale = max(1.0, float(np.abs(ref[-1]).max()))
    assert np.abs(engine[-1] - mp.as_float()).max() <= 8 * EPS * steps * scale

    with pytest.raises(InvalidParameterError, match="already registered"):
        register(OptimizerSpec(name, heavy_ball_step, state=(("m", 1),),
                               hyper={"mu": 0.5}))


def _reads_q_late(lr, t, s, G, Q):
    step = ops.mulexp(lr * G, s)
    return (-step / (1.0 + 0.0 * Q),)


def test_kernel_forms_q_only_for_rules_that_read_it(private_registry):
    """The sum of squared gradients is left out of a kernel whose rule ignores it.

    Checked from the generated source, and for a user rule that reads ``Q`` only in
    its last line: its kernel still forms ``Q``, and the rule (GD divided by the
    exact ``1 + 0 Q``) runs to GD's bits.
    """
    from theorybox.engine.kernel import kernel_source, reads_argument

    for name in ("gd", "signgd", "signum", "adam"):
        spec = get_optimizer(name)
        assert not reads_argument(spec.rule, "Q"), name
        assert "qs +=" not in kernel_source(spec), name
    for name in ("adamproxy", "phi-proxy"):
        spec = get_optimizer(name)
        assert reads_argument(spec.rule, "Q"), name
        assert "qs +=" in kernel_source(spec), name
    assert reads_argument(_reads_q_late, "Q")

    name = "test-engine-reads-q-late"
    register(OptimizerSpec(name, _reads_q_late), replace=True)
    assert "qs +=" in kernel_source(get_optimizer(name))
    config = RunConfig(name, 25, schedule=CONST, batching=Batching("full"))
    gd = RunConfig("gd", 25, schedule=CONST, batching=Batching("full"))
    np.testing.assert_array_equal(
        run(Z_DENSE, config, w0=W0_DENSE, checkpoints=[25]).w,
        run(Z_DENSE, gd, w0=W0_DENSE, checkpoints=[25]).w,
    )


# The kernel's fast path for dense steps.

FAST_CASES = [
    ("adam-ps", ADAM_OFF, None),
    ("adam", ADAM_OFF, Batching("full")),
    ("adam", {"eps": 1e-3, "eps_mode": 1, "bias_correction": 1}, Batching("full")),
    ("adam-mb", ADAM_OFF, Batching("reshuffle", 2)),
    ("signum", {"beta": 0.9}, Batching("full")),
    ("signgd", {}, Batching("full")),
    ("sgd", {}, Batching("replacement", 2)),
    ("adamproxy", {}, Batching("full")),
]


def _advance_general_only(Z, config, state, nsteps):
    """``advance`` with the kernel compiled without its fast path."""
    from theorybox.engine.kernel import build_kernel, switch_values
    from theorybox.engine.run import _Workspace, call_kernel, kernel_arguments

    n = Z.shape[0]
    runs, d = state.w.shape
    spec = config.spec
    kernel = build_kernel(spec, switch_values(spec, config.hyper), fast_path=False)
    call_kernel(kernel, Z[None], np.zeros(runs, dtype=np.int64), state, nsteps,
                kernel_arguments([config], n, runs), np.arange(runs, dtype=np.int64),
                _Workspace(n, runs, d))


@pytest.mark.parametrize("case", FAST_CASES, ids=lambda c: f"{c[0]}-{c[2]}")
def test_fast_path_gives_the_general_paths_bits(case):
    """Dense steps take a shortcut through the per-coordinate bookkeeping; every
    array of the state is the same, bit for bit, as without it.

    Dense data from the origin (first touches, zero moments) and past the wall
    with a constant step (moments leave their range and are renormalised, so the
    coordinates' scales part and meet again), in chunks of 1 to 500 steps.
    """
    opt, hyper, batching = case
    for w0, sched in ((W0_WALL * 0.0, CONST), (W0_WALL, Schedule(0.5, 1.0, 0.0))):
        config = RunConfig(opt, 0, hyper=hyper, batching=batching, schedule=sched,
                           loss="logistic", seed=11)
        ns = len(config.spec.state)
        fast = EngineState.initial(np.asarray(w0, dtype=np.float64), ns)
        general = EngineState.initial(np.asarray(w0, dtype=np.float64), ns)
        for chunk in (1, 3, 40, 500, 500):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                advance(Z_WALL, config, fast, chunk)
                _advance_general_only(Z_WALL, config, general, chunk)
            for name in ("w", "moments", "scale", "t", "stall"):
                a, b = getattr(fast, name), getattr(general, name)
                assert a.tobytes() == b.tobytes(), (name, chunk, a, b)


def test_renormalised_scales_share_a_grid():
    """A moment that leaves [2^-300, 2^300] is renormalised onto the grid of
    multiples of 256 log 2, so coordinates of similar size share one scale (and
    the kernel one merge factor for them)."""
    from theorybox.engine.template import _GRID

    config = RunConfig("signum", 0, hyper={"beta": 0.9}, batching=Batching("full"),
                       schedule=Schedule(0.5, 1.0, 0.0))
    state = EngineState.initial(np.zeros(Z_WALL.shape[1]), 1)
    first_scales = None
    for _ in range(40):
        advance(Z_WALL, config, state, 100)
        if first_scales is None:
            first_scales = state.scale.copy()
    scale = state.scale[0]
    # Every coordinate was renormalised (its scale moved far from the first
    # touch's), and each scale is an exact multiple of the grid step.
    assert np.all(np.abs(scale - first_scales[0]) > _GRID)
    np.testing.assert_array_equal(scale, np.round(scale / _GRID) * _GRID)
    assert len(np.unique(scale)) < scale.size


# Wall-clock limits.


def test_time_limit_stops_a_long_run_with_its_state_and_last_metrics():
    """A run far beyond its time limit stops at a slice boundary soon after the
    limit, reports it, keeps the metrics of the step reached, and its state is the
    same bits as an unlimited run to that step."""
    Z = np.random.default_rng(0).normal(size=(10, 20))
    config = RunConfig("adam-ps", 10**10, hyper=ADAM_OFF, schedule=DECAY)
    run(Z, RunConfig("adam-ps", 10, hyper=ADAM_OFF))  # compile outside the limit
    limit = 0.5
    result = run(Z, config, time_limit=limit)
    assert result.status == "time limit"
    reached = int(result.state.t[0])
    assert 0 < reached < config.steps
    assert result.metrics[-1]["t"] == reached
    assert "time_limit = 0.5 s" in result.messages[0]
    # Slices last about half a second; allow for a loaded machine.
    assert result.wall_time < limit + 10.0

    plain = run(Z, RunConfig("adam-ps", reached, hyper=ADAM_OFF, schedule=DECAY),
                checkpoints=[reached])
    np.testing.assert_array_equal(result.state.w, plain.state.w)
    np.testing.assert_array_equal(result.state.moments, plain.state.moments)


def test_time_limit_not_reached_changes_nothing():
    config = RunConfig("signum", 3000, hyper={"beta": 0.9}, schedule=DECAY)
    free = run(Z_DENSE, config, w0=W0_DENSE)
    limited = run(Z_DENSE, config, w0=W0_DENSE, time_limit=600)
    assert limited.status == free.status == "ok"
    np.testing.assert_array_equal(limited.steps, free.steps)
    for a, b in zip(limited.metrics, free.metrics, strict=True):
        np.testing.assert_array_equal(a["w"], b["w"])


def test_time_limit_shorter_than_the_setup_still_reports_the_start():
    result = run(Z_DENSE, RunConfig("adam-ps", 10**9, hyper=ADAM_OFF),
                 w0=W0_DENSE, time_limit=1e-9)
    assert result.status == "time limit"
    assert [row["t"] for row in result.metrics] == [0]
    np.testing.assert_array_equal(result.metrics[0]["w"], W0_DENSE)


@pytest.mark.parametrize("limit", [np.int64(600), np.float32(600.0), 600])
def test_numpy_time_limits_are_numbers(limit):
    assert run(Z_DENSE, RunConfig("gd", 10), time_limit=limit).status == "ok"


@pytest.mark.parametrize(
    "limit", [0, -1.0, float("nan"), float("inf"), "10", True, np.bool_(True)]
)
def test_bad_time_limit_raises(limit):
    config = RunConfig("gd", 10)
    with pytest.raises(InvalidParameterError, match="time_limit"):
        run(Z_DENSE, config, time_limit=limit)


def test_state_of_another_optimizer_is_refused():
    """The kernel indexes without bounds checks: a Signum state (one moment) must
    not reach Adam's kernel (two), nor a float32 or read-only array any kernel."""
    signum = run(Z_DENSE, RunConfig("signum", 10, hyper={"beta": 0.9}),
                 checkpoints=[10]).state
    with pytest.raises(InvalidDataError, match=r"moments.*'adam'.*\(1, 2, 3\)"):
        run(Z_DENSE, RunConfig("adam", 10), state=signum)
    gd = run(Z_DENSE, RunConfig("gd", 10), checkpoints=[10]).state
    with pytest.raises(InvalidDataError, match="moments"):
        advance(Z_DENSE, RunConfig("signum", 10), gd, 5)
    odd = signum.copy()
    odd.scale = odd.scale.astype(np.float32)
    with pytest.raises(InvalidDataError, match="scale.*float32"):
        advance(Z_DENSE, RunConfig("signum", 10), odd, 5)
    frozen = signum.copy()
    frozen.w.setflags(write=False)
    with pytest.raises(InvalidDataError, match="state's w"):
        advance(Z_DENSE, RunConfig("signum", 10), frozen, 5)


@pytest.mark.parametrize("fast_path", [True, False])
def test_gradient_far_below_the_moments_scale_is_not_lost(fast_path):
    """Signum with beta = 0 is SignGD. Here each step's gradient is e^-900 below
    the previous one (margins 100 and 1000, one sample a step), so on the moment's
    scale it underflows to 0; the kernel redoes such a step on the gradient's own
    scale, since the rule kept none of the old moment (found by a helper: the
    steps were silently skipped, status "ok")."""
    Z = np.array([[1.0, 0.1], [1.0, 1.0]])
    w0 = np.array([0.0, 1000.0])
    sched = Schedule(0.125, 1.0, 0.0)
    batching = Batching("cyclic", 1)
    signum = RunConfig("signum", 20, hyper={"beta": 0.0}, batching=batching,
                       schedule=sched)
    signgd = RunConfig("signgd", 20, batching=batching, schedule=sched)
    state = EngineState.initial(w0, 1)
    if fast_path:
        advance(Z, signum, state, 20)
    else:
        _advance_general_only(Z, signum, state, 20)
    np.testing.assert_array_equal(
        state.w[0], run(Z, signgd, w0=w0, checkpoints=[20]).w)
    mp = run_mpmath(Z, signum, w0=w0, dps=60, hyper_as="binary")
    np.testing.assert_array_equal(state.w[0], mp.as_float())
    np.testing.assert_array_equal(state.w[0], w0 + 20 * 0.125)


def test_column_mixing_tiny_and_normal_entries_is_reported():
    """A column with 1e-170 next to 1 keeps its scale (its largest entry is
    ordinary), so the tiny entry's squared gradient underflows: per-sample
    AdamProxy then drops that sample's steps (60-digit mpmath moves both
    coordinates). The engine cannot fix this in float64; it says so (found by a
    helper: status "ok", no warning)."""
    Z = np.array([[1e-170, 1.0], [1.0, 1.0]])
    config = RunConfig("adamproxy", 10, batching=Batching("cyclic", 1),
                       schedule=Schedule(1.0, 1.0, 0.0))
    with pytest.warns(PrecisionWarning, match=r"column.*\[0\].*2\^500.*run_precise"):
        result = run(Z, config, checkpoints=[10])
    assert any("2^500" in m for m in result.messages)
    exact = run_mpmath(Z, config, dps=60).as_float()
    assert not np.allclose(result.w, exact)      # the failure the note is about

    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        ordinary = run(np.array([[1e-100, 1.0], [1.0, 1.0]]), config,
                       checkpoints=[10])
    assert not any("2^500" in m for m in ordinary.messages)


def test_malformed_states_are_refused_before_the_kernel():
    good = EngineState.initial(W0_DENSE, 1)
    config = RunConfig("signum", 5, hyper={"beta": 0.9})
    flat = good.copy()
    flat.w = flat.w[0]
    empty = EngineState.initial(np.zeros((0, 3)), 1)
    negative = good.copy()
    negative.t[:] = -3
    for bad, fragment in ((flat, "shape"), (empty, "runs >= 1"),
                          (negative, "step counters")):
        with pytest.raises(InvalidDataError, match=fragment):
            advance(Z_DENSE, config, bad, 2)
    two = EngineState.initial(np.zeros((2, 3)), 1)
    with pytest.raises(InvalidDataError, match="run_ensemble"):
        run(Z_DENSE, config, state=two)
