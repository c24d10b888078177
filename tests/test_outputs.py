"""The output formats: SymPy objects (checked numerically), LaTeX, JSON.

Every SymPy gradient is evaluated on explicit random matrices (all dimensions
different) and compared with matdiff's generated NumPy gradient and with central
differences of an independent NumPy implementation of the function.
"""

import json
import re

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import matdiff
from matdiff.cli import cli
from matdiff.engine import Problem
from matdiff.sympy_out import to_sympy

from numeric import numeric_gradient


def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _log_softmax(z):
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def _logsumexp(z):
    m = z.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))[..., 0]


# (expression, wrt, {name: shape}, {name: kind}, independent NumPy function).
# Shapes: () scalar, (n,) vector, (m, n) matrix; the sizes used in one case differ.
CASES = [
    ("tr(A X B)", ["X"], {"A": (2, 3), "X": (3, 4), "B": (4, 2)}, {},
     lambda A, X, B: np.trace(A @ X @ B)),
    ("a^T X b", ["X"], {"a": (3,), "X": (3, 4), "b": (4,)}, {},
     lambda a, X, b: a @ X @ b),
    ("x^T A x", ["x"], {"x": (3,), "A": (3, 3)}, {},
     lambda x, A: x @ A @ x),
    ("x^T S x", ["x"], {"x": (3,), "S": (3, 3)}, {"S": "symmetric"},
     lambda x, S: x @ S @ x),
    ("logdet(X)", ["X"], {"X": (3, 3)}, {},
     lambda X: np.linalg.slogdet(X)[1]),
    ("det(X)", ["X"], {"X": (3, 3)}, {},
     lambda X: np.linalg.det(X)),
    ("tr(X^-1 A)", ["X"], {"X": (3, 3), "A": (3, 3)}, {},
     lambda X, A: np.trace(np.linalg.inv(X) @ A)),
    ("a^T X^-1 b", ["X"], {"a": (3,), "X": (3, 3), "b": (3,)}, {},
     lambda a, X, b: a @ np.linalg.inv(X) @ b),
    ("a^T exp(X b)", ["X"], {"a": (3,), "X": (3, 4), "b": (4,)}, {},
     lambda a, X, b: a @ np.exp(X @ b)),
    ("tr((X .* X)^T A)", ["X"], {"X": (3, 4), "A": (3, 4)}, {},
     lambda X, A: np.trace((X * X).T @ A)),
    ("sum(σ(X W))", ["W"], {"X": (5, 3), "W": (3, 4)}, {},
     lambda X, W: _sigmoid(X @ W).sum()),
    ("-tr(Y^T log softmax(XW+b))", ["W", "b"],
     {"X": (5, 3), "W": (3, 4), "b": (4,), "Y": (5, 4)}, {"Y": "onehot"},
     lambda X, W, b, Y: -np.trace(Y.T @ _log_softmax(X @ W + b))),
    ("||X W - Y||_F^2", ["W"], {"X": (5, 3), "W": (3, 4), "Y": (5, 4)}, {},
     lambda X, W, Y: np.sum((X @ W - Y) ** 2)),
    ("sum(log(1 + exp(-y .* (X w))))", ["w"], {"X": (5, 3), "y": (5,), "w": (3,)}, {"y": "pm1"},
     lambda X, y, w: np.sum(np.log(1 + np.exp(-y * (X @ w))))),
    ("sum(logsumexp(X W))", ["W"], {"X": (5, 3), "W": (3, 4)}, {},
     lambda X, W: _logsumexp(X @ W).sum()),
    ("sum(log_softmax(X W))", ["W"], {"X": (5, 3), "W": (3, 4)}, {},
     lambda X, W: _log_softmax(X @ W).sum()),
    ("logsumexp(A x)", ["x"], {"A": (4, 3), "x": (3,)}, {},
     lambda A, x: _logsumexp(A @ x)),
    ("norm(X w - y)", ["w"], {"X": (5, 3), "w": (3,), "y": (5,)}, {},
     lambda X, w, y: np.linalg.norm(X @ w - y)),
    ("λ x^T x + sum(tanh(A x))", ["x", "λ"], {"λ": (), "x": (3,), "A": (4, 3)}, {},
     lambda λ, x, A: λ * x @ x + np.tanh(A @ x).sum()),
    ("sum(relu(X W) .^ 2)", ["W"], {"X": (5, 3), "W": (3, 4)}, {},
     lambda X, W: np.sum(np.maximum(X @ W, 0) ** 2)),
    ("sum(sqrt(X .* X + 1))", ["X"], {"X": (3, 4)}, {},
     lambda X: np.sqrt(X * X + 1).sum()),
    ("sum(sin(X) .* cos(X)) + sum(softplus(X) ./ (1 + abs(X)))", ["X"], {"X": (3, 4)}, {},
     lambda X: np.sum(np.sin(X) * np.cos(X)) + np.sum(_softplus(X) / (1 + np.abs(X)))),
    ("tr(X^2 B)", ["X"], {"X": (3, 3), "B": (3, 3)}, {},
     lambda X, B: np.trace(X @ X @ B)),
    ("sum(diag(x) A)", ["x"], {"x": (3,), "A": (3, 4)}, {},
     lambda x, A: np.sum(np.diag(x) @ A)),
    ("a^T diag(X) + sum(diag(X) .* diag(X))", ["X"], {"a": (3,), "X": (3, 3)}, {},
     lambda a, X: a @ np.diag(X) + np.sum(np.diag(X) ** 2)),
]

