"""The numeric correctness suite: every gradient matdiff derives is checked
against central finite differences of an INDEPENDENT NumPy implementation of
the same function, written by hand in the table below.

For each case (expression, wrt, declarations, independent function, data):

* the variables matdiff infers are exactly the ones the data provides, with
  the same ranks (so the expression was parsed as intended);
* matdiff's generated `value` equals the independent function;
* every gradient (from `value_and_gradient` of the multi-variable module and
  from `Gradient.numpy_function()`) has its variable's form (float / 1-D /
  2-D, and `Gradient.shape` of the same rank) and equals the central
  differences of the independent function; for a symmetric/spd variable the
  expected gradient is the symmetrised differences (G + Gᵀ)/2;
* round trip: the printed `Gradient.text`, parsed again with the same
  declarations and evaluated, equals the gradient.

Data spec strings ("N,D", "pos:N,D", "spd:D", "sym:D", "onehot:N,C", "D",
"scalar", ...) are explained in tests/numeric.py; every dimension letter has
its own size.
"""

import functools
import re
from dataclasses import dataclass, field

import numpy as np
import pytest

import matdiff
from matdiff.api import Result
from matdiff.engine import shape_of
from matdiff.numpy_emit import py_name

from numeric import (assert_close, assert_kind_of, eval_text, fro2, log_softmax, logabsdet,
                     logsumexp, make_data, numeric_gradient, relu, sigmoid, softmax, softplus)

inv = np.linalg.inv
det = np.linalg.det
tr = np.trace
norm = np.linalg.norm
mpow = np.linalg.matrix_power


@dataclass
class Case:
    id: str
    expr: str
    wrt: list
    f: object  # the independent implementation: f(**arrays) -> float
    data: dict  # name (as in generated code) -> data spec
    vars: dict = field(default_factory=dict)
    text: str = None  # optionally, the textbook form of the (first) gradient


def case(id, expr, wrt, f, data, vars=None, text=None):
    return Case(id, expr, [wrt] if isinstance(wrt, str) else list(wrt), f, data, vars or {}, text)


