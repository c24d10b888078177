"""A + diag(v) and A + sI are emitted as an update of A's diagonal
(numpy_code.add_to_diagonal), in every backend: no n×n diag(v) or identity
is formed. The truth is the reference interpreter (matdiff/reference.py,
which shares nothing with the emitters) run under jax.numpy and
differentiated by jax.grad / jax.hessian, at random points with every
dimension a different size; every kernel must also leave its inputs as they
were (the update is in place on an array of the kernel's own)."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
import jax.numpy as jnp  # noqa: E402

from matdiff import reference  # noqa: E402
from matdiff.api import Result  # noqa: E402
from matdiff.higher import Higher  # noqa: E402
from matdiff.numpy_emit import compile_module  # noqa: E402

import backend_cases as cases  # noqa: E402

jax.config.update("jax_enable_x64", True)
reference._SPECIAL[jnp.__name__] = jax.scipy.special

# expression, variable, kind (grad / hessian), declarations
CASES = [
    ("x^T A x + sum(exp(x))", "x", "hessian", {}),
    ("x^T A x - sum(exp(x))", "x", "hessian", {}),
    ("x^T A x/2 + λ x^T x", "x", "hessian", {}),
    ("sum(log(1 + exp(-y .* (X w)))) + λ/2 ‖w‖^2", "w", "hessian", {}),
    ("‖X‖_F^2/2 + tr(X)", "X", "grad", {}),                  # X + I: X is the caller's
    ("tr(X^T A X) + a^T diag(X)", "X", "grad", {}),
    ("sum(exp(X)) + 3 tr(X) + λ tr(X)", "X", "grad", {}),
    ("tr(X^T A X) + sum(exp(X))", "X", "hessian", {}),       # vec form: a Kronecker sum + diag
    ("S = X + X^T; L = tr(S S) + α tr(S) + sum(log(1 + exp(S)))", "X", "grad", {}),
]

BACKENDS = ["numpy", "jax", "torch"]


def _truth(src, vars, arrays, wrt, kind):
    def f(x):
        return reference.evaluate(src, {**arrays, wrt: x}, vars=vars, xp=jnp)
    x = arrays[wrt]
    if kind == "grad":
        return np.asarray(jax.grad(f)(x))
    h = np.asarray(jax.hessian(f)(x))
    if x.ndim == 2:  # vec order (column stacking), as matdiff's Hessians
        h = np.transpose(h, (1, 0, 3, 2)).reshape(x.size, x.size)
    return h


def _module(expr, wrt, kind, vars, backend):
    if kind == "grad":
        src = Result(expr, [wrt], vars).source(backend)
        return src, "gradient"
    return Higher(expr, [wrt], vars, kind).source(backend), kind


def _to(backend, a):
    if np.ndim(a) == 0:
        return float(a)
    if backend == "jax":
        return jnp.asarray(a)
    if backend == "torch":
        return torch.tensor(a, dtype=torch.float64)
    return a.copy()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_diagonal_update_against_jax_of_the_reference(case, backend):
    expr, wrt, kind, vars = case
    data, _ = cases.data(expr, vars, seed=11)
    want = _truth(expr, vars, {k: jnp.asarray(v) for k, v in data.items()}, wrt, kind)
    src, fn = _module(expr, wrt, kind, vars, backend)
    body = src.split(f"def {fn}(")[1].split("\ndef ")[0]
    if "_by_directions(" not in src:  # a Hessian with no matrix form: its directions
        assert "_add_diagonal(" in src, body  # the rule applied (what the test is about)
    arrays = {k: _to(backend, v) for k, v in data.items()}
    kept = {k: np.array(np.asarray(v)) for k, v in arrays.items()}
    got = compile_module(src)[fn](**arrays)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-8, atol=1e-10)
    for k, v in arrays.items():  # the kernel's in-place update touched no input
        np.testing.assert_array_equal(np.asarray(v), kept[k], err_msg=k)


def test_no_identity_or_diagonal_matrix_in_the_kernel():
    # the d×d diagonal / identity of these results exists only as an update
    for expr, wrt, kind, vars in CASES[:4]:
        src, fn = _module(expr, wrt, kind, vars, "numpy")
        body = src.split(f"def {fn}(")[1]
        assert "_np.diag(" not in body and "_np.eye(" not in body, (expr, body)


def test_integer_inputs_in_numpy():
    # an integer A (A + Aᵀ an integer array): the diagonal update promotes it
    src, fn = _module("x^T A x + sum(exp(x))", "x", "hessian", {}, "numpy")
    A = np.arange(12).reshape(3, 4)[:, :3] % 5
    x = np.array([0.5, -1.0, 2.0])
    got = compile_module(src)[fn](x=x, A=A)
    np.testing.assert_allclose(got, A + A.T + np.diag(np.exp(x)), rtol=1e-14)