IDS = [c[0] for c in CASES]


def _declared(shapes, kinds):
    """Declarations with numeric dimensions for every variable."""
    out = {}
    for name, shape in shapes.items():
        kind = kinds.get(name, {0: "scalar", 1: "vector", 2: "matrix"}[len(shape)])
        if kind == "pm1":
            kind = "vector"
        if kind in ("symmetric", "spd"):
            shape = shape[:1]  # S:symmetric(n)
        out[name] = f"{kind}({','.join(map(str, shape))})" if shape else kind
    return out


def _symbolic(kinds):
    """Declarations of kinds only: the engine infers symbolic dimensions."""
    return {k: v for k, v in kinds.items() if v != "pm1"}


def _data(shapes, kinds, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        kind = kinds.get(name)
        if kind == "onehot":
            a = np.zeros(shape)
            a[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = 1.0
        elif kind == "pm1":
            a = rng.choice([-1.0, 1.0], size=shape)
        elif kind == "symmetric":
            a = rng.standard_normal(shape)
            a = (a + a.T) / 2
        elif shape == ():
            a = float(rng.standard_normal())
        else:
            a = rng.standard_normal(shape)
        out[name] = a
    # Square matrices that are inverted or log-det'ed: keep them well conditioned.
    for name, a in out.items():
        if isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[0] == a.shape[1] \
                and kinds.get(name) is None:
            out[name] = a + 3 * np.eye(a.shape[0])
    return out


def _bind(dims, name, symbolic_shape, arrays):
    shape = np.shape(arrays[name])
    shape = shape + (1,) * (2 - len(shape))
    for d, v in zip(symbolic_shape, shape):
        d = sp.sympify(d if isinstance(d, int) else sp.Symbol(str(d)))
        if isinstance(d, sp.Symbol):
            assert dims.setdefault(d, v) == v, f"dimension {d} bound twice"
        else:
            assert d == v, f"{name}: shape {symbolic_shape} vs data {shape}"


def sympy_value(expr, arrays, variables=()):
    """Evaluate a SymPy output on explicit arrays: dimension Symbols are bound from
    the arrays' shapes (of the expression's MatrixSymbols and of `variables`, the
    problem's variable nodes: 𝟙 and I may be all that is left of a variable), then
    the symbols are substituted and .doit() evaluates."""
    dims = {}
    for m in expr.atoms(sp.MatrixSymbol):
        _bind(dims, m.name, m.shape, arrays)
    for name, node in dict(variables).items():
        _bind(dims, name, node.shape, arrays)
    expr = expr.xreplace(dims)
    values = {}
    for m in expr.atoms(sp.MatrixSymbol):
        a = np.asarray(arrays[m.name], dtype=float)
        values[m] = sp.ImmutableMatrix(a.reshape(tuple(int(d) for d in m.shape)))
    for s in expr.free_symbols:
        if isinstance(s, sp.Symbol) and s.name in arrays:
            values[s] = sp.Float(arrays[s.name])
    out = expr.subs(values).doit()
    if isinstance(out, sp.MatrixBase):
        return np.array(out.tolist(), dtype=float)
    assert not isinstance(out, sp.MatrixExpr), f"not evaluated: {out}"
    return float(out)


def _as_shape(v, like):
    v = np.asarray(v, dtype=float)
    return v.reshape(np.shape(like))


@pytest.mark.parametrize("mode", ["declared", "symbolic"])
@pytest.mark.parametrize("src,wrt,shapes,kinds,f", CASES, ids=IDS)
def test_sympy_gradient_numerically(src, wrt, shapes, kinds, f, mode):
    vars = _declared(shapes, kinds) if mode == "declared" else _symbolic(kinds)
    grads = matdiff.grad(src, wrt=wrt, vars=vars)
    arrays = _data(shapes, kinds)
    variables = grads[wrt[0]]._result.problem.variables
    assert sorted(variables) == sorted(shapes)
    for name in wrt:
        g = grads[name]
        expr = g.sympy
        assert isinstance(expr, sp.Basic)
        assert str(expr) and sp.latex(expr) and sp.pretty(expr)  # every printer copes
        fd = numeric_gradient(f, arrays, name)
        generated = _as_shape(g.numpy_function()(**arrays), arrays[name])
        symbolic = _as_shape(sympy_value(expr, arrays, variables), arrays[name])
        np.testing.assert_allclose(generated, fd, rtol=1e-5, atol=1e-6,
                                   err_msg=f"NumPy gradient of {src} wrt {name}: {g.text}")
        np.testing.assert_allclose(symbolic, fd, rtol=1e-5, atol=1e-6,
                                   err_msg=f"SymPy gradient of {src} wrt {name}: {expr}")
        np.testing.assert_allclose(symbolic, generated, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("src,wrt,shapes,kinds,f", CASES, ids=IDS)
def test_sympy_of_the_function_itself(src, wrt, shapes, kinds, f):
    """The converter on the function (log_softmax, logsumexp, norm, sum, diag, ...)."""
    problem = Problem(src, _symbolic(kinds))
    arrays = _data(shapes, kinds)
    value = sympy_value(to_sympy(problem.root), arrays, problem.variables)
    assert np.isclose(float(np.squeeze(value)), f(**arrays), rtol=1e-10, atol=1e-12)


def test_sympy_classes():
    from matdiff.sympy_out import LogSoftmax
    X = sp.MatrixSymbol("X", sp.Symbol("N"), sp.Symbol("D"))
    W = sp.MatrixSymbol("W", sp.Symbol("D"), sp.Symbol("C"))
    g = matdiff.grad("sum(σ(X W))", wrt="W", vars={"X": "matrix(N,D)", "W": "matrix(D,C)"}).sympy
    assert X in g.atoms(sp.MatrixSymbol) and W in g.atoms(sp.MatrixSymbol)
    assert "sigmoid(X*W)" in str(g)
    assert g.shape == (sp.Symbol("D"), sp.Symbol("C"))
    assert isinstance(g, sp.MatMul) and sp.Transpose(X) in g.args

    g = matdiff.grad("-tr(Y^T log softmax(XW+b))", wrt="W", vars={"Y": "onehot"}).sympy
    assert "softmax(" in str(g) and r"\operatorname{softmax}" in sp.latex(g)
    assert sp.latex(LogSoftmax(sp.MatrixSymbol("Z", 2, 3))) == r"\operatorname{log\_softmax}\left(Z\right)"
    assert g.atoms(sp.OneMatrix)  # the broadcast 𝟙bᵀ

    g = matdiff.grad("λ x^T x", wrt="x").sympy  # scalar times vector
    assert sp.Symbol("λ") in g.free_symbols and isinstance(g, sp.MatMul)

    g = matdiff.grad("logdet(X) + tr(A X)", wrt="X").sympy
    assert g.atoms(sp.Inverse) and g.atoms(sp.Transpose) and isinstance(g, sp.MatAdd)

    g = matdiff.grad("det(X)", wrt="X").sympy
    assert g.atoms(sp.Determinant)

    g = matdiff.grad("tr((X .* X)^T A)", wrt="X").sympy
    assert g.atoms(sp.HadamardProduct)

    assert matdiff.grad("sum(diag(X))", wrt="X").sympy.atoms(sp.Identity)

    # A scalar gradient is a scalar or a 1x1 matrix expression.
    g = matdiff.grad("λ x^T x + λ^2", wrt="λ").sympy
    assert sp.Symbol("λ") in g.free_symbols


def test_elementwise_doit_on_explicit_matrices():
    from matdiff.sympy_out import Elementwise, Softmax, LogSumExp, Norm, Sum, Diag, DiagVec
    Z = sp.MatrixSymbol("Z", 2, 3)
    M = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.25]])
    vals = {Z: sp.ImmutableMatrix(M)}
    for name, ref in [("sigmoid", _sigmoid(M)), ("relu", np.maximum(M, 0)),
                      ("softplus", _softplus(M)), ("tanh", np.tanh(M)),
                      ("abs", np.abs(M)), ("step", (M > 0).astype(float))]:
        e = Elementwise(name, Z)
        assert str(e) == f"{name}(Z)" and e.shape == (2, 3)
        out = e.subs(vals).doit()
        np.testing.assert_allclose(np.array(out.tolist(), dtype=float), ref)
    sm = Softmax(Z).subs(vals).doit()
    np.testing.assert_allclose(np.array(sm.tolist(), dtype=float), np.exp(_log_softmax(M)))
    lse = LogSumExp(Z).subs(vals).doit()
    np.testing.assert_allclose(np.array(lse.tolist(), dtype=float)[:, 0], _logsumexp(M))
    assert np.isclose(float(Norm(Z).subs(vals).doit()), np.linalg.norm(M))
    assert np.isclose(float(Sum(Z).subs(vals).doit()), M.sum())
    v = sp.MatrixSymbol("v", 3, 1)
    d = Diag(v).subs({v: sp.ImmutableMatrix([1, 2, 3])}).doit()
    assert d == sp.ImmutableMatrix(np.diag([1, 2, 3]))
    assert DiagVec(d).doit() == sp.ImmutableMatrix([1, 2, 3])


