"""Hessians and Jacobians, checked against finite differences of independent
NumPy functions (all dimensions different)."""

import numpy as np
import pytest
from click.testing import CliRunner

import matdiff
from matdiff.cli import cli
from matdiff.higher import Higher
from matdiff.numpy_emit import compile_module

RNG = np.random.default_rng(11)
n, m, k = 4, 3, 5


def _sig(z):
    return 1 / (1 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def fd_jacobian(f, x, eps=1e-6):
    """Column j: (f(x + eps e_j) - f(x - eps e_j)) / 2eps, x in column-stacking order."""
    x = np.asarray(x, dtype=float)
    cols = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = eps
        e = e.reshape(x.shape, order="F")
        cols.append(np.ravel(np.asarray(f(x + e) - f(x - e)), order="F") / (2 * eps))
    return np.stack(cols, axis=1)


def fd_gradient(f, x, eps=1e-5):
    return fd_jacobian(lambda y: np.array([f(y)]), x, eps)[0].reshape(x.shape, order="F")


def data():
    A = RNG.standard_normal((n, n))
    return dict(x=RNG.standard_normal(n), A=A, S=A @ A.T / n + np.eye(n), W=RNG.standard_normal((m, n)),
                b=RNG.standard_normal(m), y=RNG.choice([-1.0, 1.0], size=k), X=RNG.standard_normal((k, n)),
                w=RNG.standard_normal(n), a=RNG.standard_normal(k), c=np.eye(m)[1], B=RNG.standard_normal((n, m)),
                W1=RNG.standard_normal((m, n)), W2=RNG.standard_normal((k, m)), M=RNG.standard_normal((n, m)))


# expr, variable, vars, independent f(d) (scalar), must the matrix form be found?
HESSIANS = [
    ("logsumexp(x)", "x", {}, lambda d: np.log(np.exp(d["x"]).sum()), True),
    ("x^T A x", "x", {}, lambda d: d["x"] @ d["A"] @ d["x"], True),
    ("1/2 x^T S x - b'W x", "x", {"S": "spd"}, lambda d: 0.5 * d["x"] @ d["S"] @ d["x"] - d["b"] @ d["W"] @ d["x"], True),
    ("sum(log(1 + exp(-y .* (X w))))", "w", {}, lambda d: np.sum(np.log1p(np.exp(-d["y"] * (d["X"] @ d["w"])))), True),
    ("a^T exp(X w)", "w", {}, lambda d: d["a"] @ np.exp(d["X"] @ d["w"]), True),
    ("‖x‖", "x", {}, lambda d: np.linalg.norm(d["x"]), True),
    ("sum(σ(W x))", "x", {}, lambda d: _sig(d["W"] @ d["x"]).sum(), True),
    ("sum(tanh(W x + b).^2)", "x", {}, lambda d: np.sum(np.tanh(d["W"] @ d["x"] + d["b"]) ** 2), True),
    ("-c^T log softmax(W x)", "x", {"c": "onehot"}, lambda d: -d["c"] @ np.log(_softmax(d["W"] @ d["x"])), True),
    ("tr(M^T A M)", "M", {}, lambda d: np.trace(d["M"].T @ d["A"] @ d["M"]), True),
    ("‖X M - Y‖_F^2", "M", {}, lambda d: np.sum((d["X"] @ d["M"] - d["Y"]) ** 2), True),
    ("logdet(S)", "S", {"S": "matrix"}, lambda d: np.linalg.slogdet(d["S"])[1], False),
    ("sum(σ(X M))", "M", {}, lambda d: _sig(d["X"] @ d["M"]).sum(), False),
]


@pytest.mark.parametrize("expr,var,vars,f,matrix_form", HESSIANS, ids=[h[0] for h in HESSIANS])
def test_hessian_matches_finite_differences(expr, var, vars, f, matrix_form):
    d = data()
    d["Y"] = RNG.standard_normal((k, m))
    h = Higher(expr, var, vars, "hessian")
    ns = compile_module(h.numpy_source())
    used = {name: d[name] for name in h.problem.variables}
    H = ns["hessian"](**used)
    assert ns["value"](**used) == pytest.approx(f(d))

    def grad_at(x):
        return fd_gradient(lambda y: f({**d, var: y}), x)
    ref = fd_jacobian(grad_at, d[var], eps=1e-4)
    np.testing.assert_allclose(H, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(H, H.T, atol=1e-10)
    text = "\n".join(h.lines())
    if matrix_form:
        assert "∂²L/∂" in text  # a closed form, not only the second differential
    else:
        assert text.startswith("d²L")


JACOBIANS = [
    ("softmax(W x)", lambda d, x: _softmax(d["W"] @ x)),
    ("σ(W x + b)", lambda d, x: _sig(d["W"] @ x + d["b"])),
    ("tanh(W2 tanh(W1 x))", lambda d, x: np.tanh(d["W2"] @ np.tanh(d["W1"] @ x))),
    ("A x ⊙ x", lambda d, x: (d["A"] @ x) * x),
    ("x / ‖x‖", lambda d, x: x / np.linalg.norm(x)),
    ("x^T A x", lambda d, x: np.array([x @ d["A"] @ x])),
]


@pytest.mark.parametrize("expr,f", JACOBIANS, ids=[j[0] for j in JACOBIANS])
def test_jacobian_matches_finite_differences(expr, f):
    d = data()
    h = Higher(expr, "x", {}, "jacobian")
    ns = compile_module(h.numpy_source())
    used = {name: d[name] for name in h.problem.variables}
    J = ns["jacobian"](**used)
    ref = fd_jacobian(lambda x: f(d, x), d["x"])
    np.testing.assert_allclose(J, ref, rtol=1e-6, atol=1e-8)
    assert h.matrix is not None, "a closed form is expected for these"


def test_textbook_forms():
    assert Higher("x^T A x", "x", {}, "hessian").lines() == ["∂²L/∂x² = A + Aᵀ"]
    lines = Higher("tr(M^T A M)", "M", {}, "hessian").lines()
    assert lines[-1] == "∂²L/∂vec(M)² = I ⊗ (A + Aᵀ)"
    assert Higher("A x", "x", {}, "jacobian").lines() == ["∂L/∂x = A"]


def test_errors_are_clean():
    with pytest.raises(matdiff.MatdiffError):
        Higher("W x", "x", {}, "hessian")
    with pytest.raises(matdiff.MatdiffError):
        Higher("X M", "M", {}, "jacobian")


def test_cli_hessian_and_jacobian():
    r = CliRunner().invoke(cli, ["hessian", "logsumexp(x)", "--wrt", "x"])
    assert r.exit_code == 0 and r.output.startswith("∂²L/∂x² = ")
    r = CliRunner().invoke(cli, ["jacobian", "σ(W x + b)", "--wrt", "x", "--format", "numpy"])
    assert r.exit_code == 0
    ns = compile_module(r.output)
    d = data()
    J = ns["jacobian"](W=d["W"], x=d["x"], b=d["b"])
    np.testing.assert_allclose(J, fd_jacobian(lambda x: _sig(d["W"] @ x + d["b"]), d["x"]), rtol=1e-6)
    r = CliRunner().invoke(cli, ["hessian", "tr(M^T A M)", "--wrt", "M", "--format", "latex"])
    assert r.exit_code == 0 and "\\otimes" in r.output


def _commutation(m, n):
    """K with K vec(A) = vec(Aᵀ) for A m×n (column stacking)."""
    K = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            K[i * n + j, j * m + i] = 1.0
    return K


@pytest.mark.parametrize("expr,var,vars", [
    ("tr(M^T A M)", "M", {}),
    ("‖X M - Y‖_F^2", "M", {}),
    ("logdet(S)", "S", {"S": "matrix"}),
    ("tr(S S)", "S", {"S": "matrix"}),
    ("tr(S A S^T B^T)", "S", {"S": "matrix", "B": "matrix"}),
])
def test_kronecker_form_is_the_hessian(expr, var, vars):
    from matdiff.evaluate import evaluate
    d = data()
    d["Y"] = RNG.standard_normal((k, m))
    d["B"] = RNG.standard_normal((n, n))
    h = Higher(expr, var, vars, "hessian")
    assert h.kron, "a Kronecker form is expected"
    used = {name: d[name] for name in h.problem.variables}
    context = list(h.problem.variables.values())
    H = compile_module(h.numpy_source())["hessian"](**used)
    r, c = np.shape(d[var])
    total = np.zeros((r * c, r * c))
    for coef, A, B, commuted in h.kron:
        a, b = (np.atleast_2d(evaluate(x, used, context)) for x in (A, B))
        term = float(evaluate(coef, used, context)) * np.kron(b.T, a)
        total += term @ _commutation(r, c) if commuted else term
    np.testing.assert_allclose(total, H, rtol=1e-8, atol=1e-8)
