"""The textbook forms the engine must reach (issue #2), each also checked
numerically: the string is the form, the numbers are the correctness."""

import pytest

import matdiff
from matdiff.check import check_gradient

FORMS = [
    ("tr(A X B)", "X", {}, "AᵀBᵀ"),
    ("a^T X b", "X", {}, "abᵀ"),
    ("tr(X A X^T)", "X", {}, "X(A + Aᵀ)"),
    ("x^T A x", "x", {}, "(A + Aᵀ)x"),
    ("x^T A x", "x", {"A": "symmetric"}, "2Ax"),
    ("tr(X^T X)", "X", {}, "2X"),
    ("||X||_F^2", "X", {}, "2X"),
    ("||X W - Y||_F^2", "W", {}, "2Xᵀ(XW − Y)"),
    ("logdet(X)", "X", {}, "X⁻ᵀ"),
    ("det(X)", "X", {}, "det(X)X⁻ᵀ"),
    ("tr(X^-1 A)", "X", {}, "−X⁻ᵀAᵀX⁻ᵀ"),
    ("a^T X^-1 b", "X", {}, "−X⁻ᵀabᵀX⁻ᵀ"),
    ("a^T exp(X b)", "X", {}, "(a ⊙ exp(Xb))bᵀ"),
    ("tr((X .* X)^T A)", "X", {}, "2(A ⊙ X)"),
    ("sum(σ(X W))", "W", {}, "Xᵀ(σ(XW) ⊙ (1 − σ(XW)))"),
    ("sum(log(1 + exp(-y .* (X w))))", "w", {}, "−Xᵀ(y ⊙ σ(−y ⊙ Xw))"),
    ("-tr(Y^T log softmax(XW+b))", "W", {"Y": "onehot"}, "Xᵀ(softmax(XW + 𝟙bᵀ) − Y)"),
    ("-tr(Y^T log softmax(XW+b))", "b", {"Y": "onehot"}, "(softmax(XW + 𝟙bᵀ) − Y)ᵀ𝟙"),
    ("-tr(Y^T log softmax(XW+b))", "W", {}, "Xᵀ(diag(Y𝟙)softmax(XW + 𝟙bᵀ) − Y)"),
]


@pytest.mark.parametrize("expr,wrt,vars,text", FORMS, ids=[f"{e} wrt {w}" for e, w, _, _ in FORMS])
def test_textbook_form(expr, wrt, vars, text):
    assert matdiff.grad(expr, wrt=wrt, vars=vars).text == text
    ok, lines = check_gradient(expr, [wrt], vars)
    assert ok, lines