# ----------------------------------------------------------------------------
# LaTeX

GLYPHS = "ᵀ⊙⊘−𝟙‖⁻¹∘·σλ"


def _balanced(tex):
    depth = 0
    stack = []
    for m in re.finditer(r"\\[{}]|[{}]|\\left(?![A-Za-z])|\\right(?![A-Za-z])", tex):
        tok = m.group()
        if tok in (r"\{", r"\}"):
            continue
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth < 0:
                return False
        elif tok == r"\left":
            stack.append(depth)
        else:  # \right closes the innermost \left, at the brace depth it was opened
            if not stack or stack.pop() != depth:
                return False
    return depth == 0 and not stack


@pytest.mark.parametrize("src,wrt,shapes,kinds,f", CASES, ids=IDS)
def test_latex(src, wrt, shapes, kinds, f):
    grads = matdiff.grad(src, wrt=wrt, vars=_symbolic(kinds))
    for name in wrt:
        g = grads[name]
        tex = g.latex
        assert tex.strip()
        assert _balanced(tex), tex
        assert not any(ch in tex for ch in GLYPHS), tex
        assert tex.isascii(), tex
        assert not re.search(r"\^(\{[^{}]*\}|\w)\^", tex), f"double superscript: {tex}"
        assert "^{T}" not in tex and "^T" not in tex, tex
        if "ᵀ" in g.text:
            assert r"\top" in tex, tex
        r = g._repr_latex_()
        assert r.startswith("$") and r.endswith("$") and not r.startswith("$$")
        assert tex in r


