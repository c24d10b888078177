"""The generated module computes what the formula says (issue 18).

Each case is a program that an emitter pasting code as strings got wrong,
with the same function written by hand in NumPy. The module's `value`, the
value from `value_and_gradient` and each gradient are compared with the hand
version and its central differences: nothing here compares the module with
itself. Dimensions are all different.
"""

import ast

import numpy as np
import pytest

from matdiff.api import Result
from matdiff.numpy_emit import compile_module

R = np.random.default_rng(18)
n, m, k, p = 3, 4, 5, 6


def _spd(d):
    a = R.standard_normal((d, d))
    return a @ a.T / d + np.eye(d)


def _onehot_vec(d):
    v = np.zeros(d)
    v[R.integers(d)] = 1.0
    return v


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _logsumexp(z):
    return z.max() + np.log(np.exp(z - z.max()).sum())


# (program, wrt, declarations, inputs, hand-written function)
CASES = [
    ("ρ = 1 + gamma; -ρ", ["gamma"], {"gamma": "scalar"},
     dict(gamma=0.3), lambda gamma: -(1 + gamma)),
    ("κ = mu norm(Sigma); L = sum(x0) / κ", ["mu", "Sigma", "x0"], {},
     dict(mu=0.7, Sigma=R.standard_normal((n, m)), x0=R.standard_normal(k)),
     lambda mu, Sigma, x0: x0.sum() / (mu * np.linalg.norm(Sigma))),
    ("ρ = x^T x + 0.5; f = z^T (ρ b2)", ["x", "b2"], {"z": "onehot"},
     dict(x=R.standard_normal(n), z=_onehot_vec(m), b2=R.standard_normal(m)),
     lambda x, z, b2: z @ ((x @ x + 0.5) * b2)),
    ("Z1 = W + W2; norm(Z1 z)", ["W", "W2"], {},
     dict(W=R.standard_normal((n, m)), W2=R.standard_normal((n, m)), z=R.standard_normal(m)),
     lambda W, W2, z: np.linalg.norm((W + W2) @ z)),
    ("z1 = y / 1.5; L = (Omega z1.^3)^T y", ["Omega", "y"], {},
     dict(y=R.standard_normal(n), Omega=R.standard_normal((n, n))),
     lambda y, Omega: (Omega @ (y / 1.5) ** 3) @ y),
    ("ρ = gamma + pi; logsumexp(ρ (B2 v))", ["gamma", "v"], {"gamma": "scalar"},
     dict(gamma=0.2, B2=R.standard_normal((n, m)), v=R.standard_normal(m)),
     lambda gamma, B2, v: _logsumexp((gamma + np.pi) * (B2 @ v))),
    ("ρ = β + 1e-3; L = (X_train / ρ X b)^T (W2 s)", ["W2", "β", "b"], {"s": "onehot"},
     dict(β=0.4, X_train=R.standard_normal((n, m)), X=R.standard_normal((m, k)),
          b=R.standard_normal(k), W2=R.standard_normal((n, p)), s=_onehot_vec(p)),
     lambda β, X_train, X, b, W2, s: (X_train @ X @ b / (β + 1e-3)) @ (W2 @ s)),
    ("Z1 = 0.1 + A1; h^T (Z1 s)", ["A1", "h"], {},
     dict(A1=R.standard_normal((n, m)), h=R.standard_normal(n), s=R.standard_normal(m)),
     lambda A1, h, s: h @ ((0.1 + A1) @ s)),
    ("H1 = Omega / epsilon; J = det((H1 / ε)^T + I)", ["Omega", "epsilon"], {},
     dict(Omega=_spd(n), epsilon=1.3, ε=0.9),
     lambda Omega, epsilon, ε: np.linalg.det((Omega / epsilon / ε).T + np.eye(n))),
    ("z1 = s .* h; f = q^T (0.25 + Y z1)", ["h", "Y"], {},
     dict(s=R.standard_normal(m), h=R.standard_normal(m), q=R.standard_normal(n),
          Y=R.standard_normal((n, m))),
     lambda s, h, q, Y: q @ (0.25 + Y @ (s * h))),
    ("sum(G ./ x) / 2", ["G", "x"], {},
     dict(G=R.standard_normal((n, m)), x=R.uniform(0.5, 1.5, m)),
     lambda G, x: np.sum(G / x) / 2),
    ("c^T softmax(c - c)", ["c"], {},
     dict(c=R.standard_normal(n)), lambda c: c @ _softmax(c - c)),
    ("-(a - b)^T x + (a + b)^T (x .^ 2) / (1 + a^T b)", ["a", "b", "x"], {},
     dict(a=R.standard_normal(n), b=R.standard_normal(n), x=R.standard_normal(n)),
     lambda a, b, x: -(a - b) @ x + (a + b) @ (x ** 2) / (1 + a @ b)),
]