CASES = [
    # ---- the examples of the issue ---------------------------------------------------------
    case("tr(AXB)", "tr(A X B)", "X",
         lambda A, X, B: tr(A @ X @ B),
         {"A": "C,N", "X": "N,D", "B": "D,C"}, text="AᵀBᵀ"),
    case("aTXb", "a^T X b", ["X", "a", "b"],
         lambda a, X, b: a @ X @ b,
         {"a": "N", "X": "N,D", "b": "D"}, text="abᵀ"),
    case("tr(XAXT)", "tr(X A X^T)", ["X", "A"],
         lambda X, A: tr(X @ A @ X.T),
         {"X": "N,D", "A": "D,D"}),
    case("xTAx", "x^T A x", ["x", "A"],
         lambda x, A: x @ A @ x,
         {"x": "D", "A": "D,D"}, text="(A + Aᵀ)x"),
    case("xTAx_symmetric", "x^T A x", ["x", "A"],
         lambda x, A: x @ A @ x,
         {"x": "D", "A": "sym:D"}, vars={"A": "symmetric"}),
    case("tr(XTX)", "tr(X^T X)", "X",
         lambda X: tr(X.T @ X),
         {"X": "N,D"}, text="2X"),
    case("||X||_F^2", "||X||_F^2", "X",
         lambda X: fro2(X),
         {"X": "N,D"}),
    case("||XW-Y||_F^2", "||X W - Y||_F^2", ["W", "X", "Y"],
         lambda X, W, Y: fro2(X @ W - Y),
         {"X": "N,D", "W": "D,C", "Y": "N,C"}),
    case("logdet(X)", "logdet(X)", "X",
         lambda X: logabsdet(X),
         {"X": "spd:D"}, text="X⁻ᵀ"),
    case("logdet_general_square", "logdet(X) + det(X)", "X",
         lambda X: logabsdet(X) + det(X),
         {"X": "D,D"}),
    case("det(X)", "det(X)", "X",
         lambda X: det(X),
         {"X": "spd:D"}),
    case("tr(X^-1A)", "tr(X^-1 A)", ["X", "A"],
         lambda X, A: tr(inv(X) @ A),
         {"X": "spd:D", "A": "D,D"}),
    case("aTX^-1b", "a^T X^-1 b", ["X", "a", "b"],
         lambda a, X, b: a @ inv(X) @ b,
         {"a": "D", "X": "spd:D", "b": "D"}),
    case("aTexp(Xb)", "a^T exp(X b)", ["X", "b"],
         lambda a, X, b: a @ np.exp(X @ b),
         {"a": "N", "X": "N,D", "b": "D"}),
    case("tr((X.*X)TA)", "tr((X .* X)^T A)", ["X", "A"],
         lambda X, A: tr((X * X).T @ A),
         {"X": "N,D", "A": "N,D"}),
    case("sum(σ(XW))", "sum(σ(X W))", ["W", "X"],
         lambda X, W: np.sum(sigmoid(X @ W)),
         {"X": "N,D", "W": "D,C"}),
    case("logistic_loss", "sum(log(1 + exp(-y .* (X w))))", ["w", "y"],
         lambda y, X, w: np.sum(np.log(1 + np.exp(-y * (X @ w)))),
         {"y": "N", "X": "N,D", "w": "D"}),
    case("softmax_ce_onehot", "-tr(Y^T log softmax(XW+b))", ["W", "b"],
         lambda Y, X, W, b: -tr(Y.T @ np.log(softmax(X @ W + b))),
         {"Y": "onehot:N,C", "X": "N,D", "W": "D,C", "b": "C"}, vars={"Y": "onehot"},
         text="Xᵀ(softmax(XW + 𝟙bᵀ) − Y)"),
    case("softmax_ce_general_Y", "-tr(Y^T log softmax(XW+b))", ["W", "b", "Y"],
         lambda Y, X, W, b: -tr(Y.T @ np.log(softmax(X @ W + b))),
         {"Y": "N,C", "X": "N,D", "W": "D,C", "b": "C"}),
    case("softmax_ce_general_Y_with_onehot_data", "-tr(Y^T log softmax(XW+b))", ["W", "b"],
         lambda Y, X, W, b: -tr(Y.T @ np.log(softmax(X @ W + b))),
         {"Y": "onehot:N,C", "X": "N,D", "W": "D,C", "b": "C"}),

    # ---- the seed networks as single expressions ------------------------------------------
    case("mlp2_sigmoid", "sum(σ(σ(X W1) W2))", ["W1", "W2"],
         lambda X, W1, W2: np.sum(sigmoid(sigmoid(X @ W1) @ W2)),
         {"X": "N,D", "W1": "D,H", "W2": "H,C"}),
    case("mlp3_sigmoid", "sum(σ(σ(σ(X W1) W2) W3))", ["W1", "W2", "W3"],
         lambda X, W1, W2, W3: np.sum(sigmoid(sigmoid(sigmoid(X @ W1) @ W2) @ W3)),
         {"X": "N,D", "W1": "D,H", "W2": "H,K", "W3": "K,C"}),
    case("mlp4_sigmoid", "sum(σ(σ(σ(σ(X W1) W2) W3) W4))", ["W1", "W2", "W3", "W4"],
         lambda X, W1, W2, W3, W4: np.sum(sigmoid(sigmoid(sigmoid(sigmoid(X @ W1) @ W2) @ W3) @ W4)),
         {"X": "N,D", "W1": "D,H", "W2": "H,K", "W3": "K,L", "W4": "L,C"}),
    case("mlp2_sigmoid_softmax_ce", "-tr(Y^T log softmax(σ(X W1) W2))", ["W1", "W2"],
         lambda Y, X, W1, W2: -tr(Y.T @ log_softmax(sigmoid(X @ W1) @ W2)),
         {"Y": "onehot:N,C", "X": "N,D", "W1": "D,H", "W2": "H,C"}, vars={"Y": "onehot"}),
    case("mlp3_sigmoid_softmax_ce", "-tr(Y^T log softmax(σ(σ(X W1) W2) W3))", ["W1", "W2", "W3"],
         lambda Y, X, W1, W2, W3: -tr(Y.T @ log_softmax(sigmoid(sigmoid(X @ W1) @ W2) @ W3)),
         {"Y": "onehot:N,C", "X": "N,D", "W1": "D,H", "W2": "H,K", "W3": "K,C"},
         vars={"Y": "onehot"}),
    case("mlp4_sigmoid_softmax_ce", "-tr(Y^T log_softmax(σ(σ(σ(X W1) W2) W3) W4))",
         ["W1", "W2", "W3", "W4"],
         lambda Y, X, W1, W2, W3, W4: -tr(Y.T @ log_softmax(
             sigmoid(sigmoid(sigmoid(X @ W1) @ W2) @ W3) @ W4)),
         {"Y": "onehot:N,C", "X": "N,D", "W1": "D,H", "W2": "H,K", "W3": "K,L", "W4": "L,C"},
         vars={"Y": "onehot"}),
    case("mlp2_bias_softmax_ce", "-tr(Y^T log softmax(σ(X W1 + b1) W2 + b2))",
         ["W1", "b1", "W2", "b2"],
         lambda Y, X, W1, b1, W2, b2: -tr(Y.T @ np.log(softmax(sigmoid(X @ W1 + b1) @ W2 + b2))),
         {"Y": "onehot:N,C", "X": "N,D", "W1": "D,H", "b1": "H", "W2": "H,C", "b2": "C"},
         vars={"Y": "onehot"}),
    case("linear_layer_squared_loss", "1/2 ||X W + b - Y||_F^2", ["W", "b"],
         lambda X, W, b, Y: 0.5 * fro2(X @ W + b - Y),
         {"X": "N,D", "W": "D,C", "b": "C", "Y": "N,C"}),
    case("tanh_mlp_column_vector", "‖tanh(W2 tanh(W1 x + b1) + b2) − y‖^2",
         ["W1", "b1", "W2", "b2", "x"],
         lambda W1, x, b1, W2, b2, y: float(np.sum((np.tanh(W2 @ np.tanh(W1 @ x + b1) + b2) - y) ** 2)),
         {"W1": "H,D", "x": "D", "b1": "H", "W2": "C,H", "b2": "C", "y": "C"}),
    case("weight_decay", "λ(‖W1‖_F^2 + ‖W2‖_F^2)", ["W1", "W2", "λ"],
         lambda λ, W1, W2: λ * (fro2(W1) + fro2(W2)),
         {"λ": "pos:scalar", "W1": "D,H", "W2": "H,C"}),
    case("mlp2_ce_plus_weight_decay",
         "-tr(Y^T log softmax(σ(X W1 + b1) W2 + b2)) + λ(‖W1‖_F^2 + ‖W2‖_F^2)",
         ["W1", "b1", "W2", "b2", "λ"],
         lambda Y, X, W1, b1, W2, b2, λ: -tr(Y.T @ log_softmax(sigmoid(X @ W1 + b1) @ W2 + b2))
         + λ * (fro2(W1) + fro2(W2)),
         {"Y": "onehot:N,C", "X": "N,D", "W1": "D,H", "b1": "H", "W2": "H,C", "b2": "C",
          "λ": "pos:scalar"}, vars={"Y": "onehot"}),
    case("logistic_regression_sigmoid",
         "-sum(y .* log(σ(X w)) + (1 - y) .* log(1 - σ(X w)))", "w",
         lambda y, X, w: -np.sum(y * np.log(sigmoid(X @ w)) + (1 - y) * np.log(1 - sigmoid(X @ w))),
         {"y": "N", "X": "N,D", "w": "D"}),
    case("logistic_regression_softplus", "sum(softplus(-y ⊙ Xw)) + λ/2 ‖w‖^2", ["w", "λ"],
         lambda y, X, w, λ: np.sum(softplus(-y * (X @ w))) + λ / 2 * np.sum(w * w),
         {"y": "N", "X": "N,D", "w": "D", "λ": "pos:scalar"}),
    case("ridge", "‖X w − y‖^2 + λ‖w‖^2", ["w", "λ"],
         lambda X, w, y, λ: np.sum((X @ w - y) ** 2) + λ * np.sum(w * w),
         {"X": "N,D", "w": "D", "y": "N", "λ": "pos:scalar"}),
    case("gaussian_loglik_vector", "-1/2 logdet(Σ) - 1/2 (x - m)^T Σ^{-1} (x - m)", ["Σ", "m", "x"],
         lambda Σ, x, m: -0.5 * logabsdet(Σ) - 0.5 * (x - m) @ inv(Σ) @ (x - m),
         {"Σ": "spd:D", "x": "D", "m": "D"}, vars={"Σ": "spd"}),
    case("gaussian_loglik_matrix", "-N/2 logdet(S) - 1/2 tr((X - 𝟙 m^T) S^-1 (X - 𝟙 m^T)^T)",
         ["S", "m", "X"],
         lambda X, S, m: -X.shape[0] / 2 * logabsdet(S) - 0.5 * tr((X - m) @ inv(S) @ (X - m).T),
         {"X": "N,D", "S": "spd:D", "m": "D"}, vars={"S": "spd", "X": "matrix(N,D)"}),
    case("quadratic_form_half_xTx", "1/2 x'x", "x",
         lambda x: 0.5 * x @ x,
         {"x": "D"}, text="x"),
    case("quadratic_form_bilinear", "x^T A y", ["A", "x", "y"],
         lambda x, A, y: x @ A @ y,
         {"x": "N", "A": "N,D", "y": "D"}),
    case("quadratic_form_symmetric_S", "x'Sx + tr(S B)", ["S", "x"],
         lambda x, S, B: x @ S @ x + tr(S @ B),
         {"x": "D", "S": "sym:D", "B": "D,D"}, vars={"S": "symmetric(D)"}),
    case("spd_precision_mle", "logdet(S) - tr(S A) - x'S^-1 x", ["S", "x"],
         lambda S, A, x: logabsdet(S) - tr(S @ A) - x @ inv(S) @ x,
         {"S": "spd:D", "A": "D,D", "x": "D"}, vars={"S": "spd"}),
    case("symmetric_in_products", "tr(S A S) + sum(exp(S)) + tr(X S X^T)", ["S", "X"],
         lambda S, A, X: tr(S @ A @ S) + np.sum(np.exp(S)) + tr(X @ S @ X.T),
         {"S": "sym:D", "A": "D,D", "X": "N,D"}, vars={"S": "symmetric"}),
    case("diag_of_vector_as_quadratic_weight", "x' diag(y) x", ["x", "y"],
         lambda x, y: x @ np.diag(y) @ x,
         {"x": "D", "y": "D"}),
    case("quadratic_form_shifted", "(x - y)ᵀ A (x - y)", ["x", "y", "A"],
         lambda x, y, A: (x - y) @ A @ (x - y),
         {"x": "D", "y": "D", "A": "D,D"}),
    case("quadratic_form_ATA", "x^T A^T A x", ["x", "A"],
         lambda x, A: x @ A.T @ A @ x,
         {"x": "D", "A": "N,D"}),

    # ---- matrix product spellings, name splitting ------------------------------------------
    case("tr(A*X*B)", "tr(A*X*B)", "X",
         lambda A, X, B: tr(A @ X @ B),
         {"A": "C,N", "X": "N,D", "B": "D,C"}),
    case("tr(A@X@B)", "tr(A@X@B)", ["A", "B"],
         lambda A, X, B: tr(A @ X @ B),
         {"A": "C,N", "X": "N,D", "B": "D,C"}),
    case("tr(AXB)_split", "tr(AXB)", ["X", "B"],
         lambda A, X, B: tr(A @ X @ B),
         {"A": "C,N", "X": "N,D", "B": "D,C"}),
    case("tr(QK^TA)_split_postfix", "tr(QK^T A)", ["Q", "K"],
         lambda Q, K, A: tr(Q @ K.T @ A),
         {"Q": "N,D", "K": "C,D", "A": "C,N"}),
    case("XW1_split_digits", "sum(XW1 H1W2)", ["W1", "W2"],
         lambda X, W1, H1, W2: np.sum(X @ W1 @ H1 @ W2),
         {"X": "N,D", "W1": "D,H", "H1": "H,K", "W2": "K,C"}),
    case("X_train_whole_name", "‖X_train w − y‖^2", "w",
         lambda X_train, w, y: np.sum((X_train @ w - y) ** 2),
         {"X_train": "N,D", "w": "D", "y": "N"}),
    case("declared_dims", "tr(Wᵀ Xᵀ X W)", "W",
         lambda X, W: tr(W.T @ X.T @ X @ W),
         {"X": "N,D", "W": "D,C"}, vars={"X": "matrix(N,D)", "W": "matrix(D,C)"}),

    # ---- +, -, unary minus, Hadamard, division ------------------------------------------------
    case("plus_minus_unary", "-tr(A X) + tr(-(B X)) - tr(X^T (A - B)^T)", "X",
         lambda A, B, X: -tr(A @ X) + tr(-(B @ X)) - tr(X.T @ (A - B).T),
         {"A": "D,N", "B": "D,N", "X": "N,D"}),
    case("hadamard_spellings", "sum(X ⊙ Y ∘ Z .* X)", ["X", "Y"],
         lambda X, Y, Z: np.sum(X * Y * Z * X),
         {"X": "N,D", "Y": "N,D", "Z": "N,D"}),
    case("elementwise_division", "sum(X ./ Y) + sum(Y ⊘ (X ⊙ X + 1))", ["X", "Y"],
         lambda X, Y: np.sum(X / Y) + np.sum(Y / (X * X + 1)),
         {"X": "N,D", "Y": "pos:N,D"}),
    case("elementwise_division_vectors", "sum(x ./ y) + a'(x ⊘ y)", ["x", "y"],
         lambda x, y, a: np.sum(x / y) + a @ (x / y),
         {"x": "D", "y": "pos:D", "a": "D"}),
    case("scalar_division", "tr(A X)/α + tr(X)/2", ["X", "α"],
         lambda A, X, α: tr(A @ X) / α + tr(X) / 2,
         {"A": "D,D", "X": "D,D", "α": "pos:scalar"}),
    case("hadamard_precedence", "sum(y ⊙ Xw)", ["w", "y"],
         lambda y, X, w: np.sum(y * (X @ w)),
         {"y": "N", "X": "N,D", "w": "D"}),

    # ---- transpose, inverse, powers ----------------------------------------------------------
    case("transpose_spellings", "tr(X' A) + tr(Xᵀ B) + tr(X^T A^T X)", "X",
         lambda X, A, B: tr(X.T @ A) + tr(X.T @ B) + tr(X.T @ A.T @ X),
         {"X": "N,N", "A": "N,N", "B": "N,N"}),
    case("inverse_of_sum", "tr((A + X)^-1) + tr(inv(X^T X + A^T A) B)", ["X", "A"],
         lambda A, X, B: tr(inv(A + X)) + tr(inv(X.T @ X + A.T @ A) @ B),
         {"A": "spd:D", "X": "D,D", "B": "D,D"}),
    case("inverse_spellings", "tr(X^{-1} A) + a^T inv(X) b + tr(X^-1)", ["X", "a", "b"],
         lambda X, A, a, b: tr(inv(X) @ A) + a @ inv(X) @ b + tr(inv(X)),
         {"X": "spd:D", "A": "D,D", "a": "D", "b": "D"}),
    case("matrix_power_2", "tr(X^2 B)", ["X", "B"],
         lambda X, B: tr(X @ X @ B),
         {"X": "D,D", "B": "D,D"}),
    case("matrix_power_3", "tr(X^3) + a^T X^3 b", "X",
         lambda X, a, b: tr(mpow(X, 3)) + a @ mpow(X, 3) @ b,
         {"X": "D,D", "a": "D", "b": "D"}),
    case("matrix_power_-2", "tr(X^-2 A)", "X",
         lambda X, A: tr(mpow(inv(X), 2) @ A),
         {"X": "spd:D", "A": "D,D"}),
    case("elementwise_power", "sum(X .^ 3) + sum(P .^ 1.5) + sum(x.^2)", ["X", "P", "x"],
         lambda X, P, x: np.sum(X ** 3) + np.sum(P ** 1.5) + np.sum(x ** 2),
         {"X": "N,D", "P": "pos:N,D", "x": "C"}),
    case("vector_caret_is_elementwise", "a'x^2", "x",
         lambda a, x: a @ (x * x),
         {"a": "D", "x": "D"}),
    case("scalar_power", "(a^T x)^2 + (x'x)^0.5 + α^3", ["x", "α"],
         lambda a, x, α: (a @ x) ** 2 + (x @ x) ** 0.5 + α ** 3,
         {"a": "D", "x": "D", "α": "scalar"}),
    case("matrix_power_-3", "tr(X^-3 A)", "X",
         lambda X, A: tr(mpow(inv(X), 3) @ A),
         {"X": "spd:D", "A": "D,D"}),
    case("caret_elementwise_on_declared_nonsquare", "sum(X^2) + sum(X^3 ⊙ A)", "X",
         lambda X, A: np.sum(X ** 2) + np.sum(X ** 3 * A),
         {"X": "C,D", "A": "C,D"}, vars={"X": "matrix(3,4)"}),
    case("matrix_over_matrix_is_elementwise", "sum(A / B) + sum(1 / x)", ["A", "B", "x"],
         lambda A, B, x: np.sum(A / B) + np.sum(1 / x),
         {"A": "N,D", "B": "pos:N,D", "x": "pos:C"}),
    case("scalar_tr_and_variable_exponent", "tr(α) + α^β + 2^β", ["α", "β"],
         lambda α, β: α + α ** β + 2 ** β,
         {"α": "pos:scalar", "β": "scalar"}),
    case("scalar_reciprocal", "1/(1 + x'x) + (a'x)^-1", "x",
         lambda x, a: 1 / (1 + x @ x) + 1 / (a @ x),
         {"x": "D", "a": "D"}),
    case("det_squared_postfix_on_call", "det(X)^2 + norm(A)^2", ["X", "A"],
         lambda X, A: det(X) ** 2 + fro2(A),
         {"X": "spd:D", "A": "N,D"}),

    # ---- tr det logdet sum norms diag ------------------------------------------------------
    case("prefix_application", "log det X + tr X^2", "X",
         lambda X: np.log(det(X)) + tr(X @ X),
         {"X": "spd:D"}),
    case("logdet_I_plus_XTX", "logdet(I + X^T X)", "X",
         lambda X: logabsdet(np.eye(X.shape[1]) + X.T @ X),
         {"X": "N,D"}),
    case("det_of_product", "det(A X)", ["X", "A"],
         lambda A, X: det(A @ X),
         {"A": "D,N", "X": "N,D"}),
    case("sum_matrix_vector", "sum(X W) + sum(x) + sum(X ⊙ A)", ["X", "W", "x"],
         lambda X, W, x, A: np.sum(X @ W) + np.sum(x) + np.sum(X * A),
         {"X": "N,D", "W": "D,C", "x": "H", "A": "N,D"}),
    case("sum_of_matrix", "sum(X)", "X",
         lambda X: np.sum(X),
         {"X": "N,D"}),
    case("scaled_sum_of_matrix", "α sum(X) + sum(X)^2 + 2 sum(Y)/α", ["X", "Y", "α"],
         lambda α, X, Y: α * np.sum(X) + np.sum(X) ** 2 + 2 * np.sum(Y) / α,
         {"α": "pos:scalar", "X": "N,D", "Y": "C,H"}),
    case("norm_spellings", "norm(X) + ‖x‖ + ||Y||", ["X", "x", "Y"],
         lambda X, x, Y: norm(X) + norm(x) + norm(Y),
         {"X": "N,D", "x": "D", "Y": "C,H"}),
    case("norm_squared_spellings", "norm(X)^2 + ‖x‖^2 + ‖Y‖_F^2 + ||A||^2", ["X", "x", "Y"],
         lambda X, x, Y, A: fro2(X) + fro2(x) + fro2(Y) + fro2(A),
         {"X": "N,D", "x": "D", "Y": "C,H", "A": "H,K"}),
    case("norm_F_unsquared_and_norm_cubed", "‖X‖_F + ‖x‖^3", ["X", "x"],
         lambda X, x: norm(X) + norm(x) ** 3,
         {"X": "N,D", "x": "D"}),
    case("norm_of_vector_expr", "‖A x − b‖ + sqrt(x'x)", "x",
         lambda A, x, b: norm(A @ x - b) + np.sqrt(x @ x),
         {"A": "N,D", "x": "D", "b": "N"}),
    case("diag_vector_to_matrix", "tr(diag(x) A) + a^T diag(x) B c", "x",
         lambda x, A, a, B, c: tr(np.diag(x) @ A) + a @ np.diag(x) @ B @ c,
         {"x": "D", "A": "D,D", "a": "D", "B": "D,N", "c": "N"}),
    case("diag_matrix_to_vector", "a^T diag(X) + sum(diag(X A))", ["X", "A"],
         lambda a, X, A: a @ np.diag(X) + np.sum(np.diag(X @ A)),
         {"a": "D", "X": "D,D", "A": "D,D"}),

    # ---- element-wise functions -------------------------------------------------------------
    case("scalar_plus_matrix_broadcast", "sum(sqrt(x'x + P)) + sum((α + X) ⊙ B)", ["x", "α", "P", "X"],
         lambda x, P, α, X, B: np.sum(np.sqrt(x @ x + P)) + np.sum((α + X) * B),
         {"x": "D", "P": "pos:N,C", "α": "scalar", "X": "C,H", "B": "C,H"}),
    case("exp_log", "sum(exp(X W)) + sum(A ⊙ log(P))", ["W", "P"],
         lambda X, W, A, P: np.sum(np.exp(X @ W)) + np.sum(A * np.log(P)),
         {"X": "N,D", "W": "D,C", "A": "N,C", "P": "pos:N,C"}),
    case("sin_cos", "sum(sin(X) .* cos(X)) + a^T cos(X b)", ["X", "b"],
         lambda X, a, b: np.sum(np.sin(X) * np.cos(X)) + a @ np.cos(X @ b),
         {"X": "N,D", "a": "N", "b": "D"}),
    case("tanh", "sum(A ⊙ tanh(X W))", "W",
         lambda A, X, W: np.sum(A * np.tanh(X @ W)),
         {"A": "N,C", "X": "N,D", "W": "D,C"}),
    case("sigmoid_spellings", "sum(sigmoid(X)) + a^T σ(X b) + sum(sigma(x))", ["X", "b", "x"],
         lambda X, a, b, x: np.sum(sigmoid(X)) + a @ sigmoid(X @ b) + np.sum(sigmoid(x)),
         {"X": "N,D", "a": "N", "b": "D", "x": "C"}),
    case("relu", "sum(A ⊙ relu(X W)) + sum(relu(z).^2)", ["W", "z"],
         lambda A, X, W, z: np.sum(A * relu(X @ W)) + np.sum(relu(z) ** 2),
         {"A": "N,C", "X": "N,D", "W": "D,C", "z": "H"}),
    case("softplus", "sum(softplus(X W)) + a'softplus(x)", ["W", "x"],
         lambda X, W, a, x: np.sum(softplus(X @ W)) + a @ softplus(x),
         {"X": "N,D", "W": "D,C", "a": "H", "x": "H"}),
    case("sqrt", "sum(sqrt(P)) + a^T sqrt(p)", ["P", "p"],
         lambda P, a, p: np.sum(np.sqrt(P)) + a @ np.sqrt(p),
         {"P": "pos:N,D", "a": "C", "p": "pos:C"}),
    case("abs", "sum(abs(X W)) + sum(abs(x - y))", ["W", "x"],
         lambda X, W, x, y: np.sum(np.abs(X @ W)) + np.sum(np.abs(x - y)),
         {"X": "N,D", "W": "D,C", "x": "H", "y": "H"}),
    case("log_of_scalar_exp_of_scalar", "log(x'x) + exp(α) tr(X)", ["x", "α", "X"],
         lambda x, α, X: np.log(x @ x) + np.exp(α) * tr(X),
         {"x": "D", "α": "scalar", "X": "C,C"}),

    # ---- softmax, log_softmax, logsumexp -------------------------------------------------------
    case("softmax_matrix", "sum(A ⊙ softmax(X W))", "W",
         lambda A, X, W: np.sum(A * softmax(X @ W)),
         {"A": "N,C", "X": "N,D", "W": "D,C"}),
    case("softmax_vector", "a^T softmax(W x)", ["W", "x"],
         lambda a, W, x: a @ softmax(W @ x),
         {"a": "C", "W": "C,D", "x": "D"}),
    case("softmax_transposed", "tr(softmax(Z)^T A)", "Z",
         lambda Z, A: tr(softmax(Z).T @ A),
         {"Z": "N,C", "A": "N,C"}),
    case("log_softmax_matrix", "sum(A ⊙ log_softmax(X))", "X",
         lambda A, X: np.sum(A * log_softmax(X)),
         {"A": "N,C", "X": "N,C"}),
    case("log_softmax_vector", "a^T log_softmax(x) + b^T log softmax(x)", "x",
         lambda a, x, b: a @ log_softmax(x) + b @ np.log(softmax(x)),
         {"a": "C", "x": "C", "b": "C"}),
    case("sum_log_softmax_vector_declared", "sum(log_softmax(x)) + sum(log_softmax(X))", ["x", "X"],
         lambda x, X: np.sum(log_softmax(x)) + np.sum(log_softmax(X)),
         {"x": "C", "X": "N,D"}, vars={"x": "vector(C)", "X": "matrix(N,D)"}),
    case("logsumexp_matrix", "a^T logsumexp(X W)", ["W", "a"],
         lambda a, X, W: a @ logsumexp(X @ W),
         {"a": "N", "X": "N,D", "W": "D,C"}),
    case("logsumexp_vector", "logsumexp(x) + logsumexp(A y)", ["x", "y"],
         lambda x, A, y: logsumexp(x) + logsumexp(A @ y),
         {"x": "C", "A": "N,D", "y": "D"}),
    case("softmax_ce_via_logsumexp", "sum(logsumexp(XW + b)) - tr(Y^T (XW + b))", ["W", "b"],
         lambda X, W, b, Y: np.sum(logsumexp(X @ W + b)) - tr(Y.T @ (X @ W + b)),
         {"X": "N,D", "W": "D,C", "b": "C", "Y": "onehot:N,C"}, vars={"Y": "onehot"}),
    case("softmax_ce_onehot_extra_terms", "-tr(Y^T log softmax(Z)) + sum(Y ⊙ Z) - tr(Y^T A log softmax(2Z))",
         "Z",
         lambda Y, Z, A: -tr(Y.T @ log_softmax(Z)) + np.sum(Y * Z) - tr(Y.T @ A @ log_softmax(2 * Z)),
         {"Y": "onehot:N,C", "Z": "N,C", "A": "N,N"}, vars={"Y": "onehot"}),
    case("onehot_vector_ce", "-y^T log softmax(W x + b)", ["W", "x", "b"],
         lambda y, W, x, b: -y @ np.log(softmax(W @ x + b)),
         {"y": "onehot:C", "W": "C,D", "x": "D", "b": "C"}, vars={"y": "onehot"}),

    # ---- ones, identity, constants, broadcasting ----------------------------------------------
    case("ones_spellings", "ones^T X b + 𝟙ᵀ X^T a + 1_N^T Y c", ["X", "Y", "b"],
         lambda X, b, a, Y, c: np.sum(X @ b) + np.sum(X.T @ a) + np.sum(Y @ c),
         {"X": "N,D", "b": "D", "a": "N", "Y": "N,C", "c": "C"}, vars={"Y": "matrix(N,C)"}),
    case("ones_outer_broadcast_columns", "‖X − c 𝟙ᵀ‖^2", ["c", "X"],
         lambda X, c: fro2(X - c[:, None]),
         {"X": "N,D", "c": "N"}),
    case("vector_broadcast_add_and_hadamard", "sum((X + b) ⊙ (X + b)) + sum(X ⊙ b ⊙ X)", ["X", "b"],
         lambda X, b: np.sum((X + b) * (X + b)) + np.sum(X * b * X),
         {"X": "N,D", "b": "D"}),
    case("identity_I", "tr((X^T X + λ I)^-1)", ["X", "λ"],
         lambda X, λ: tr(inv(X.T @ X + λ * np.eye(X.shape[1]))),
         {"X": "N,D", "λ": "pos:scalar"}),
    case("identity_eye", "x^T (A + eye) x + tr(A eye B)", ["x", "A"],
         lambda x, A, B: x @ (A + np.eye(len(x))) @ x + tr(A @ B),
         {"x": "D", "A": "D,D", "B": "D,D"}),
    case("I_declared_as_variable", "tr(I X) + tr(Xᵀ eye A)", ["X", "I"],
         lambda I, X, A: tr(I @ X) + tr(X.T @ A),
         {"I": "D,N", "X": "N,D", "A": "N,D"}, vars={"I": "matrix"}),
    case("constants", "2.5 tr(A X) + 1e-3 ‖X‖_F^2 - 4 sum(X ⊙ B)", "X",
         lambda A, X, B: 2.5 * tr(A @ X) + 1e-3 * fro2(X) - 4 * np.sum(X * B),
         {"A": "D,N", "X": "N,D", "B": "N,D"}),

    # ---- Greek scalars as factors and as the variable -------------------------------------------
    case("greek_factor_and_variable", "α tr(A X) + β^2 ‖X‖^2 + γ", ["X", "α", "β", "γ"],
         lambda α, A, X, β, γ: α * tr(A @ X) + β ** 2 * fro2(X) + γ,
         {"α": "scalar", "A": "D,N", "X": "N,D", "β": "scalar", "γ": "scalar"}),
    case("greek_spelled_out", "lambda ‖w‖^2 + mu a'w + alpha", ["lambda", "mu", "w"],
         lambda lambda_, w, mu, a, alpha: lambda_ * (w @ w) + mu * (a @ w) + alpha,
         {"lambda_": "scalar", "w": "D", "mu": "scalar", "a": "D", "alpha": "scalar"}),
    case("scalar_declared_latin", "t tr(X) + t^2", ["t", "X"],
         lambda t, X: t * tr(X) + t ** 2,
         {"t": "scalar", "X": "D,D"}, vars={"t": "scalar"}),

    # ---- programs with named intermediates ---------------------------------------------------
    case("program_2layer_seed",
         "Z1 = X W1 + b1; H1 = σ(Z1); Z2 = H1 W2 + b2\n"
         "L = -tr(Y^T log softmax(Z2))/N + λ(‖W1‖_F^2 + ‖W2‖_F^2)",
         ["W1", "b1", "W2", "b2", "λ"],
         lambda X, W1, b1, W2, b2, Y, λ: -tr(Y.T @ log_softmax(sigmoid(X @ W1 + b1) @ W2 + b2))
         / X.shape[0] + λ * (fro2(W1) + fro2(W2)),
         {"X": "N,D", "W1": "D,H", "b1": "H", "W2": "H,C", "b2": "C", "Y": "onehot:N,C",
          "λ": "pos:scalar"}, vars={"Y": "onehot", "X": "matrix(N,D)"}),
    case("program_tanh_column_vector",
         "h = tanh(W1 x + b1); o = W2 h + b2; 1/2 ‖o − y‖^2",
         ["W1", "b1", "W2", "b2"],
         lambda W1, x, b1, W2, b2, y: 0.5 * np.sum((W2 @ np.tanh(W1 @ x + b1) + b2 - y) ** 2),
         {"W1": "H,D", "x": "D", "b1": "H", "W2": "C,H", "b2": "C", "y": "C"}),
]


