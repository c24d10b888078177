"""SPEC §1 "More operations" that need the language, shapes and IR:
`elu(Z, α)`, `leaky_relu(Z, α)`; `sum/mean/var(X, axis)` with the axis kept
and NumPy's size-1 broadcasting (layer norm, batch norm); `mean(X)`, `var(X)`;
`vec(X)`, `kron(A, B)` / `A ⊗ B` and `unvec(v, m, n)`, with sizes that are
products (m·n).

Each case is checked the way tests/test_gradients.py checks its table, against
NumPy written by hand here (never matdiff's own code): the generated `value`
equals the hand-written function, every gradient equals central differences
of it, and the printed gradient, parsed again and evaluated, equals the
gradient. Dimensions all differ (N=5, D=4, C=3). The same programs also go
through the differential fuzzer's classification (`run_source`: module and
printed text against the reference interpreter and autograd).
"""

import numpy as np
import pytest

import matdiff
from matdiff import MatdiffError
from matdiff.api import Result
from matdiff.numpy_emit import py_name

from numeric import assert_close, eval_text, make_data, numeric_gradient


def elu(x, a):
    return np.where(x > 0, x, a * (np.exp(np.minimum(x, 0.0)) - 1.0))


def leaky_relu(x, a):
    return np.where(x > 0, x, a * x)


def layer_norm(X, eps):
    mu = X.mean(axis=1, keepdims=True)
    var = ((X - mu) ** 2).mean(axis=1, keepdims=True)
    return (X - mu) / np.sqrt(var + eps)


def batch_norm(X, eps):
    mu = X.mean(axis=0, keepdims=True)
    var = ((X - mu) ** 2).mean(axis=0, keepdims=True)
    return (X - mu) / np.sqrt(var + eps)


def vec(X):
    """Column stacking, by hand: X's columns one after the other."""
    return np.concatenate([X[:, j] for j in range(X.shape[1])])


def kron(A, B):
    """The Kronecker product by hand: the block matrix [A_ij B]."""
    A, B = np.atleast_2d(A), np.atleast_2d(B)
    return np.block([[A[i, j] * B for j in range(A.shape[1])] for i in range(A.shape[0])])


def col(v):
    return np.reshape(v, (-1, 1))


