"""The reference interpreter (matdiff/reference.py): independent of the
derivation (its imports are checked), and right on each construct of SPEC §1
(each value compared with NumPy written out by hand here)."""

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from matdiff import reference
from matdiff.reference import EvaluationError, evaluate, evaluate_all

FORBIDDEN = {"ir", "build", "diff", "numpy_emit", "evaluate", "printing", "engine", "shapes",
             "forward", "higher", "api", "sympy_out", "steps", "check", "pyast"}


def _imported_modules(path):
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:  # relative: from . import x / from .x import y
                if mod:
                    out.add("matdiff." + mod)
                else:
                    out.update("matdiff." + a.name for a in node.names)
            else:
                out.add(mod)
                if mod == "matdiff":
                    out.update("matdiff." + a.name for a in node.names)
    return out


def test_reference_imports_nothing_of_the_derivation():
    mods = _imported_modules(reference.__file__)
    matdiff_mods = {m.split(".")[1] for m in mods if m.startswith("matdiff.")}
    assert matdiff_mods <= {"parser", "ops", "errors"}, matdiff_mods
    assert not (matdiff_mods & FORBIDDEN)
    # nothing else of matdiff sneaks in through importlib either
    assert "importlib" not in mods


def test_reference_does_not_read_the_rule_tables_numpy_strings():
    text = Path(reference.__file__).read_text(encoding="utf-8")
    assert '["numpy"]' not in text and "'numpy']" not in text and '.get("numpy"' not in text


