"""Language rules whose meaning is checked by numbers: dimension names used as
scalars, the sample count `/N`, programs, element-wise vs matrix powers."""

import numpy as np
import pytest

import matdiff
from matdiff.api import Result
from numeric import numeric_gradient

RNG = np.random.default_rng(5)


def run(expr, wrt, vars, arrays):
    r = Result(expr, wrt, vars)
    ns = r.numpy_namespace()
    return ns["value"](**arrays), ns["value_and_gradient"](**arrays)[1]


def test_undeclared_N_divisor_counts_the_samples():
    prog = """Z1 = X W1 + b1; H1 = σ(Z1); Z2 = H1 W2 + b2
L = -tr(Y^T log softmax(Z2))/N + λ(‖W1‖_F^2 + ‖W2‖_F^2)"""
    N, D, H, C = 7, 5, 4, 3
    a = dict(X=RNG.standard_normal((N, D)), Y=np.eye(C)[RNG.integers(C, size=N)],
             W1=RNG.standard_normal((D, H)), b1=RNG.standard_normal(H),
             W2=RNG.standard_normal((H, C)), b2=RNG.standard_normal(C), λ=0.3)

    def f(X, Y, W1, b1, W2, b2, λ):
        Z2 = 1 / (1 + np.exp(-(X @ W1 + b1))) @ W2 + b2
        logp = Z2 - Z2.max(1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
        return -np.sum(Y * logp) / X.shape[0] + λ * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    value, (gW1, gb2) = run(prog, ["W1", "b2"], {"Y": "onehot"}, a)
    assert value == pytest.approx(f(**a))
    np.testing.assert_allclose(gW1, numeric_gradient(f, a, "W1"), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gb2, numeric_gradient(f, a, "b2"), rtol=1e-6, atol=1e-8)
    g = matdiff.grad(prog, wrt="Z2", vars={"Y": "onehot"})
    assert g.text == "(softmax(Z2) − Y)/N"


def test_matrix_divisor_stays_elementwise():
    A, B = RNG.standard_normal((3, 4)), RNG.uniform(1, 2, (3, 4))
    value, gB = run("sum(A / B)", ["B"], None, {"A": A, "B": B})
    assert value == pytest.approx(np.sum(A / B))
    np.testing.assert_allclose(gB, -A / B ** 2)


def test_declared_dimension_as_scalar():
    X = RNG.standard_normal((6, 4))
    value, g = run("sum(X)/D", ["X"], {"X": "matrix(N,D)"}, {"X": X})
    assert value == pytest.approx(X.sum() / 4)
    np.testing.assert_allclose(g, np.full((6, 4), 1 / 4))


@pytest.mark.parametrize("expr,ref", [
    ("sum(X^2)", lambda X: np.sum(X @ X)),                   # square: matrix power
    ("sum(X.^2)", lambda X: np.sum(X * X)),
    ("sum(X^-1)", lambda X: np.sum(np.linalg.inv(X))),
    ("tr(X^3)", lambda X: np.trace(X @ X @ X)),
])
def test_powers(expr, ref):
    A = RNG.standard_normal((4, 4))
    X = A @ A.T + 4 * np.eye(4)
    value, g = run(expr, ["X"], None, {"X": X})
    assert value == pytest.approx(ref(X))
    np.testing.assert_allclose(g, numeric_gradient(lambda X: ref(X), {"X": X}, "X"), rtol=1e-6, atol=1e-8)


def test_non_square_power_is_elementwise_and_vector_inverse_is_reciprocal():
    X, x = RNG.standard_normal((3, 4)), RNG.uniform(1, 2, 5)
    value, g = run("sum(X^3)", ["X"], {"X": "matrix(3,4)"}, {"X": X})
    assert value == pytest.approx(np.sum(X ** 3))
    np.testing.assert_allclose(g, 3 * X ** 2)
    value, g = run("sum(x^-1)", ["x"], None, {"x": x})
    assert value == pytest.approx(np.sum(1 / x))
    np.testing.assert_allclose(g, -1 / x ** 2)


def test_pi_is_the_constant():
    x = RNG.standard_normal(4)
    r = Result("pi x^T x + π", ["x"], None)
    assert list(r.problem.variables) == ["x"]
    value, g = r.numpy_namespace()["value_and_gradient"](x=x)
    assert value == pytest.approx(np.pi * x @ x + np.pi)
    np.testing.assert_allclose(g, 2 * np.pi * x)