# (id, expression, wrt, vars, hand-written f(**arrays), data specs)
CASES = [
    ("leaky_relu-number", "sum(Y ⊙ leaky_relu(X W, 0.1))", ["X", "W"], {},
     lambda X, W, Y: np.sum(Y * leaky_relu(X @ W, 0.1)), {"X": "N,D", "W": "D,C", "Y": "N,C"}),
    ("leaky_relu-greek", "tr(Yᵀ leaky_relu(X W + b, α))", ["W", "b", "α"], {},
     lambda X, W, b, Y, α: np.trace(Y.T @ leaky_relu(X @ W + b, α)),
     {"X": "N,D", "W": "D,C", "b": "C", "Y": "N,C", "α": "pos:scalar"}),
    ("elu-number", "sum(Y ⊙ elu(X W, 0.5))", ["X", "W"], {},
     lambda X, W, Y: np.sum(Y * elu(X @ W, 0.5)), {"X": "N,D", "W": "D,C", "Y": "N,C"}),
    ("elu-greek", "a^T elu(X w, α)", ["w", "α"], {},
     lambda a, X, w, α: a @ elu(X @ w, α), {"a": "N", "X": "N,D", "w": "D", "α": "pos:scalar"}),
    ("elu-fraction-vector", "‖elu(x, 1/4)‖^2", ["x"], {},
     lambda x: np.sum(elu(x, 0.25) ** 2), {"x": "D"}),
    ("sum-axis1", "a^T sum(X, 1) + sum(Y ⊙ (X - sum(X, 1)))", ["X"], {},
     lambda a, X, Y: a @ X.sum(axis=1) + np.sum(Y * (X - X.sum(axis=1, keepdims=True))),
     {"a": "N", "X": "N,D", "Y": "N,D"}),
    ("sum-axis0", "sum(X, 0) w + sum(Y ⊙ (X - sum(X, 0)))", ["X"], {},
     lambda X, w, Y: X.sum(axis=0) @ w + np.sum(Y * (X - X.sum(axis=0, keepdims=True))),
     {"X": "N,D", "w": "D", "Y": "N,D"}),
    ("mean-axes", "sum(Y ⊙ (mean(X, 1) + mean(X, 0)))", ["X", "Y"], {},
     lambda X, Y: np.sum(Y * (X.mean(axis=1, keepdims=True) + X.mean(axis=0, keepdims=True))),
     {"X": "N,D", "Y": "N,D"}),
    ("var-axes", "a^T var(X, 1) + var(X, 0) w", ["X"], {},
     lambda a, X, w: a @ X.var(axis=1) + X.var(axis=0) @ w, {"a": "N", "X": "N,D", "w": "D"}),
    ("mean-var-all", "mean(X) + var(X) + var(x)", ["X", "x"], {},
     lambda X, x: X.mean() + X.var() + x.var(), {"X": "N,D", "x": "C"}),
    ("double-centring", "‖X - mean(X, 1) - mean(X, 0) + mean(X)‖^2", ["X"], {},
     lambda X: np.sum((X - X.mean(axis=1, keepdims=True) - X.mean(axis=0, keepdims=True)
                       + X.mean()) ** 2), {"X": "N,D"}),
    ("kept-times-row", "sum(Y ⊙ (mean(X, 1) sum(X, 0)))", ["X"], {},
     lambda X, Y: np.sum(Y * (X.mean(axis=1, keepdims=True) @ X.sum(axis=0, keepdims=True))),
     {"X": "N,D", "Y": "N,D"}),
    ("kept-through-product", "sum(Y ⊙ (Y - A mean(X, 1)))", ["X", "A"], {},
     lambda Y, A, X: np.sum(Y * (Y - A @ X.mean(axis=1, keepdims=True))),
     {"Y": "C,D", "A": "C,N", "X": "N,D"}),
    ("kept-plus-vector", "sum(Y ⊙ (X - (mean(X, 1) + c)))", ["X", "c"], {},
     lambda Y, X, c: np.sum(Y * (X - (X.mean(axis=1, keepdims=True) + c[:, None]))),
     {"Y": "N,D", "X": "N,D", "c": "N"}),
    ("layer-norm", "sum(W ⊙ ((X - mean(X, 1)) ./ sqrt(var(X, 1) + ε)))", ["X", "W", "ε"], {},
     lambda W, X, ε: np.sum(W * layer_norm(X, ε)), {"W": "N,D", "X": "N,D", "ε": "pos:scalar"}),
    ("batch-norm", "sum(W ⊙ ((X - mean(X, 0)) ./ sqrt(var(X, 0) + ε)))", ["X", "W"], {},
     lambda W, X, ε: np.sum(W * batch_norm(X, ε)), {"W": "N,D", "X": "N,D", "ε": "pos:scalar"}),
    ("layer-norm-numpy-axis", "sum(W ⊙ ((X - mean(X, -1)) ./ sqrt(var(X, -1) + ε)))", ["X"], {},
     lambda W, X, ε: np.sum(W * layer_norm(X, ε)), {"W": "N,D", "X": "N,D", "ε": "pos:scalar"}),
    ("batch-norm-numpy-axis", "sum(W ⊙ (X - mean(X, -2)))", ["X"], {},
     lambda W, X: np.sum(W * (X - X.mean(axis=0, keepdims=True))), {"W": "N,D", "X": "N,D"}),
    ("layer-norm-program",
     "M = mean(X, 1); V = var(X, 1); H = (X - M) ./ sqrt(V + 1e-5); L = sum(W ⊙ H)",
     ["X", "W"], {},
     lambda W, X: np.sum(W * layer_norm(X, 1e-5)), {"W": "N,D", "X": "N,D"}),
    ("layer-norm-affine",
     "H = (X - mean(X, 1)) ./ sqrt(var(X, 1) + ε); Z = H ⊙ γ + β; L = sum(Y ⊙ tanh(Z))",
     ["X", "γ", "β"], {"γ": "vector(D)", "β": "vector(D)"},
     lambda X, γ, β, Y, ε: np.sum(Y * np.tanh(layer_norm(X, ε) * γ + β)),
     {"X": "N,D", "γ": "D", "β": "D", "Y": "N,D", "ε": "pos:scalar"}),
    # vec, kron, unvec: sizes that are products
    ("vec-linear", "a^T vec(X)", ["X", "a"], {},
     lambda a, X: a @ vec(X), {"a": lambda: (20,), "X": "N,D"}),
    ("vec-quadratic", "vec(X)^T M vec(X)", ["X", "M"], {},
     lambda X, M: vec(X) @ M @ vec(X), {"X": "C,D", "M": lambda: (12, 12)}),
    ("vec-program", "v = vec(X W); L = c^T tanh(v)", ["X", "W"], {},
     lambda X, W, c: c @ np.tanh(vec(X @ W)), {"X": "N,D", "W": "D,C", "c": lambda: (15,)}),
    ("vec-sum", "sum(vec(X) ⊙ vec(Y))", ["X"], {},
     lambda X, Y: np.sum(X * Y), {"X": "N,D", "Y": "N,D"}),
    ("kron-hadamard", "sum(W ⊙ (A ⊗ B))", ["A", "B", "W"], {},
     lambda W, A, B: np.sum(W * kron(A, B)), {"W": lambda: (15, 28), "A": "N,D", "B": "C,K"}),
    ("kron-call", "tr(Y^T kron(A, B))", ["A", "B"], {},
     lambda Y, A, B: np.trace(Y.T @ kron(A, B)), {"Y": lambda: (15, 28), "A": "N,D", "B": "C,K"}),
    ("kron-vectors", "a^T (x ⊗ y)", ["x", "y"], {},
     lambda a, x, y: a @ kron(col(x), col(y))[:, 0], {"a": lambda: (15,), "x": "N", "y": "C"}),
    ("kron-row", "sum(W ⊙ (x^T ⊗ B))", ["x", "B"], {},
     lambda W, x, B: np.sum(W * kron(x[None, :], B)), {"W": lambda: (3, 35), "x": "N", "B": "C,K"}),
    ("kron-matvec", "‖(A ⊗ B) v‖^2", ["A", "B", "v"], {},
     lambda A, B, v: np.sum((kron(A, B) @ v) ** 2), {"A": "N,D", "B": "C,K", "v": lambda: (28,)}),
    ("kron-square", "logdet(S ⊗ T)", ["S", "T"], {"S": "spd", "T": "spd"},
     lambda S, T: np.linalg.slogdet(kron(S, T))[1], {"S": "spd:C", "T": "spd:D"}),
    ("vec-kron-identity", "‖vec(A X B) - (B^T ⊗ A) vec(X)‖^2 + sum(X)", ["X", "A"], {},
     lambda A, X, B: np.sum((vec(A @ X @ B) - kron(B.T, A) @ vec(X)) ** 2) + np.sum(X),
     {"A": "N,D", "X": "D,C", "B": "C,K"}),
    ("kron-of-vec", "‖vec(A ⊗ B) - vec(A) ⊗ vec(B)‖^2", ["A", "B"], {},
     lambda A, B: np.sum((vec(kron(A, B)) - kron(col(vec(A)), col(vec(B)))[:, 0]) ** 2),
     {"A": "N,D", "B": "C,K"}),
    ("unvec", "sum(Y ⊙ tanh(unvec(M x, N, D)))", ["M", "x"], {"Y": "matrix(N,D)"},
     lambda Y, M, x: np.sum(Y * np.tanh((M @ x).reshape(4, 5).T)),
     {"Y": "N,D", "M": lambda: (20, 3), "x": "C"}),
    ("batch-norm-declared", "sum(Y ⊙ relu((X - mean(X, 0)) ./ sqrt(var(X, 0) + 0.01)) W)",
     ["X", "W"], {"X": "matrix(N,D)", "W": "matrix(D,C)"},
     lambda Y, X, W: np.sum(Y * (np.maximum(batch_norm(X, 0.01), 0.0) @ W)),
     {"Y": "N,C", "X": "N,D", "W": "D,C"}),
]


