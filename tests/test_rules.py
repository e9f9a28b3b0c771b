"""The update rules, one definition on three backends (style.md habit 2).

Each rule in :mod:`theorybox.optimizers.rules` is run on Python floats
(``PythonOps``), on mpmath numbers in a private 50-digit context and compiled by
numba, and the three are compared with tolerances derived from float64's unit
roundoff. Also: the ``sign(0) = 0`` and ``0/0 = 0`` conventions, the meaning of the
log-scale argument ``s``, and Adam's three ``eps`` placements on the numbers of
cases.md K5.
"""

import functools
import math
from decimal import Decimal

import mpmath
import numba
import pytest
from hypothesis import given
from hypothesis import strategies as st

from theorybox.arith import PythonOps, bind_ops, mpmath_ops, numba_ops
from theorybox.optimizers import rules
from theorybox.optimizers.rules import EPS_FOLDED, EPS_INSIDE, EPS_OUTSIDE

#: float64 unit roundoff is EPS / 2.
EPS = 2.0**-52

#: A rule evaluates at most about ten rounded float64 operations on a path without
#: cancellation (Adam: m, v, the corrections, sqrt, the eps term, two divisions,
#: the step size), each contributing at most EPS / 2 relative error; 8 EPS bounds
#: their sum with room for ``b ** t`` (libm ``pow`` versus numba's integer power).
RULE_RTOL = 8 * EPS

MP_DPS = 50

ADAM = {"b1": 0.9, "b2": 0.999}


def _mp_context(dps=MP_DPS):
    ctx = mpmath.MPContext()
    ctx.dps = dps
    return ctx


@functools.cache
def _numba_rule(rule):
    return numba.njit(bind_ops(rule, numba_ops))


def _py_rule(rule):
    return bind_ops(rule, PythonOps)


def _mp_rule(rule, ctx):
    return bind_ops(rule, mpmath_ops(ctx))


# Scalar inputs chosen without cancellation (G and m share a sign), so that the
# float64 result is within RULE_RTOL of the exact one. The tuple is
# (lr, t, s, G, Q, *state, *hyper), in the order of each rule's signature.
CASES = {
    "gradient_step": (
        rules.gradient_step,
        [
            (0.1, 1, 0.0, -0.75, 0.6),
            (0.03, 7, -3.5, 2.5, 7.0),
            (1.0, 2, 1.25, 1e-9, 0.0),
        ],
    ),
    "sign_step": (
        rules.sign_step,
        [(0.1, 1, 0.0, -0.75, 0.6), (0.03, 7, -3.5, 2.5, 7.0), (1.0, 2, 0.0, 0.0, 0.0)],
    ),
    "signum_step": (
        rules.signum_step,
        [
            (0.1, 1, 0.0, -0.75, 0.6, 0.0, 0.9),
            (0.03, 7, -3.5, 2.5, 7.0, 0.4, 0.99),
            (1.0, 3, 0.0, -1e-3, 1e-6, -2.0, 0.5),
        ],
    ),
    "adam_step": (
        rules.adam_step,
        [
            (0.1, 1, 0.0, -0.75, 0.6, 0.0, 0.0, 0.9, 0.999, 0.0, EPS_OUTSIDE, 0),
            (0.1, 1, 0.0, -0.75, 0.6, 0.0, 0.0, 0.9, 0.999, 0.0, EPS_OUTSIDE, 1),
            (0.03, 7, -3.5, 2.5, 7.0, 0.4, 0.3, 0.9, 0.99, 1e-8, EPS_OUTSIDE, 1),
            (0.03, 7, -3.5, 2.5, 7.0, 0.4, 0.3, 0.9, 0.99, 1e-8, EPS_INSIDE, 1),
            (0.03, 7, -3.5, 2.5, 7.0, 0.4, 0.3, 0.9, 0.99, 1e-8, EPS_FOLDED, 1),
            (0.5, 3, 2.0, -1e-3, 1e-6, -0.02, 4e-6, 0.5, 0.75, 1e-3, EPS_INSIDE, 0),
            (0.5, 3, 2.0, -1e-3, 1e-6, -0.02, 4e-6, 0.5, 0.75, 1e-3, EPS_FOLDED, 0),
        ],
    ),
    "adam_proxy_step": (
        rules.adam_proxy_step,
        [(0.1, 1, 0.0, -0.75, 0.6), (0.03, 7, -3.5, 2.5, 7.0), (1.0, 2, 0.0, 0.0, 0.0)],
    ),
}