# ---- gradients with respect to intermediates of a program ---------------------------------------
# (name, the intermediate's value from the inputs, the function given that value): the expected
# gradient is the finite differences of the function in the intermediate, the rest held fixed.

SEED_PROGRAM = ("Z1 = X W1 + b1; H1 = σ(Z1); Z2 = H1 W2 + b2\n"
                "L = -tr(Y^T log softmax(Z2))/N + λ(‖W1‖_F^2 + ‖W2‖_F^2)")
SEED_VARS = {"Y": "onehot", "X": "matrix(N,D)"}
SEED_DATA = {"X": "N,D", "W1": "D,H", "b1": "H", "W2": "H,C", "b2": "C", "Y": "onehot:N,C",
             "λ": "pos:scalar"}
TANH_PROGRAM = "h = tanh(W1 x + b1); o = W2 h + b2; 1/2 ‖o − y‖^2"
TANH_DATA = {"W1": "H,D", "x": "D", "b1": "H", "W2": "C,H", "b2": "C", "y": "C"}


def _seed_loss(Z2, Y, λ, W1, W2, **_):
    return -tr(Y.T @ log_softmax(Z2)) / Y.shape[0] + λ * (fro2(W1) + fro2(W2))


INTERMEDIATE_CASES = [
    ("seed_2layer", SEED_PROGRAM, SEED_VARS, SEED_DATA, "Z2",
     lambda X, W1, b1, W2, b2, **_: sigmoid(X @ W1 + b1) @ W2 + b2,
     lambda v, **a: _seed_loss(v, **a)),
    ("seed_2layer", SEED_PROGRAM, SEED_VARS, SEED_DATA, "H1",
     lambda X, W1, b1, **_: sigmoid(X @ W1 + b1),
     lambda v, **a: _seed_loss(v @ a["W2"] + a["b2"], **a)),
    ("seed_2layer", SEED_PROGRAM, SEED_VARS, SEED_DATA, "Z1",
     lambda X, W1, b1, **_: X @ W1 + b1,
     lambda v, **a: _seed_loss(sigmoid(v) @ a["W2"] + a["b2"], **a)),
    ("tanh_column", TANH_PROGRAM, {}, TANH_DATA, "h",
     lambda W1, x, b1, **_: np.tanh(W1 @ x + b1),
     lambda v, W2, b2, y, **_: 0.5 * np.sum((W2 @ v + b2 - y) ** 2)),
]