def _data(c):
    """The data of a case; a spec that is a function gives a shape (sizes that
    are products: 20 = N·D with N = 5, D = 4)."""
    cid, _, _, _, _, specs = c
    rng = np.random.default_rng(sum(map(ord, cid)))
    out = make_data({py_name(k): v for k, v in specs.items() if not callable(v)},
                    seed=sum(map(ord, cid)))
    out.update({py_name(k): rng.standard_normal(v()) for k, v in specs.items() if callable(v)})
    return out


@pytest.mark.parametrize("c", CASES, ids=[c[0] for c in CASES])
def test_value_gradients_and_text(c):
    cid, expr, wrt, vars, f, _ = c
    arrays = _data(c)
    result = Result(expr, wrt, vars)
    ns = result.numpy_namespace()
    assert abs(ns["value"](**arrays) - f(**arrays)) <= 1e-9 * max(1.0, abs(f(**arrays)))
    _, grads = ns["value_and_gradient"](**arrays)
    grads = grads if len(wrt) > 1 else (grads,)
    for name, g in zip(wrt, grads):
        want = numeric_gradient(f, arrays, py_name(name))
        assert_close(g, want, f"{cid}: ∂/∂{name}")
        text = result.gradient(name).text
        back, _ = eval_text(in_context(expr, text), vars, arrays, like=want)
        assert_close(back, want, f"{cid}: ∂/∂{name} printed as {text!r}, read back")