CASE_IDS = [
    (name, j) for name, (_, inputs) in CASES.items() for j in range(len(inputs))
]


def _assert_close_tuple(got, want, rtol, what):
    assert len(got) == len(want), what
    for j, (a, b) in enumerate(zip(got, want, strict=True)):
        assert abs(a - b) <= rtol * abs(b), f"{what}: output {j}: {a!r} vs {b!r}"


@pytest.mark.parametrize(("name", "j"), CASE_IDS)
def test_rule_agrees_on_python_mpmath_and_numba(name, j):
    """One rule, three backends: float64 results within RULE_RTOL of 50 digits."""
    rule, inputs = CASES[name]
    args = inputs[j]
    ctx = _mp_context()

    py_out = _py_rule(rule)(*args)
    nb_out = _numba_rule(rule)(*(float(a) for a in args))
    # Inputs as the exact binary values of the floats: only the rule's own
    # roundings separate the float64 result from the 50-digit one.
    mp_args = [a if isinstance(a, int) else ctx.mpf(a) for a in args]
    mp_out = _mp_rule(rule, ctx)(*mp_args)

    assert all(isinstance(x, float) for x in py_out)
    assert all(isinstance(x, ctx.mpf) for x in mp_out)
    mp_as_float = [float(x) for x in mp_out]
    _assert_close_tuple(py_out, mp_as_float, RULE_RTOL, f"{name} python vs mpmath")
    _assert_close_tuple(nb_out, mp_as_float, RULE_RTOL, f"{name} numba vs mpmath")


# Strategies for property tests: finite floats in ranges where float64 neither
# overflows nor underflows inside a rule.
_lr = st.floats(1e-4, 10.0)
_t = st.integers(1, 60)
_s = st.floats(-30.0, 30.0)
_g = st.floats(-1e3, 1e3)
_q = st.floats(0.0, 1e6)
_m = st.floats(-1e3, 1e3)
_v = st.floats(0.0, 1e6)
_b = st.floats(0.0, 0.999)
_b2 = st.floats(0.5, 0.9999)
_eps = st.sampled_from([0.0, 1e-8, 1e-3])
_mode = st.sampled_from([EPS_OUTSIDE, EPS_INSIDE, EPS_FOLDED])


def _normal(hi, signed=True):
    """0, or a float64 with magnitude in [1e-100, hi]: no subnormals, whose
    relative rounding error is not bounded by EPS."""
    parts = [st.just(0.0), st.floats(1e-100, hi)]
    if signed:
        parts.append(st.floats(-hi, -1e-100))
    return st.one_of(*parts)


@given(_lr, _t, _s, _g, _m, _v, _b, _b2, _eps, _mode)
def test_adam_numba_equals_python_bitwise_without_powers(
    lr, t, s, G, m, v, b1, b2, eps, mode
):
    """Without bias correction the numba rule performs the very same float64
    operations as the Python one, so the results agree bit for bit (no ``**``)."""
    args = (lr, t, s, G, G * G, m, v, b1, b2, eps, float(mode), 0.0)
    assert _numba_rule(rules.adam_step)(*args) == _py_rule(rules.adam_step)(*args)


@given(_lr, _t, _s, _g, _q, _m, _b)
def test_stateless_and_signum_numba_equal_python_bitwise(lr, t, s, G, Q, m, beta):
    for rule, extra in (
        (rules.gradient_step, ()),
        (rules.sign_step, ()),
        (rules.adam_proxy_step, ()),
        (rules.signum_step, (m, beta)),
    ):
        args = (lr, t, s, G, Q, *extra)
        assert _numba_rule(rule)(*args) == _py_rule(rule)(*args), rule.__name__


@given(
    _lr,
    st.integers(1, 30),
    _normal(1e3),
    _normal(1e3),
    _normal(1e6, signed=False),
    _b,
    _b2,
    _mode,
)
def test_adam_numba_matches_python_with_bias_correction(lr, t, G, m, v, b1, b2, mode):
    """With bias correction the only difference is ``b ** t`` (libm ``pow`` versus
    repeated multiplication, each within a few ulps), so agreement is to a few
    ulps of the terms, relative to the size of the step (normal numbers only)."""
    args = (lr, t, 0.0, G, G * G, m, v, b1, b2, 0.0, float(mode), 1.0)
    nb = _numba_rule(rules.adam_step)(*args)
    py = _py_rule(rules.adam_step)(*args)
    for a, b in zip(nb, py, strict=True):
        # 1 - b^t may cancel; its relative error is (few ulps of b^t) / (1 - b^t).
        c1, c2 = 1 - b1**t, 1 - b2**t
        amplification = 1 + (b1**t / c1 if c1 else 0) + (b2**t / c2 if c2 else 0)
        assert abs(a - b) <= 16 * EPS * amplification * abs(b), (a, b)