def _central(f, arrays, name, eps=1e-6):
    x = arrays[name]
    if np.isscalar(x):
        return (f(**{**arrays, name: x + eps}) - f(**{**arrays, name: x - eps})) / (2 * eps)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (f(**{**arrays, name: xp}) - f(**{**arrays, name: xm})) / (2 * eps)
    return g


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_module_computes_the_formula(case):
    src, wrt, decls, arrays, hand = case
    r = Result(src, wrt, decls)
    ns = r.numpy_namespace()
    want = hand(**arrays)
    assert ns["value"](**arrays) == pytest.approx(want, rel=1e-10, abs=1e-12)
    value, grads = ns["value_and_gradient"](**arrays)
    assert value == pytest.approx(want, rel=1e-10, abs=1e-12)
    for name, g in zip(wrt, grads if len(wrt) > 1 else (grads,)):
        fd = _central(hand, arrays, name)
        assert np.shape(g) == np.shape(fd), (name, np.shape(g))
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_module_source_is_its_own_tree(case):
    """ast.unparse is faithful: the printed module parses back to the same tree."""
    src, wrt, decls, _, _ = case
    text = Result(src, wrt, decls).numpy_source()
    tree = ast.parse(text)
    assert ast.dump(ast.parse(ast.unparse(tree))) == ast.dump(tree)


def test_value_is_the_forward_half_of_the_kernel():
    src = "Z1 = X W1 + b1; H1 = σ(Z1); L = sum(H1 W2)"
    text = Result(src, ["W1", "W2"], {}).numpy_source()
    funcs = {f.name: f for f in ast.parse(text).body if isinstance(f, ast.FunctionDef)}
    value_body = [ast.dump(s) for s in funcs["value"].body[:-1]]
    kernel_body = [ast.dump(s) for s in funcs["value_and_gradient"].body[1:]]
    assert value_body == kernel_body[:len(value_body)]


@pytest.mark.parametrize("depth", [1000, 5000])
def test_deep_nesting_compiles_and_runs(depth):
    src = "sum(" + "tanh(" * depth + "x" + ")" * depth + ")"
    r = Result(src, ["x"], {})
    ns = compile_module(r.numpy_source())
    x = R.standard_normal(n)
    y = x.copy()
    g = np.ones(n)
    for _ in range(depth):
        y = np.tanh(y)
        g = g * (1 - y ** 2)
    value, grad = ns["value_and_gradient"](x=x)
    assert value == pytest.approx(y.sum(), rel=1e-10)
    np.testing.assert_allclose(grad, g, rtol=1e-8, atol=1e-300)
    # The printed forms name the shared parts: linear in depth, and they read back.
    grad_text = r.gradient("x")
    assert len(grad_text.text) < 100 * depth and len(grad_text.latex) < 300 * depth
    from numeric import eval_text
    program = "; ".join(f"{k} = {v}" for k, v in grad_text.where) + "; " + grad_text.body
    got, _ = eval_text(program, {}, {"x": x}, like=x)
    np.testing.assert_allclose(got, g, rtol=1e-8, atol=1e-300)


def test_folded_zero_keeps_its_shape_in_print():
    from numeric import eval_text
    c = R.standard_normal(n)
    r = Result("c^T softmax(c - c)", ["c"], {})
    text = r.gradient("c").text
    got, _ = eval_text(text, {}, {"c": c}, like=c)
    hand = _central(lambda c: c @ _softmax(c - c), {"c": c}, "c")
    assert np.shape(got) == (n,)
    np.testing.assert_allclose(got, hand, rtol=1e-6, atol=1e-8)


def test_symmetry_is_not_used_before_differentiating_an_intermediate():
    # Z1 = W_out with W_out symmetric: Z1ᵀ = Z1 in value, but ∂/∂Z1 treats Z1 as
    # an independent input, so the transpose must stay.
    S, W = R.standard_normal((n, n)), _spd(n)
    r = Result("Z1 = W_out; J = det(Z1^T + S)", ["Z1"], {"W_out": "symmetric"})
    g = r.numpy_namespace()["gradient"](W_out=W, S=S)
    hand = _central(lambda Z1: np.linalg.det(Z1.T + S), {"Z1": W}, "Z1")
    np.testing.assert_allclose(g, hand, rtol=1e-6, atol=1e-8)
    from numeric import eval_text
    text = r.gradient("Z1").text
    got, _ = eval_text(f"Z1 = W_out; J = det(Z1^T + S); {text}", {"W_out": "symmetric"}, {"W_out": W, "S": S},
                       like=W)
    np.testing.assert_allclose(got, hand, rtol=1e-6, atol=1e-8)


def test_attention_gradient_in_textbook_form_and_right():
    """softmax's pullback prints as P ⊙ (G − (G ⊙ P)𝟙𝟙ᵀ), not through diag."""
    N_, M_, D_, C_ = 3, 4, 5, 6
    A, Q = R.standard_normal((N_, C_)), R.standard_normal((N_, D_))
    K, V = R.standard_normal((M_, D_)), R.standard_normal((M_, C_))
    d = 2.5

    def hand(Q, K, V, A, d):
        S = Q @ K.T / np.sqrt(d)
        P = np.exp(S - S.max(1, keepdims=True))
        P /= P.sum(1, keepdims=True)
        return np.sum(A * (P @ V))

    r = Result("tr(A^T softmax(Q K^T / sqrt(d)) V)", ["Q", "K", "V"], {"d": "scalar"})
    text = r.gradient("Q").text
    assert "diag" not in text and "⊙ (" in text
    arrays = dict(Q=Q, K=K, V=V, A=A, d=d)
    grads = r.numpy_namespace()["gradient"](**arrays)
    for name, g in zip(["Q", "K", "V"], grads):
        np.testing.assert_allclose(g, _central(hand, arrays, name), rtol=1e-6, atol=1e-8)
