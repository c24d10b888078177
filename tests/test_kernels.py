"""Generated NumPy kernels: exact reverse-mode work, numerical stability,
bounded memory, safe names, and `matdiff check`."""

import tracemalloc

import numpy as np
import pytest

import matdiff
from matdiff.api import Result
from matdiff.check import check_gradient
from numeric import numeric_gradient

RNG = np.random.default_rng(7)


def mlp_expr(m):
    inner = "X W1"
    for i in range(2, m + 1):
        inner = f"σ({inner}) W{i}"
    return f"-tr(Y^T log softmax({inner}))"


def mlp_reference(X, Y, Ws):
    """Independent forward pass: sigmoid hidden layers, softmax cross-entropy."""
    H = X
    for W in Ws[:-1]:
        H = 1.0 / (1.0 + np.exp(-(H @ W)))
    Z = H @ Ws[-1]
    Z = Z - Z.max(axis=1, keepdims=True)
    logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
    return -np.sum(Y * logp)


def _kernel_body(source):
    return source.split("def value_and_gradient")[1].split("\ndef ")[0]


@pytest.mark.parametrize("m", range(1, 9))
def test_mlp_kernel_does_exactly_the_reverse_mode_matmuls(m):
    wrt = [f"W{i}" for i in range(1, m + 1)]
    src = Result(mlp_expr(m), wrt, {"Y": "onehot"}).numpy_source()
    body = _kernel_body(src)
    assert body.count("@") == 3 * m - 1
    for waste in ("_np.eye(", "_np.diag(", "_np.outer(", "_np.ones(", "_np.trace("):
        assert waste not in body


@pytest.mark.parametrize("m", [1, 2, 3])
def test_mlp_kernel_is_numerically_right(m):
    dims = [7, 6, 5, 4][: m] + [3]  # D, hidden sizes..., C all different
    N = 9
    X = RNG.standard_normal((N, dims[0]))
    Y = np.eye(dims[-1])[RNG.integers(dims[-1], size=N)]
    Ws = [RNG.standard_normal((dims[i], dims[i + 1])) for i in range(m)]
    wrt = [f"W{i}" for i in range(1, m + 1)]
    kernel = matdiff.kernel(mlp_expr(m), wrt=wrt, vars={"Y": "onehot"})
    arrays = {"X": X, "Y": Y, **{f"W{i + 1}": W for i, W in enumerate(Ws)}}
    value, grads = kernel(**arrays)
    if m == 1:
        grads = (grads,)
    assert value == pytest.approx(mlp_reference(X, Y, Ws), rel=1e-10)

    def f(**a):
        return mlp_reference(a["X"], a["Y"], [a[w] for w in wrt])
    for name, g in zip(wrt, grads):
        fd = numeric_gradient(f, arrays, name)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7)


def _stable_log_softmax(Z):
    Z = Z - Z.max(axis=-1, keepdims=True)
    return Z - np.log(np.exp(Z).sum(axis=-1, keepdims=True))


def test_softmax_cross_entropy_with_huge_logits():
    N, C = 6, 4
    Z = RNG.choice([-1e3, 1e3], size=(N, C)) + RNG.standard_normal((N, C))
    Y = np.eye(C)[RNG.integers(C, size=N)]
    kernel = matdiff.kernel("-tr(Y^T log softmax(Z))", wrt=["Z"], vars={"Y": "onehot"})
    value, g = kernel(Z=Z, Y=Y)
    logp = _stable_log_softmax(Z)
    assert np.isfinite(value) and np.all(np.isfinite(g))
    assert value == pytest.approx(-np.sum(Y * logp), rel=1e-12)
    np.testing.assert_allclose(g, np.exp(logp) - Y, rtol=1e-12, atol=1e-300)


def test_logsumexp_softplus_sigmoid_with_huge_inputs():
    x = np.array([-1e3, -30.0, -1.0, 0.0, 2.0, 40.0, 1e3])
    ref_softplus = np.logaddexp(0.0, x)
    ref_sigmoid = np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))
    v, g = matdiff.kernel("sum(log(1 + exp(x)))", wrt=["x"])(x=x)
    assert v == pytest.approx(ref_softplus.sum(), rel=1e-12)
    np.testing.assert_allclose(g, ref_sigmoid, rtol=1e-12)
    v, g = matdiff.kernel("sum(σ(x))", wrt=["x"])(x=x)
    assert v == pytest.approx(ref_sigmoid.sum(), rel=1e-12)
    np.testing.assert_allclose(g, ref_sigmoid * (1 - ref_sigmoid), rtol=1e-9, atol=1e-300)
    v, g = matdiff.kernel("logsumexp(x)", wrt=["x"])(x=x)
    m = x.max()
    assert v == pytest.approx(m + np.log(np.exp(x - m).sum()), rel=1e-12)
    np.testing.assert_allclose(g, np.exp(x - m) / np.exp(x - m).sum(), rtol=1e-12, atol=1e-300)
    Z = np.stack([x, -x, x[::-1]])
    v, g = matdiff.kernel("sum(logsumexp(Z))", wrt=["Z"])(Z=Z)
    assert np.isfinite(v) and np.all(np.isfinite(g))
    np.testing.assert_allclose(g, np.exp(_stable_log_softmax(Z)), rtol=1e-12, atol=1e-300)