# Conventions: sign(0) = 0, 0/0 = 0, 0 * exp(huge) = 0, on every backend.

BACKENDS = ["python", "mpmath", "numba"]


def _backend(name):
    """(ops namespace, number constructor, rule binder) of one backend.

    numba_ops's functions are jitted and callable from Python, so the namespace
    itself is tested as well as the rules compiled against it.
    """
    if name == "python":
        return PythonOps, float, _py_rule
    if name == "mpmath":
        ctx = _mp_context()
        return mpmath_ops(ctx), ctx.mpf, functools.partial(_mp_rule, ctx=ctx)
    return numba_ops, float, _numba_rule


@pytest.mark.parametrize("backend", BACKENDS)
def test_sign_div0_mulexp_conventions(backend):
    ops, num, _ = _backend(backend)
    assert ops.sign(num(0.0)) == 0
    assert ops.sign(num(-0.0)) == 0
    assert ops.sign(num(2.5)) == 1
    assert ops.sign(num(-1e-300)) == -1
    assert ops.div0(num(0.0), num(0.0)) == 0
    assert ops.div0(num(1.0), num(4.0)) == 0.25
    # exp(1000) overflows float64; a zero factor must still give zero, not NaN.
    assert ops.mulexp(num(0.0), num(1000.0)) == 0
    assert ops.mulexp(num(3.0), num(0.0)) == 3
    assert ops.sqrt(num(0.25)) == 0.5


@pytest.mark.parametrize("backend", BACKENDS)
def test_rules_at_zero_gradient_give_zero_step(backend):
    """A coordinate no sample touches (G = Q = m = v = 0) does not move: sign(0) = 0
    and 0/0 = 0, in every eps mode, with and without bias correction."""
    _, num, bind = _backend(backend)
    zero = num(0.0)
    lr, t, s = 0.1, 3, 0.0
    outs = [
        bind(rules.gradient_step)(lr, t, s, zero, zero),
        bind(rules.sign_step)(lr, t, s, zero, zero),
        bind(rules.signum_step)(lr, t, s, zero, zero, zero, 0.9),
        bind(rules.adam_proxy_step)(lr, t, s, zero, zero),
    ]
    for mode in (EPS_OUTSIDE, EPS_INSIDE, EPS_FOLDED):
        for bc in (0, 1):
            outs.append(
                bind(rules.adam_step)(
                    lr, t, s, zero, zero, zero, zero, 0.9, 0.999, 0.0, float(mode),
                    float(bc),
                )
            )
    for out in outs:
        assert out[0] == 0, out
        for x in out:
            assert x == x, f"NaN in {out}"


def test_sign_rule_exact_zero_when_momentum_cancels():
    """Signum with a momentum that is exactly 0 after the update does not move."""
    rule = _py_rule(rules.signum_step)
    dw, m = rule(0.1, 2, 0.0, -1.0, 1.0, 1.0, 0.5)  # m = 0.5 * 1 + 0.5 * (-1) = 0
    assert m == 0.0
    assert dw == 0.0


# The log-scale argument s: true values are G e^s, Q e^2s, m e^s, v e^2s.


@pytest.mark.parametrize("mode", [EPS_OUTSIDE, EPS_INSIDE, EPS_FOLDED])
@pytest.mark.parametrize("eps", [0.0, 1e-8])
def test_adam_step_depends_on_true_values_only(mode, eps):
    """Adam at scale s on stored values equals Adam at scale 0 on true values.

    Checked at 50 digits with s = -2000 (e^s far below float64's range), so the
    agreement is to the context's precision: RTOL = 10^(5 - dps).
    """
    ctx = _mp_context()
    rule = _mp_rule(rules.adam_step, ctx)
    rtol = ctx.mpf(10) ** (5 - MP_DPS)
    s = ctx.mpf(-2000)
    scale = ctx.exp(s)
    G = ctx.mpf("-0.75") * scale
    m = ctx.mpf("0.3") * scale
    v = ctx.mpf("0.2") * scale**2
    hyper = (ctx.mpf("0.9"), ctx.mpf("0.999"), ctx.mpf(eps), mode, 1)
    plain = rule(ctx.mpf("0.1"), 4, 0, G, G * G, m, v, *hyper)
    scaled = rule(
        ctx.mpf("0.1"), 4, s, G / scale, (G / scale) ** 2, m / scale, v / scale**2,
        *hyper,
    )
    assert abs(scaled[0] - plain[0]) <= rtol * abs(plain[0])
    assert abs(scaled[1] * scale - plain[1]) <= rtol * abs(plain[1])
    assert abs(scaled[2] * scale**2 - plain[2]) <= rtol * abs(plain[2])