def _ids(cases):
    seen = set()
    for c in cases:
        assert c.id not in seen, f"duplicate case id {c.id}"
        seen.add(c.id)
    return [c.id for c in cases]


CASE_IDS = _ids(CASES)
WRT_PARAMS = [pytest.param(c, w, id=f"{c.id}-wrt-{w}") for c in CASES for w in c.wrt]


# ---- the generic machinery ------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _derived(case_id):
    """Result (all wrt at once), its compiled namespace, and matdiff.grad's {name: Gradient}."""
    c = _case(case_id)
    result = Result(c.expr, c.wrt, c.vars)
    grads = matdiff.grad(c.expr, wrt=list(c.wrt), vars=c.vars)
    return result, result.numpy_namespace(), grads


def _case(case_id):
    return next(c for c in CASES if c.id == case_id)


def _data(c):
    return make_data(c.data, seed=sum(map(ord, c.id)))


def _expected_gradient(c, arrays, name):
    fd = numeric_gradient(c.f, arrays, py_name(name))
    if c.vars.get(name, "").split("(")[0] in ("symmetric", "spd"):
        fd = (fd + fd.T) / 2
    return fd


def test_table_is_large_and_distinct():
    exprs = {c.expr for c in CASES}
    assert len(exprs) >= 70, f"only {len(exprs)} distinct expressions"