def in_context(expr, text):
    """A printed gradient as the last statement of its own program: after the
    program's statements (its intermediates' names, and `n_X`, the columns of
    X, whose variables the printed text may not show) and the `where`
    definitions."""
    stmts = [s.strip() for s in expr.split(";")]
    if "=" not in stmts[-1]:
        stmts[-1] = "value_ = " + stmts[-1]
    lines = text.split("\n")
    defs = [line.strip().removeprefix("where ").strip() for line in lines[1:]]
    return "; ".join(stmts + defs + [lines[0]])


@pytest.mark.parametrize("c", CASES, ids=[c[0] for c in CASES])
def test_against_the_reference(c):
    """The fuzzer's classification: module, gradients and printed text against
    the reference interpreter and autograd."""
    import fuzz_programs as F
    cid, expr, wrt, vars, _, _ = c
    out = F.run_source(expr, wrt, vars, seed=3)
    assert out.outcome == "right", (out.outcome, out.detail)


def test_parameters_print_and_read_back():
    g = matdiff.grad("sum(Y ⊙ leaky_relu(X W, 0.1))", wrt="W")
    assert "leaky_relu(XW, 0.1)" not in g.text  # the derivative, not the function
    g = matdiff.grad("sum(Y ⊙ elu(X W, α))", wrt="W")
    assert "elu(XW, α)" in g.text  # elu′ = elu + α below 0
    assert r"\operatorname{ELU}_{\alpha}" in g.latex
    g = matdiff.grad("sum(elu(X W, α))", wrt="α")
    assert g.text == "sum(expm1(−relu(−XW)))"


def test_sympy_of_a_parameter():
    import sympy as sp
    g = matdiff.grad("sum(Y ⊙ elu(X, α))", wrt="Y")
    e = g.sympy
    X = next(s for s in e.free_symbols if str(s) == "X")
    a = next(s for s in e.free_symbols if str(s) == "α")
    val = e.subs({X: sp.ImmutableMatrix([[1, -1], [-2, 3]]), a: sp.Rational(1, 2)}).doit()
    want = [[1, (sp.exp(-1) - 1) / 2], [(sp.exp(-2) - 1) / 2, 3]]
    assert sp.simplify(sp.Matrix(val) - sp.Matrix(want)) == sp.zeros(2, 2)