@given(_lr, _t, st.floats(-200.0, 200.0), _g, _m, _v, _b, _b2, _mode)
def test_adam_eps0_is_scale_invariant_in_float64(lr, t, s, G, m, v, b1, b2, mode):
    """With eps = 0 the step does not depend on s at all (not even by rounding):
    the rule never multiplies by e^s when eps = 0 except through ``mulexp(0, .)``."""
    rule = _py_rule(rules.adam_step)
    a = rule(lr, t, s, G, G * G, m, v, b1, b2, 0.0, mode, 1)
    b = rule(lr, t, 0.0, G, G * G, m, v, b1, b2, 0.0, mode, 1)
    assert a == b


def test_gradient_step_applies_the_scale():
    """GD's step is in plain units: -lr G e^s."""
    rule = _py_rule(rules.gradient_step)
    (dw,) = rule(0.5, 1, -3.0, 2.0, 4.0)
    assert abs(dw - (-0.5 * 2.0 * math.exp(-3.0))) <= 2 * EPS * abs(dw)


# Adam's eps placement on cases.md K5: t = 1, b1 = 0.9, b2 = 0.999, eps = 1e-8,
# g = 1e-9, lr = 1, bias correction on.

#: The printed values of the case (the outside form is exactly 1/11).
K5_PRINTED = {EPS_INSIDE: "9.9999999995e-06", EPS_FOLDED: "0.0031523092"}


def _half_unit_last_digit(text):
    """Half a unit in the last digit shown: the tolerance a printed value implies."""
    exponent = Decimal(text).as_tuple().exponent
    return 0.5 * 10.0**exponent


def test_half_unit_last_digit():
    assert _half_unit_last_digit("0.0031523092") == pytest.approx(5e-11)
    assert _half_unit_last_digit("9.9999999995e-06") == pytest.approx(5e-17)


@pytest.mark.parametrize("mode", [EPS_OUTSIDE, EPS_INSIDE, EPS_FOLDED])
@pytest.mark.parametrize("backend", BACKENDS)
def test_adam_eps_modes_on_k5(mode, backend):
    _, num, bind = _backend(backend)
    # On mpmath the decimals of the case (num parses strings); on float64 their
    # nearest binaries.
    one, zero = num("1"), num("0")
    g = num("1e-9")
    args = (one, 1, zero, g, g * g, zero, zero, num("0.9"), num("0.999"),
            num("1e-8"), float(mode), 1.0)
    dw = bind(rules.adam_step)(*args)[0]
    # A positive gradient moves the coordinate down.
    step = -dw
    if mode == EPS_OUTSIDE:
        assert abs(step - 1 / 11) <= RULE_RTOL / 11
    else:
        text = K5_PRINTED[mode]
        assert abs(float(step) - float(text)) <= _half_unit_last_digit(text)
    if mode == EPS_INSIDE:
        # Not to be confused with the outside form: they differ from the third digit.
        assert abs(float(step) - 1 / 11) > 0.09


def test_k5_forms_at_50_digits():
    """The three closed forms of K5, evaluated independently of the rule."""
    ctx = _mp_context()
    b1, b2, eps, g = ctx.mpf("0.9"), ctx.mpf("0.999"), ctx.mpf("1e-8"), ctx.mpf("1e-9")
    m, v = (1 - b1) * g, (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1), v / (1 - b2)
    assert ctx.almosteq(m_hat / (ctx.sqrt(v_hat) + eps), ctx.mpf(1) / 11, 1e-45)
    inside = m_hat / ctx.sqrt(v_hat + eps)
    assert abs(inside - ctx.mpf("9.9999999995e-06")) <= _half_unit_last_digit(
        "9.9999999995e-06"
    )
    folded = ctx.sqrt(1 - b2) / (1 - b1) * m / (ctx.sqrt(v) + eps)
    assert abs(folded - ctx.mpf("0.0031523092")) <= _half_unit_last_digit(
        "0.0031523092"
    )
