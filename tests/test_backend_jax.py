"""--format jax: the generated kernels against jax.grad (float64, every
dimension different): of the mission example and the seeds' networks written
by hand in jax.numpy, and of the reference interpreter run under jax.numpy
for one program per rule-table entry. The custom_vjp function under jax.grad,
jit, float32, Hessians."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from matdiff import reference  # noqa: E402
from matdiff.api import Result  # noqa: E402
from matdiff.higher import Higher  # noqa: E402
from matdiff.numpy_emit import compile_module  # noqa: E402

import backend_cases as cases  # noqa: E402

jax.config.update("jax_enable_x64", True)
reference._SPECIAL[jnp.__name__] = jax.scipy.special  # erf for the reference under jax.numpy


def close(a, b, rtol=1e-9, atol=1e-11):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=rtol, atol=atol)


def module(src, wrt, vars):
    r = Result(src, wrt, vars)
    return r, compile_module(r.source("jax"))


def _sig(z):
    return 1 / (1 + jnp.exp(-z))


# The networks written directly in jax.numpy: f(**arrays) -> scalar.
def mission(X, W, b, Y):
    return -jnp.sum(Y * jax.nn.log_softmax(X @ W + b, axis=1))


def two_layer(act):
    def f(X, W1, b1, W2, b2, Y, λ):
        Z2 = act(X @ W1 + b1) @ W2 + b2
        return (-jnp.sum(Y * jax.nn.log_softmax(Z2, axis=1)) / X.shape[0]
                + λ * (jnp.sum(W1 ** 2) + jnp.sum(W2 ** 2)))
    return f


def k_layer(W1, x, b1, W2, b2, W3, b3, y):
    h1 = _sig(W1 @ x + b1)
    h2 = _sig(W2 @ h1 + b2)
    return -y @ jax.nn.log_softmax(W3 @ h2 + b3)


def tanh_mlp(W1, x, b1, W2, b2, t):
    z2 = jnp.tanh(W2 @ jnp.tanh(W1 @ x + b1) + b2)
    return 0.5 * jnp.sum((z2 - t) ** 2)


HAND = {"mission": mission, "two-layer σ": two_layer(_sig),
        "two-layer relu": two_layer(lambda z: jnp.maximum(z, 0.0)), "k-layer σ": k_layer,
        "tanh MLP": tanh_mlp}


def _value_and_grads(f, arrays, wrt):
    """f(**arrays) and jax.grad of it with respect to each name in wrt, in one
    jitted pass (eager JAX compiles every operation on its own: slow)."""
    def of(xs, rest):
        return f(**{**rest, **dict(zip(wrt, xs))})
    rest = {k: v for k, v in arrays.items() if k not in wrt}
    v, g = jax.jit(jax.value_and_grad(of))(tuple(arrays[w] for w in wrt), rest)
    return v, list(g)


def _grads(f, arrays, wrt):
    return _value_and_grads(f, arrays, wrt)[1]


@pytest.mark.parametrize("name", list(cases.NETWORKS))
def test_networks_against_jax_grad_of_the_hand_written_function(name):
    src, wrt, vars = cases.NETWORKS[name]
    a, _ = cases.data(src, vars, seed=1)
    arrays = {k: jnp.asarray(v) for k, v in a.items()}
    _, ns = module(src, wrt, vars)
    want_v, want_g = _value_and_grads(HAND[name], arrays, wrt)
    # jit (and, once, eagerly: each operation compiled on its own, slow)
    runs = [jax.jit(ns["value_and_gradient"])] + ([ns["value_and_gradient"]] if name == "mission" else [])
    for run in runs:
        v, g = run(**arrays)
        close(v, want_v)
        for got, want in zip(g, want_g):
            close(got, want)
    # custom_vjp: jax.grad through it equals jax.grad of the hand-written function
    f = ns["function"]
    names = list(arrays)
    pos = tuple(names.index(w) for w in wrt)
    got = jax.jit(jax.grad(lambda *xs: f(*xs), argnums=pos))(*arrays.values())
    for a1, a2 in zip(got, want_g):
        close(a1, a2)


RULES = cases.rule_programs()


def _reference_grads(src, vars, arrays, wrt):
    def f(**kw):
        return reference.evaluate(src, kw, vars=vars, xp=jnp)
    return _value_and_grads(f, arrays, wrt)


@pytest.mark.parametrize("case", RULES, ids=[c[0] for c in RULES])
def test_every_rule_against_jax_grad_of_the_reference(case):
    ident, src, wrt, vars = case
    assert src is not None, f"{ident}: no spelling reaches this op: add one to SPELLINGS"
    a, _ = cases.data(src, vars, seed=2)
    arrays = {k: jnp.asarray(v) for k, v in a.items()}
    _, ns = module(src, wrt, vars)
    want_v, want_g = _reference_grads(src, vars, arrays, wrt)
    v, g = jax.jit(ns["value_and_gradient"])(**arrays)
    g = (g,) if len(wrt) == 1 else g
    close(v, want_v)
    for name, got, want in zip(wrt, g, want_g):
        assert np.shape(got) == np.shape(want), name
        close(got, want, rtol=1e-8, atol=1e-10)
    # the custom_vjp function: jax.grad of a model around it
    f = ns["function"]
    names = list(arrays)

    def model(*xs):
        return jnp.tanh(f(*xs)) * 2.0
    pos = tuple(names.index(w) for w in wrt)
    got = jax.jit(jax.grad(model, argnums=pos))(*arrays.values())
    outer = 2.0 * (1.0 - jnp.tanh(want_v) ** 2)  # d(2 tanh(v))/dv: the chain rule by hand
    for a1, a2 in zip(got, want_g):
        close(a1, outer * a2, rtol=1e-8, atol=1e-10)


def test_custom_vjp_inputs_outside_wrt_get_jax_autodiff():
    # derived for W only: the gradients for X and b come from jax.vjp of value
    src, _, vars = cases.MISSION
    a, _ = cases.data(src, vars, seed=3)
    arrays = {k: jnp.asarray(v) for k, v in a.items()}
    _, ns = module(src, ["W"], vars)
    names = list(arrays)
    pos = tuple(names.index(w) for w in ("X", "W", "b"))
    got = jax.jit(jax.grad(ns["function"], argnums=pos))(*arrays.values())
    want = jax.jit(jax.grad(lambda *xs: mission(**dict(zip(names, xs))), argnums=pos))(
        *arrays.values())
    for a1, a2 in zip(got, want):
        close(a1, a2)
    # keyword arguments, and the value itself
    close(ns["function"](**arrays), mission(**arrays))


def test_custom_vjp_in_a_larger_model_under_jit():
    # a model whose loss is the mission function of its own layer: jax.grad of
    # the whole model, with and without the custom_vjp, agree
    src, wrt, vars = cases.MISSION
    _, ns = module(src, ["X", "W", "b"], vars)
    R = np.random.default_rng(4)
    N, D0, D, C = 7, 6, 4, 5
    U = jnp.asarray(R.standard_normal((N, D0)))
    V = jnp.asarray(R.standard_normal((D0, D)))
    W = jnp.asarray(R.standard_normal((D, C)))
    b = jnp.asarray(R.standard_normal(C))
    Y = jnp.asarray(np.eye(C)[R.integers(C, size=N)])

    def model(loss):
        def f(V, W, b):
            X = jnp.tanh(U @ V)
            return loss(X, W, b) ** 2
        return f
    with_kernel = jax.jit(jax.grad(model(lambda X, W, b: ns["function"](Y=Y, X=X, W=W, b=b)),
                                   argnums=(0, 1, 2)))(V, W, b)
    plain = jax.grad(model(lambda X, W, b: mission(X, W, b, Y)), argnums=(0, 1, 2))(V, W, b)
    for a1, a2 in zip(with_kernel, plain):
        close(a1, a2)


def test_float32_in_float32_out():
    src, wrt, vars = cases.TWO_LAYER
    a, _ = cases.data(src, vars, seed=5)
    _, ns = module(src, wrt, vars)
    a32 = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in a.items()}
    v, g = jax.jit(ns["value_and_gradient"])(**a32)
    assert v.dtype == jnp.float32 and all(x.dtype == jnp.float32 for x in g)
    v64, g64 = jax.jit(ns["value_and_gradient"])(**{k: jnp.asarray(x) for k, x in a.items()})
    close(v, v64, rtol=1e-4, atol=1e-5)
    for x, y in zip(g, g64):
        close(x, y, rtol=1e-3, atol=1e-4)


def test_constants_take_the_inputs_dtype():
    # a constant gradient (2𝟙, I) is an array of the inputs' dtype, not float64
    _, ns = module("sum(X) + tr(S) + 2 a^T x", ["X", "S", "x"], {"S": "matrix(n,n)"})
    R = np.random.default_rng(6)
    a32 = dict(X=jnp.ones((3, 4), jnp.float32), S=jnp.ones((5, 5), jnp.float32),
               a=jnp.asarray(R.standard_normal(6), jnp.float32),
               x=jnp.asarray(R.standard_normal(6), jnp.float32))
    v, g = jax.jit(ns["value_and_gradient"])(**a32)
    assert all(x.dtype == jnp.float32 for x in g)
    close(g[0], np.ones((3, 4)))
    close(g[1], np.eye(5))


HESSIANS = [
    ("sum(log(1 + exp(-y .* (X w))))", "w", "hessian",
     lambda y, X, w: jnp.sum(jnp.logaddexp(0.0, -y * (X @ w)))),
    ("x^T A x + sum(exp(x))", "x", "hessian", lambda x, A: x @ A @ x + jnp.sum(jnp.exp(x))),
    ("tr(X^T A X)", "X", "hessian", lambda X, A: jnp.trace(X.T @ A @ X)),
    ("tanh(W2 tanh(W1 x))", "x", "jacobian", lambda W2, W1, x: jnp.tanh(W2 @ jnp.tanh(W1 @ x))),
]


@pytest.mark.parametrize("case", HESSIANS, ids=[c[0] for c in HESSIANS])
def test_hessians_and_jacobians_against_jax(case):
    expr, wrt, kind, f = case
    h = Higher(expr, [wrt], {}, kind)
    src = h.source("jax")
    if "diag(exp" not in h.lines()[0]:  # a diagonal term of the result itself is d×d anyway
        assert "diag(" not in src.split(f"def {kind}(")[1]
    ns = compile_module(src)
    a, _ = cases.data(expr, {}, seed=7)
    arrays = {k: jnp.asarray(v) for k, v in a.items()}
    got = jax.jit(ns[kind])(**arrays)
    x = arrays[wrt]
    fx = lambda x: f(**{**arrays, wrt: x})  # noqa: E731
    want = jax.jit(jax.hessian(fx) if kind == "hessian" else jax.jacobian(fx))(x)
    if x.ndim == 2:  # vec order (column stacking) on both sides
        n = x.size
        want = jnp.transpose(want, (1, 0, 3, 2)).reshape(n, n)
    close(got, want, rtol=1e-8, atol=1e-10)


def test_generated_code_is_jit_compatible_and_imports_only_jax():
    r, _ = module(*cases.TWO_LAYER)
    src = r.source("jax")
    assert "import numpy" not in src and "_np." not in src
    assert "float64" not in src


def test_custom_vjp_runs_the_kernel_only_for_a_differentiated_wrt_input():
    src, wrt, vars = cases.MISSION
    a, _ = cases.data(src, vars, seed=8)
    arrays = {k: jnp.asarray(v) for k, v in a.items()}
    _, ns = module(src, wrt, vars)
    calls = []

    def counted(**kw):
        calls.append(1)  # at trace time
        return ns["value_and_gradient"](**kw)
    names = tuple(arrays)
    f = ns["_custom_vjp"](ns["value"], counted, names, tuple(names.index(w) for w in wrt))
    gX = jax.grad(f, argnums=names.index("X"))(*arrays.values())  # X is not in --wrt
    assert calls == []
    close(gX, jax.grad(lambda X: mission(**{**arrays, "X": X}))(arrays["X"]))
    jax.grad(f, argnums=names.index("W"))(*arrays.values())
    assert calls == [1]