@pytest.mark.parametrize("expr,message", [
    ("sum(elu(X))", "elu takes 2 arguments, elu(X, alpha), got 1"),
    ("sum(leaky_relu(X, 0.1, 2))", "leaky_relu takes 2 arguments"),
    ("sum(elu(X, Y))", "the parameter alpha of elu must be a scalar"),
    ("sum(sum(X, 2))", "the axis of sum(X, axis) must be 0"),
    ("sum(mean(X, k))", "the axis of mean(X, axis) must be 0"),
    ("sum(X - mean(Y, 1))", "needs N = M: X is N×D, mean(Y, 1) is M×1"),
])
def test_errors(expr, message):
    with pytest.raises(MatdiffError) as e:
        matdiff.grad(expr, wrt="X", vars={"X": "matrix(N,D)", "Y": "matrix(M,D)"})
    assert message in str(e.value)
    assert "^" in str(e.value)  # points at the text


def test_kept_axis_is_not_a_vector():
    """A vector b broadcasts along the last axis (XW + b = XW + 𝟙bᵀ); an N×1
    kept axis along the columns (X − m𝟙ᵀ): with X square both readings type-check."""
    arrays = make_data({"X": "D,D", "b": "D"}, seed=1)
    X, b = arrays["X"], arrays["b"]
    r = Result("sum((X - mean(X, 1)).^2) + sum((X - b).^2)", ["X"], {})
    want = np.sum((X - X.mean(axis=1, keepdims=True)) ** 2) + np.sum((X - b[None, :]) ** 2)
    assert abs(r.numpy_namespace()["value"](**arrays) - want) < 1e-9
    # sizes stay apart: a kept axis of X against X's own rows, not its columns
    p = Result("sum(X - mean(X, 1))", [], {}).problem
    assert p.variables["X"].shape == ("m_X", "n_X")


def test_product_sizes_unify_and_print():
    p = Result("a^T vec(X) + sum(W ⊙ (A ⊗ B))", [], {}).problem
    assert p.variables["a"].shape == ("m_X·n_X", 1)
    assert p.variables["W"].shape == ("m_A·m_B", "n_A·n_B")
    g = matdiff.grad("sum(W ⊙ (A ⊗ B))", wrt="W")
    assert g.shape == ("m_A·m_B", "n_A·n_B") and g.text == "A ⊗ B"
    # numbers multiply out; a number solves a product with one unknown factor
    p = Result("x^T (a ⊗ y)", [], {"x": "vector(12)", "a": "vector(3)"}).problem
    assert p.variables["y"].shape == (4, 1)
    p = Result("x^T vec(X)", [], {"x": "vector(12)", "X": "matrix(3,4)"}).problem
    assert p.variables["X"].shape == (3, 4)
    # vec(X) against vec(Y): X and Y of one shape
    p = Result("vec(X)^T vec(Y)", [], {}).problem
    assert p.variables["X"].shape == p.variables["Y"].shape
    # the printed unvec reads back (its sizes are products of names)
    g = matdiff.grad("a^T vec(A ⊗ B)", wrt="a")
    assert g.text == "vec(A ⊗ B)"
    g = matdiff.grad("c^T vec((A ⊗ B) ⊙ W)", wrt="W")
    assert g.text == "(A ⊗ B) ⊙ unvec(c, m_A·m_B, n_A·n_B)"
    assert "\\operatorname{vec}^{-1}" in g.latex and "\\otimes" in g.latex


@pytest.mark.parametrize("expr,vars,message", [
    ("sum(X vec(X))", {}, "shape mismatch"),
    ("x^T vec(X)", {"x": "vector(K)", "X": "matrix(M,N)"}, "needs M·N = K"),
    ("x^T vec(X)", {"x": "vector(13)", "X": "matrix(3,N)"}, "cannot tell the sizes"),
    ("sum(kron(A))", {}, "kron takes two arguments"),
    ("sum(unvec(x, 3))", {}, "unvec takes three arguments"),
    ("sum(unvec(X, 3, 4))", {}, "unvec needs a vector"),
    ("sum(unvec(x, 3, α))", {}, "a size must be a positive integer"),
])
def test_product_size_errors(expr, vars, message):
    with pytest.raises(MatdiffError) as e:
        matdiff.grad(expr, wrt=sorted(Result(expr, [], vars).problem.variables)[:1], vars=vars) \
            if "kron(A)" not in expr and "unvec(x, 3)" not in expr else matdiff.grad(expr, wrt="A")
    assert message in str(e.value)