@pytest.mark.parametrize("c", CASES, ids=CASE_IDS)
def test_variables_as_intended(c):
    """matdiff sees exactly the variables the data provides, with the same ranks."""
    result, _, _ = _derived(c.id)
    arrays = _data(c)
    seen = {py_name(n): len(shape_of(node)) for n, node in result.problem.variables.items()}
    assert seen == {n: np.ndim(a) for n, a in arrays.items()}


@pytest.mark.parametrize("c", CASES, ids=CASE_IDS)
def test_value_matches_independent_implementation(c):
    _, ns, _ = _derived(c.id)
    arrays = _data(c)
    value = ns["value"](**arrays)
    assert isinstance(value, float)
    assert_close(value, c.f(**arrays), f"value of {c.expr}", rtol=1e-10)
    v2, _ = ns["value_and_gradient"](**arrays)
    assert_close(v2, value, "value from value_and_gradient", rtol=1e-12)


@pytest.mark.parametrize("c,name", WRT_PARAMS)
def test_gradient_matches_finite_differences(c, name):
    result, ns, grads = _derived(c.id)
    arrays = _data(c)
    like = arrays[py_name(name)]
    expected = _expected_gradient(c, arrays, name)

    _, all_grads = ns["value_and_gradient"](**arrays)
    if len(c.wrt) == 1:
        all_grads = (all_grads,)
    assert isinstance(all_grads, tuple) and len(all_grads) == len(c.wrt)
    g = all_grads[c.wrt.index(name)]
    assert_kind_of(g, like, f"∂/∂{name} from value_and_gradient")
    assert_close(g, expected, f"∂({c.expr})/∂{name} from value_and_gradient")

    single = grads[name].numpy_function()(**arrays)
    assert_kind_of(single, like, f"∂/∂{name} from Gradient.numpy_function()")
    assert_close(single, expected, f"∂({c.expr})/∂{name} from Gradient.numpy_function()")

    assert len(grads[name].shape) == np.ndim(like), \
        f"Gradient.shape {grads[name].shape} for a variable of rank {np.ndim(like)}"


