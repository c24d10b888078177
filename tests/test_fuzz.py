"""Property tests: random expressions are differentiated correctly, and any
text either parses or fails with a MatdiffError (never another exception)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matdiff
from matdiff.check import check_gradient
from matdiff.engine import Problem

# Building blocks with fixed shapes: X is 5×4, A is 4×4 (SPD data where needed),
# B is 4×3, u is a 5-vector, v a 4-vector.
MATRIX_5x4 = ["X", "σ(X)", "tanh(X)", "X ⊙ X", "exp(X)/2", "X A", "relu(X) + X", "X.^2", "sin(X)"]
MATRIX_4x4 = ["A", "A^T", "A A", "A + A'", "inv(A)", "X^T X", "diag(v)", "A ⊙ A"]
VEC_4 = ["v", "A v", "X^T u", "softmax(v)", "exp(v) ⊙ v", "log_softmax(v)", "tanh(A v)"]
VEC_5 = ["u", "X v", "σ(X v)", "X A v", "u ⊙ u"]


@st.composite
def scalar_expr(draw):
    kind = draw(st.integers(0, 7))
    m54 = draw(st.sampled_from(MATRIX_5x4))
    m44 = draw(st.sampled_from(MATRIX_4x4))
    v4 = draw(st.sampled_from(VEC_4))
    v5 = draw(st.sampled_from(VEC_5))
    forms = [
        f"tr(({m44}) ({m44}))",
        f"sum({m54})",
        f"u^T ({m54}) v",
        f"‖{m54}‖^2",
        f"({v4})^T ({m44}) ({v4})",
        f"sum(logsumexp({m54}))",
        f"({v5})^T ({v5}) + tr({m44})",
        f"logdet(A) + sum(({m54}) B)",
    ]
    return forms[kind]


VARS = {"A": "spd(4)", "X": "matrix(5,4)", "B": "matrix(4,3)", "u": "vector(5)", "v": "vector(4)"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scalar_expr(), st.sampled_from(["X", "A", "v", "u", "B"]))
def test_random_expressions_have_right_gradients(expr, var):
    p = Problem(expr, VARS)
    if var not in p.variables:
        return  # the variable does not occur: nothing to differentiate
    ok, lines = check_gradient(expr, [var], VARS, tol=1e-5)
    assert ok, (expr, lines)


ALPHABET = list("XWAbxyz12 +-*/^'()⊙.‖|;=_TIσ𝟙ᵀ⁻¹") + ["tr", "log", "exp", "sum", "softmax", "det"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=14).map("".join))
def test_any_text_parses_or_fails_cleanly(text):
    try:
        matdiff.grad(text, wrt=["X"])
    except matdiff.MatdiffError as e:
        assert str(e)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=20))
def test_arbitrary_unicode_fails_cleanly(text):
    try:
        matdiff.grad(text, wrt="x")
    except matdiff.MatdiffError:
        pass