def test_no_intermediate_larger_than_inputs_activations_and_gradients():
    # N is large and the other sizes small: an N×N array would dominate the peak.
    N, D, C = 3000, 3, 4
    X = RNG.standard_normal((N, D))
    W = RNG.standard_normal((D, C))
    b = RNG.standard_normal(C)
    Y = RNG.uniform(size=(N, C))  # not onehot: the diag(Y𝟙) term is kept
    kernel = matdiff.kernel("-tr(Y^T log softmax(XW+b))", wrt=["W", "b"])
    kernel(X=X, W=W, b=b, Y=Y)
    tracemalloc.start()
    kernel(X=X, W=W, b=b, Y=Y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    largest = N * C * 8
    assert peak < 12 * largest < N * N * 8


INVERSE_CASES = {
    "a^T X^-1 b": lambda a, b, X, A: a @ np.linalg.inv(X) @ b,
    "tr(X^-1 A)": lambda a, b, X, A: np.trace(np.linalg.inv(X) @ A),
    "sum(A X^-1)": lambda a, b, X, A: np.sum(A @ np.linalg.inv(X)),
}


@pytest.mark.parametrize("src", list(INVERSE_CASES))
def test_inverse_used_once_becomes_a_solve(src):
    # value() is the forward half of value_and_gradient: with no gradient asked
    # the inverse is used once, and solved for instead of formed.
    r = Result(src, [], {})
    value_body = r.numpy_source().split("def value(")[1].split("\ndef ")[0]
    assert "solve" in value_body and "inv(" not in value_body
    n = 4
    A = RNG.standard_normal((n, n))
    data = dict(a=RNG.standard_normal(n), b=RNG.standard_normal(n), X=A @ A.T + n * np.eye(n), A=A)
    used = {k: v for k, v in data.items() if k in r.problem.variables}
    assert r.numpy_namespace()["value"](**used) == pytest.approx(INVERSE_CASES[src](**data))


SAFE_NAME_EXPR = "lambda tr(np^T value) + def^T def + tr(sum^T np)"
SAFE_NAME_VARS = {"np": "matrix", "value": "matrix", "def": "vector", "sum": "matrix",
                  "lambda": "scalar"}


def test_unsafe_variable_names_produce_working_code():
    wrt = ["lambda", "np", "def", "sum", "value"]
    r = Result(SAFE_NAME_EXPR, wrt, SAFE_NAME_VARS)
    src = r.numpy_source()
    assert "lambda_" in src and "def_" in src
    ns = r.numpy_namespace()
    A, B, S = (RNG.standard_normal((4, 3)) for _ in range(3))
    d = RNG.standard_normal(5)
    args = {"lambda_": 0.7, "np": A, "value": B, "def_": d, "sum": S}

    def f(**a):
        return a["lambda_"] * np.trace(a["np"].T @ a["value"]) + a["def_"] @ a["def_"] + np.sum(a["sum"] * a["np"])
    value, grads = ns["value_and_gradient"](**args)
    assert value == pytest.approx(f(**args))
    for key, g in zip(["lambda_", "np", "def_", "sum", "value"], grads):
        np.testing.assert_allclose(g, numeric_gradient(f, args, key), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("src,wrt,vars", [
    ("logdet(X) - tr(A X)", ["X"], {}),
    ("sum(log(x)) + sum(sqrt(x))", ["x"], {}),
    ("a^T inv(S) a", ["S", "a"], {"S": "spd"}),
    ("-tr(Y^T log softmax(XW+b))", ["W", "b"], {"Y": "onehot"}),
    ("x^T A x", ["A"], {"A": "symmetric"}),
    ("λ sum(X .^ 2) + tr(X B)", ["λ", "X"], {}),
])
def test_check_passes_on_right_gradients(src, wrt, vars):
    ok, lines = check_gradient(src, wrt, vars)
    assert ok, lines
    assert len(lines) == len(wrt)


def test_check_catches_a_wrong_rule(monkeypatch):
    from matdiff import ir
    from matdiff import templates
    real = templates.derivative

    def wrong(fname, x, *args):
        d = real(fname, x, *args)
        return ir.mul(ir.num(2), d) if fname == "exp" else d
    monkeypatch.setattr(templates, "derivative", wrong)
    ok, lines = check_gradient("a^T exp(X b)", ["X"], {})
    assert not ok and "MISMATCH" in lines[0]


def test_user_text_never_becomes_code():
    src = 'x\'x # """; import os; INJECTED = 1\r\nINJECTED2 = 3 # \'\'\' \\'
    r = Result(src, ["x"], {})
    ns = r.numpy_namespace()
    assert ns["_EXPRESSION"] == src.strip()
    assert "os" not in ns and "INJECTED" not in ns
    assert ns["value"](x=np.ones(3)) == 3.0  # the program's last statement, INJECTED2 = 3