def test_kron_pullback_code_forms_no_kronecker_factor():
    """(I ⊗ 𝟙ᵀ)(G ⊙ (𝟙𝟙ᵀ ⊗ B))(I ⊗ 𝟙) is emitted as block sums of a reshape, with
    B tiled: no identity or Kronecker factor of the blocks' size is formed."""
    src = Result("sum(W ⊙ (A ⊗ B))", ["A", "B"], {}).numpy_source()
    body = src[src.index("def value_and_gradient"):]
    assert "eye" not in body and body.count("reshape") == 2 and "tile" in body


@pytest.mark.parametrize("expr,wrt", [
    ("M = mean(X, 1); S = sqrt(var(X, 1) + 1e-5); sum(Y ⊙ (X - M) ./ S)", ["X", "M", "S"]),
    ("R = mean(X, 0); sum(Y ⊙ (X - R))", ["R", "X"]),
    ("R = var(X, 0) + 1; L = sum(Y ⊙ X ./ sqrt(R))", ["R", "X"]),
    ("r = x^T A; sum(Y ⊙ (Y - r))", ["r"]),
    ("v = vec(X W); L = c^T tanh(v)", ["v", "W"]),
])
def test_gradients_with_respect_to_kept_and_row_intermediates(expr, wrt):
    """An N×1 kept axis (M) or a 1×D row (R) as an intermediate: its gradient,
    the reference's override of it and its value read back as a name keep
    its orientation."""
    import fuzz_programs as F
    out = F.run_source(expr, wrt, {}, seed=5)
    assert out.outcome == "right", (out.outcome, out.detail)


def test_variance_gradient_in_textbook_form():
    """A centred vector sums to 0: ∂var(x)/∂x = 2(x − mean(x))/n, no zero term."""
    assert matdiff.grad("var(x)", wrt="x").text == "2(x − sum(x)/n_x)/n_x"
    assert matdiff.grad("var(X)", wrt="X").text == "2(X − sum(X)/(m_X n_X))/(m_X n_X)"


def test_centred_rows_sum_to_zero():
    """(X − X𝟙𝟙ᵀ/D)𝟙 = 0 and (c𝟙ᵀ ⊙ A)𝟙 = c ⊙ (A𝟙): so layer norm's gradient is
    the textbook three terms G/σ − mean(G/σ, 1) − x̂ ⊙ (…), with no term that is
    a centred row sum (numerically zero) left over."""
    from matdiff import ir
    X = ir.var("X", "matrix", ("N", "D"))
    c = ir.var("c", "vector", ("N", 1))
    centred = ir.add(X, ir.neg(ir.mul(ir.recip(ir.dim("D")),
                                      ir.matmul(X, ir.ones("D"), ir.transpose(ir.ones("D"))))))
    assert ir.is_zero(ir.matmul(centred, ir.ones("D")))
    row = ir.matmul(c, ir.transpose(ir.ones("D")))
    assert ir.matmul(ir.mul(row, X), ir.ones("D")) is ir.mul(c, ir.matmul(X, ir.ones("D")))
    for axis in (1, 0):  # layer norm, batch norm (𝟙ᵀ(X − 𝟙𝟙ᵀX/N) = 0 on the left)
        g = matdiff.grad(f"sum(W ⊙ ((X - mean(X, {axis})) ./ sqrt(var(X, {axis}) + ε)))",
                         wrt="X", vars={"X": "matrix(N,D)"})
        assert g.node.op == "add" and len(g.node.args) == 3, g.text
    assert ir.is_zero(ir.matmul(ir.transpose(ir.ones("N")),
                                ir.add(X, ir.neg(ir.mul(ir.recip(ir.dim("N")), ir.matmul(
                                    ir.ones("N"), ir.transpose(ir.ones("N")), X))))))