def test_latex_examples():
    g = matdiff.grad("-tr(Y^T log softmax(XW+b))", wrt="W", vars={"Y": "onehot"})
    assert r"X^{\top}" in g.latex and r"\operatorname{softmax}" in g.latex
    assert r"\mathbf{1}b^{\top}" in g.latex
    g = matdiff.grad("λ x^T x", wrt="x")
    assert r"\lambda" in g.latex


# ----------------------------------------------------------------------------
# JSON


def _run(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_json_mission_example():
    src = "-tr(Y^T log softmax(XW+b))"
    out = json.loads(_run(["grad", src, "--wrt", "W", "--wrt", "b", "--var", "Y:onehot",
                           "--format", "json"]))
    assert set(out) == {"expression", "variables", "gradients"}
    assert out["expression"] == src
    assert set(out["variables"]) == {"X", "W", "b", "Y"}
    for name, v in out["variables"].items():
        assert set(v) == {"kind", "shape"}
        assert isinstance(v["shape"], list)
    kinds = {n: v["kind"] for n, v in out["variables"].items()}
    assert kinds == {"X": "matrix", "W": "matrix", "b": "vector", "Y": "onehot"}
    assert len(out["variables"]["W"]["shape"]) == 2 and len(out["variables"]["b"]["shape"]) == 1
    assert list(out["gradients"]) == ["W", "b"]
    grads = matdiff.grad(src, wrt=["W", "b"], vars={"Y": "onehot"})
    for name, g in out["gradients"].items():
        assert set(g) == {"text", "latex", "shape"}
        assert g["text"] == grads[name].text
        assert g["latex"] == grads[name].latex
        assert g["shape"] == out["variables"][name]["shape"]
        assert g["shape"] == [d if isinstance(d, int) else str(d) for d in grads[name].shape]
    assert out["gradients"]["W"]["text"] == "Xᵀ(softmax(XW + 𝟙bᵀ) − Y)"


def test_json_numeric_dims():
    out = json.loads(_run(["grad", "||X W - Y||_F^2", "--wrt", "W", "--var", "X:matrix(5,3)",
                           "--var", "Y:matrix(5,4)", "--format", "json"]))
    assert out["variables"]["X"] == {"kind": "matrix", "shape": [5, 3]}
    assert out["variables"]["W"]["shape"] == [3, 4]
    assert out["gradients"]["W"]["shape"] == [3, 4]
    g = matdiff.grad("||X W - Y||_F^2", wrt="W", vars={"X": "matrix(5,3)", "Y": "matrix(5,4)"})
    assert out["gradients"]["W"]["text"] == g.text


def test_sympy_format_on_the_command_line():
    out = _run(["grad", "a^T X b", "--wrt", "X", "--format", "sympy"])
    g = matdiff.grad("a^T X b", wrt="X")
    assert out.strip() == f"∂L/∂X = {g.sympy}"