def _prelude(expr):
    """The bindings of a program (all statements but the last), to evaluate its gradients'
    text, which may use the intermediates' names."""
    statements = [s.strip() for s in re.split(r"[;\n]", expr) if s.strip()]
    return "; ".join(statements[:-1])


@pytest.mark.parametrize("c,name", WRT_PARAMS)
def test_round_trip_of_printed_gradient(c, name):
    """The printed text, parsed again (same declarations), evaluates to the gradient."""
    _, ns, grads = _derived(c.id)
    arrays = _data(c)
    text = grads[name].text
    assert isinstance(text, str) and text
    _, all_grads = ns["value_and_gradient"](**arrays)
    g = all_grads if len(c.wrt) == 1 else all_grads[c.wrt.index(name)]
    # A `where` block's definitions come first, as statements of the program.
    text = "; ".join([f"{k} = {v}" for k, v in grads[name].where] + [grads[name].body])
    prelude = _prelude(c.expr)
    src = f"{prelude}; {text}" if prelude else text
    value, _ = eval_text(src, c.vars, arrays, like=g)
    assert_close(value, g, f"round trip of ∂/∂{name} = {text}", rtol=1e-9)


@pytest.mark.parametrize("c", [c for c in CASES if c.text], ids=[c.id for c in CASES if c.text])
def test_textbook_form(c):
    """A few gradients have a well-known closed form (in addition to the numbers)."""
    _, _, grads = _derived(c.id)
    assert grads[c.wrt[0]].text == c.text


@pytest.mark.parametrize("cid,expr,vars,data,name,inter,f", INTERMEDIATE_CASES,
                         ids=[f"{c[0]}-wrt-{c[4]}" for c in INTERMEDIATE_CASES])
def test_gradient_wrt_intermediate(cid, expr, vars, data, name, inter, f):
    arrays = make_data(data, seed=sum(map(ord, cid)))
    g = matdiff.grad(expr, wrt=name, vars=vars)
    actual = g.numpy_function()(**arrays)
    at = {**arrays, "v": inter(**arrays)}
    expected = numeric_gradient(lambda **a: f(**a), at, "v")
    assert_kind_of(actual, at["v"], f"∂/∂{name}")
    assert len(g.shape) == np.ndim(at["v"])
    assert_close(actual, expected, f"∂({expr})/∂{name}")
    # round trip, in the context of the program's bindings
    value, _ = eval_text(f"{_prelude(expr)}; {g.text}", vars, arrays, like=actual)
    assert_close(value, actual, f"round trip of ∂/∂{name} = {g.text}", rtol=1e-9)
