r"""The update rules, each written once.

Every rule is a pure function of one coordinate's scalars. It resolves ``sqrt``,
``sign``, ``div0`` and ``mulexp`` through the global name ``ops``, which
:func:`theorybox.arith.bind_ops` rebinds per backend (Python floats, numba, mpmath,
intervals, sympy). Rules never branch on the value of an iterate, only on
hyperparameters, so they run unchanged on symbols.

Signature of every rule::

    rule(lr, t, s, G, Q, *state, *hyper) -> (dw, *new_state)

=========  ==================================================================
name       meaning (paper symbol)
=========  ==================================================================
``lr``     step size :math:`\eta_t` of this step
``t``      steps taken including this one, :math:`t \geq 1` (bias correction)
``s``      the coordinate's natural log-scale: true values are ``G e^s``,
           ``Q e^{2s}``, ``m e^s`` and ``v e^{2s}``; backends with an unbounded
           exponent (mpmath) pass ``s = 0`` and unscaled values
``G``      the batch gradient :math:`\nabla L_B(w_t)_k`, mean over the batch
``Q``      :math:`\sum_{i \in B} (\nabla L_i(w_t)_k)^2`, the sum of per-sample
           squared gradients over the batch (AdamProxy's preconditioner)
state      moments: ``m`` (power 1 in the scale), ``v`` (power 2)
``dw``     the change of the coordinate, in plain (unscaled) units
=========  ==================================================================

Conventions: ``0 / 0 = 0`` and ``sign(0) = 0``; with ``eps = 0`` Adam's ratio
``m / sqrt(v)`` and Signum's ``sign(m)`` do not depend on the scale ``s``, which is
why a coordinate with tiny gradients still moves at full speed.
"""

from __future__ import annotations

ops = None  # rebound per backend by theorybox.arith.bind_ops

#: Where Adam's ``eps`` enters: outside the root, inside it, or PyTorch-style with
#: bias correction folded into the step size (eps outside, on the raw ``v``).
EPS_OUTSIDE, EPS_INSIDE, EPS_FOLDED = 0, 1, 2


def gradient_step(lr, t, s, G, Q):
    r"""GD and SGD: :math:`w \leftarrow w - \eta_t G_t`."""
    return (-ops.mulexp(lr * G, s),)


def sign_step(lr, t, s, G, Q):
    r"""SignGD: :math:`w \leftarrow w - \eta_t \operatorname{sign}(G_t)`."""
    return (-lr * ops.sign(G),)


def signum_step(lr, t, s, G, Q, m, beta):
    r"""Signum: :math:`m \leftarrow \beta m + (1-\beta) G_t`,
    :math:`w \leftarrow w - \eta_t \operatorname{sign}(m)`."""
    m = beta * m + (1 - beta) * G
    return (-lr * ops.sign(m), m)


def adam_step(lr, t, s, G, Q, m, v, b1, b2, eps, eps_mode, bias_correction):
    r"""Adam: :math:`m \leftarrow b_1 m + (1-b_1) G`,
    :math:`v \leftarrow b_2 v + (1-b_2) G^2`, :math:`w \leftarrow w - \eta_t
    \hat m / (\sqrt{\hat v} + \epsilon)`.

    With ``bias_correction = 1``, :math:`\hat m = m / (1 - b_1^t)` and
    :math:`\hat v = v / (1 - b_2^t)`; with 0 they are ``m`` and ``v``. ``eps_mode``
    selects :data:`EPS_OUTSIDE` (``sqrt(v_hat) + eps``), :data:`EPS_INSIDE`
    (``sqrt(v_hat + eps)``) or :data:`EPS_FOLDED` (step size
    ``lr sqrt(1 - b2^t) / (1 - b1^t)`` times ``m / (sqrt(v) + eps)``).
    """
    m = b1 * m + (1 - b1) * G
    v = b2 * v + (1 - b2) * G * G
    c1 = 1
    c2 = 1
    if bias_correction:
        c1 = 1 - b1**t
        c2 = 1 - b2**t
    if eps_mode == EPS_FOLDED:
        ratio = ops.div0(m, ops.sqrt(v) + ops.mulexp(eps, -s))
        return (-lr * ops.sqrt(c2) / c1 * ratio, m, v)
    if eps_mode == EPS_INSIDE:
        den = ops.sqrt(v / c2 + ops.mulexp(eps, -2 * s))
    else:
        den = ops.sqrt(v / c2) + ops.mulexp(eps, -s)
    return (-lr * ops.div0(m / c1, den), m, v)


def adam_proxy_step(lr, t, s, G, Q):
    r"""AdamProxy: :math:`w \leftarrow w - \eta_t \nabla L(w) / \sqrt{\sum_i
    \nabla L_i(w)^2}` (the :math:`b_2 \to 1` limit of per-sample Adam)."""
    return (-lr * ops.div0(G, ops.sqrt(Q)),)


def phi_proxy_step(lr, t, s, G, Q, n, b):
    r"""The mini-batch proxy :math:`\Phi_{N,b}` as a full-batch step.

    .. math::

        S = N G, \qquad
        \Phi_{N,b} = \sqrt{\frac{b (N-1)}{N}}\,
            \frac{S}{\sqrt{(b-1) S^2 + (N-b) Q}}, \qquad
        w \leftarrow w - \eta_t \Phi_{N,b},

    with ``n`` :math:`= N` (it must equal the number of samples: ``G`` is the
    full-batch *mean* gradient, so :math:`S = N G` is the sum) and ``b`` the batch
    size whose random-reshuffling Adam the proxy stands for (theory.md, section 2).
    :math:`\Phi_{N,N} = \operatorname{sign}(S)` and :math:`\Phi_{N,1} = S /
    (\sqrt N \sqrt Q)`. The factor :math:`\sqrt{b (N-1) / N}` is moved under the
    denominator's root, so integer hyperparameters stay exact on mpmath; ``G`` and
    ``Q`` share the scale ``s``, so the ratio does not depend on it.
    """
    S = n * G
    den = ops.sqrt(n * ((b - 1) * S * S + (n - b) * Q))
    return (-lr * ops.div0(ops.sqrt(b * (n - 1)) * S, den),)