rng = np.random.default_rng(7)
N, D, C = 5, 4, 3
X = rng.standard_normal((N, D))
W = rng.standard_normal((D, C))
A = rng.standard_normal((D, D))
S = A @ A.T / D + np.eye(D)
b = rng.standard_normal(C)
x = rng.standard_normal(D)
y = rng.standard_normal(D)
u = rng.standard_normal(N)
Y = np.zeros((N, C))
Y[np.arange(N), rng.integers(C, size=N)] = 1.0
P = rng.uniform(0.5, 1.5, size=(D, D))
ARR = {"P": P, "X": X, "W": W, "A": A, "S": S, "b": b, "x": x, "y": y, "u": u, "Y": Y, "λ": 0.7}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def log_softmax_rows(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


CASES = [
    ("-tr(Y^T log softmax(XW+b))", -np.sum(Y * log_softmax_rows(X @ W + b))),
    ("-tr(Y^T log softmax(X W + 𝟙 b^T))", -np.sum(Y * log_softmax_rows(X @ W + b))),
    ("-tr(Y^T log softmax(XW+b))/N", -np.sum(Y * log_softmax_rows(X @ W + b)) / N),
    ("x^T A x", x @ A @ x),
    ("x'A*x", x @ A @ x),
    ("xᵀ A @ x / 2", x @ A @ x / 2),
    ("1/2 x'x", 0.5 * x @ x),
    ("sum(XW / 2)", np.sum(X @ W) / 2),  # issue 11 #1 (the parse; fixed)
    ("x'Ax / 2", x @ A @ x / 2),
    ("sum(X ⊙ X) + sum(X .* X) + sum(X ∘ X)", 3 * np.sum(X * X)),
    ("sum(X ./ (X ⊙ X + 1)) + sum(X ⊘ (X ⊙ X + 1))", 2 * np.sum(X / (X * X + 1))),
    ("sum(X / (X ⊙ X + 1))", np.sum(X / (X * X + 1))),
    ("sum(y ⊙ A x)", np.sum(y * (A @ x))),
    ("−sum(X) − 2", -np.sum(X) - 2),
    ("- -sum(X)", np.sum(X)),
    ("2 * -sum(X)", -2 * np.sum(X)),
    ("tr(A^2) + tr(A²) + tr(A^{2})", 3 * np.trace(A @ A)),
    ("tr(A^-2) + tr(A⁻²)", 2 * np.trace(np.linalg.matrix_power(np.linalg.inv(A), 2))),
    ("tr(A^{-1}) + tr(A^-1) + tr(inv(A)) + tr(A⁻¹)", 4 * np.trace(np.linalg.inv(A))),
    ("sum(A⁻ᵀ W)", np.sum(np.linalg.inv(A).T @ W)),
    ("tr(A^0 X^T X)", np.trace(X.T @ X)),
    ("sum(x^-1)", np.sum(1 / x)),
    ("y'x^2", y @ (x * x)),
    ("sum(x.^3) + sum(X.^2)", np.sum(x ** 3) + np.sum(X ** 2)),
    ("λ^2 + (x'x)^0.5 + (x'x)^(1/2)", 0.49 + 2 * np.sqrt(x @ x)),
    ("logdet(S) + log det S", 2 * np.linalg.slogdet(S)[1]),
    ("logdet(-S)", np.linalg.slogdet(-S)[1]),
    ("det(S) + det(λ) + tr(λ)", np.linalg.det(S) + 1.4),
    ("‖X‖ + norm(X) + ||X|| + ‖X‖_F + norm(x)", 4 * np.linalg.norm(X) + np.linalg.norm(x)),
    ("‖X‖_F^2 + norm(X)^2 + ‖x‖_2", 2 * np.sum(X * X) + np.linalg.norm(x)),
    ("x' diag(y) x + sum(diag(A))", x @ np.diag(y) @ x + np.trace(A)),
    ("sum(softmax(XW)) + sum(softmax(x) ⊙ y)",
     float(N) + np.sum(np.exp(x - x.max()) / np.exp(x - x.max()).sum() * y)),
    ("sum(logsumexp(X)) + logsumexp(x)",
     np.sum(np.log(np.exp(X).sum(axis=1))) + np.log(np.exp(x).sum())),
    ("sum(log_softmax(X W))", np.sum(log_softmax_rows(X @ W))),
    ("sum(σ(X)) + sum(sigmoid(X)) + sum(sigma(X))", 3 * np.sum(sigmoid(X))),
    ("sum(exp(X)) + sum(log(P)) + sum(sin(X)) + sum(cos(X)) + sum(tanh(X))",
     np.sum(np.exp(X)) + np.sum(np.log(P)) + np.sum(np.sin(X)) + np.sum(np.cos(X))
     + np.sum(np.tanh(X))),
    ("sum(relu(X)) + sum(softplus(X)) + sum(sqrt(P)) + sum(abs(X)) + sum(|x|)",
     np.sum(np.maximum(X, 0)) + np.sum(np.log1p(np.exp(X))) + np.sum(np.sqrt(P))
     + np.sum(np.abs(X)) + np.sum(np.abs(x))),
    ("sum(sign(X)) + sum(step(X))", np.sum(np.sign(X)) + np.sum(X > 0)),
    ("exp sum(X)", math.exp(np.sum(X))),
    ("log det S", np.log(np.linalg.det(S))),
    ("tr A^2", np.trace(A @ A)),
    ("u^T 𝟙 + 𝟙^T u + ones^T u + 1_N^T u + ones(N)' u + ones(5)' u", 6 * np.sum(u)),
    ("tr(I A) + tr(eye A) + tr(I_D A) + tr(A I)", 4 * np.trace(A)),
    ("sum(A + I)", np.sum(A) + D),
    ("sum(X + 2)", np.sum(X) + 2 * N * D),
    ("sum(𝟙 𝟙ᵀ ⊙ X)", np.sum(X)),
    ("pi + π + 1e-3 + 2.5 + .5", 2 * math.pi + 0.001 + 3.0),
    ("λ(‖W‖^2 + 1)", 0.7 * (np.sum(W * W) + 1)),
    ("sum(X)/N + sum(X)/D", np.sum(X) / N + np.sum(X) / D),
    ("sum(X)/n_X + sum(X)/m_X + sum(x)/n_x", np.sum(X) / D + np.sum(X) / N + np.sum(x) / D),
    ("Z = X W + b; H = σ(Z); L = sum(H) + sum(Z)",
     np.sum(sigmoid(X @ W + b)) + np.sum(X @ W + b)),
    ("ρ = 1 + λ; -ρ", -1.7),
    ("z = A x; z'z + sum(z)", (A @ x) @ (A @ x) + np.sum(A @ x)),
    ("(x'y)(y'x) + (x'y) sum(W b)", (x @ y) ** 2 + (x @ y) * np.sum(W @ b)),
    ("sum(X' u)", np.sum(X.T @ u)),
    ("x^T^T^T y + x' ' 'y + (xᵀ)ᵀᵀ y", 3 * x @ y),
    ("sum(XW1 + 0)", np.sum(X @ W)),
]


@pytest.mark.parametrize("src,expected", CASES,
                         ids=[c.values[0] if hasattr(c, "values") else c[0] for c in CASES])
def test_reference_values(src, expected):
    arrays = dict(ARR)
    arrays["W1"] = W
    vars = {"X": "matrix(N,D)"}
    got = evaluate(src, arrays, vars=vars)
    assert isinstance(got, float)
    assert abs(got - expected) <= 1e-10 * max(1.0, abs(expected)), (got, expected)


def test_result_convention_and_broadcasting():
    v = evaluate("X W + b", ARR)
    assert v.shape == (N, C) and np.allclose(v, X @ W + b[None, :])
    assert np.allclose(evaluate("b + X W", ARR), X @ W + b[None, :])
    assert np.allclose(evaluate("(X W) ⊙ b", ARR), (X @ W) * b[None, :])
    assert np.allclose(evaluate("b^T + X W", ARR), X @ W + b[None, :])
    assert evaluate("A x", ARR).shape == (D,)
    assert evaluate("x^T A", ARR).shape == (D,)
    assert evaluate("logsumexp(X)", ARR).shape == (N,)
    assert evaluate("diag(x)", ARR).shape == (D, D)
    with pytest.raises(EvaluationError):
        evaluate("x + x^T", ARR)
    with pytest.raises(EvaluationError):
        evaluate("X + W", ARR)
    with pytest.raises(EvaluationError):
        evaluate("X + u", ARR)  # a vector matches the last axis only


def test_sizes_of_ones_and_identity_from_context():
    assert evaluate("𝟙ᵀ X 𝟙", ARR) == pytest.approx(np.sum(X))
    assert np.allclose(evaluate("2𝟙𝟙ᵀ", {}, like=(N, D)), 2 * np.ones((N, D)))
    assert np.allclose(evaluate("λ I", ARR, like=(D, D)), 0.7 * np.eye(D))
    with pytest.raises(EvaluationError, match="size"):
        evaluate("sum(I)", {})
    with pytest.raises(EvaluationError, match="size"):
        evaluate("2𝟙𝟙ᵀ", {})
    with pytest.raises(EvaluationError):
        evaluate("x 𝟙", ARR)  # would need 𝟙 of length 1


def test_matrix_power_elementwise_where_the_sizes_differ():
    Z = rng.standard_normal((3, 4))
    assert evaluate("sum(Z^2)", {"Z": Z}, vars={"Z": "matrix(3,4)"}) == pytest.approx(np.sum(Z ** 2))
    with pytest.raises(EvaluationError, match="non-integer"):
        evaluate("sum(A^0.5)", ARR)


def test_overrides_env_and_bindings():
    src = "Z = X W + b; H = σ(Z); sum(H)"
    Z0 = rng.standard_normal((N, C))
    assert evaluate(src, ARR, overrides={"Z": Z0}) == pytest.approx(np.sum(sigmoid(Z0)))
    value, bound, info = evaluate_all(src, ARR)
    assert set(bound) == {"Z", "H"} and np.allclose(bound["Z"], X @ W + b)
    assert evaluate("Xᵀ(H − Y)", {"X": X, "Y": Y}, env={"H": bound["H"]}).shape == (D, C)
    with pytest.raises(EvaluationError, match="not an intermediate"):
        evaluate(src, ARR, overrides={"Q": Z0})
    with pytest.raises(EvaluationError, match="override"):
        evaluate(src, ARR, overrides={"Z": Z0[:, :2]})


def test_dimension_names_and_declarations():
    assert evaluate("sum(X)/N", {"X": X}, vars=["X:matrix(N,D)"]) == pytest.approx(np.sum(X) / N)
    assert evaluate("sum(X)/K", {"X": X}, dims={"K": 9}) == pytest.approx(np.sum(X) / 9)
    assert evaluate("x^T 1_K", {"x": x}) == pytest.approx(np.sum(x))  # K sized by x
    assert evaluate("x^T 1_K / K", {"x": x}) == pytest.approx(np.sum(x) / D)
    with pytest.raises(EvaluationError, match="unknown name"):
        evaluate("sum(X) + q", {"X": X})
    with pytest.raises(EvaluationError):
        evaluate("sum(X)", {"X": X}, vars={"X": "matrix(N,N)"})  # declared square, 5×4 given


def test_kink_report():
    _, _, info = evaluate_all("sum(relu(x))", {"x": np.array([1.0, -2.0, 1e-12])})
    assert info["kink"] == pytest.approx(1e-12)
    _, _, info = evaluate_all("sum(exp(x))", {"x": x})
    assert info["kink"] == math.inf


def test_autograd_through_the_reference():
    autograd = pytest.importorskip("autograd")
    anp = pytest.importorskip("autograd.numpy")
    src = "-tr(Y^T log softmax(XW+b)) + λ‖W‖^2 + logdet(S) + x'S x"
    arrays = dict(ARR)
    g = autograd.grad(lambda W_: evaluate(src, {**arrays, "W": W_}, xp=anp))(W)
    e = np.exp(log_softmax_rows(X @ W + b))
    assert np.allclose(g, X.T @ (e - Y) + 2 * 0.7 * W)
    gS = autograd.grad(lambda S_: evaluate(src, {**arrays, "S": S_}, xp=anp))(S)
    assert np.allclose(gS, np.linalg.inv(S).T + np.outer(x, x))
    gl = autograd.grad(lambda l: evaluate(src, {**arrays, "λ": l}, xp=anp))(0.7)
    assert gl == pytest.approx(np.sum(W * W))
    gZ = autograd.grad(lambda Z: evaluate("Z = X W; sum(σ(Z))", arrays, overrides={"Z": Z},
                                          xp=anp))(X @ W)
    s = sigmoid(X @ W)
    assert np.allclose(gZ, s * (1 - s))


def test_every_rule_table_function_has_a_reference_form():
    from matdiff.ops import registry
    missing = set(registry.functions().values()) - reference.supported_functions()
    assert not missing, f"add NumPy forms to reference._ELEMENTWISE for {sorted(missing)}"
