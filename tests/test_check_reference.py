"""`matdiff check` compares with the reference interpreter, not with the
module's own `value`: deliberately broken modules (the generated source
edited here) must fail, and right ones pass."""

import ast

import numpy as np
import pytest

from matdiff.api import Result
from matdiff.check import check_gradient, check_module
from matdiff.numpy_emit import py_name

SRC = "Z = X W + b; L = sum(σ(Z)) + λ ‖W‖^2"
WRT = ["W", "b", "Z"]


def data(seed=0):
    rng = np.random.default_rng(seed)
    return {"X": rng.standard_normal((5, 4)), "W": rng.standard_normal((4, 3)),
            "b": rng.standard_normal(3), "λ": 0.3}


class _Edit(ast.NodeTransformer):
    """Rewrite the return statements of one generated function."""

    def __init__(self, fname, change):
        self.fname, self.change = fname, change

    def visit_FunctionDef(self, node):
        if node.name == self.fname:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Return) and sub.value is not None:
                    sub.value = self.change(sub.value)
        return node


def edited(source, fname, change):
    tree = _Edit(fname, change).visit(ast.parse(source))
    return ast.unparse(ast.fix_missing_locations(tree))


def plus_one(expr):
    return ast.BinOp(left=expr, op=ast.Add(), right=ast.Constant(1.0))


def times(k):
    def change(expr):
        return ast.BinOp(left=ast.Constant(k), op=ast.Mult(), right=expr)
    return change


def grad_element(i, change):
    """In `return (value, grads)`: change the i-th gradient (or the only one)."""
    def edit(expr):
        assert isinstance(expr, ast.Tuple) and len(expr.elts) == 2, ast.dump(expr)
        g = expr.elts[1]
        if isinstance(g, ast.Tuple):
            g.elts[i] = change(g.elts[i])
        else:
            expr.elts[1] = change(g)
        return expr
    return edit


def source():
    return Result(SRC, WRT, {}).numpy_source()


def test_the_generated_module_passes():
    ok, lines = check_module(source(), SRC, WRT, {}, data())
    assert ok, lines
    assert [ln.split(":")[0] for ln in lines] == WRT
    assert "intermediate" in lines[2]


def test_a_wrong_value_fails():
    src = edited(source(), "value", plus_one)
    ok, lines = check_module(src, SRC, WRT, {}, data())
    assert not ok
    assert any(ln.startswith("value:") and "MISMATCH" in ln for ln in lines), lines


def test_a_wrong_value_in_value_and_gradient_fails():
    def change(expr):
        expr.elts[0] = plus_one(expr.elts[0])
        return expr
    src = edited(source(), "value_and_gradient", change)
    ok, lines = check_module(src, SRC, WRT, {}, data())
    assert not ok
    assert any(ln.startswith("value_and_gradient's value:") for ln in lines), lines


@pytest.mark.parametrize("i,name", list(enumerate(WRT)))
def test_a_wrong_gradient_fails(i, name):
    src = edited(source(), "value_and_gradient", grad_element(i, times(1.01)))
    ok, lines = check_module(src, SRC, WRT, {}, data())
    assert not ok
    bad = [ln for ln in lines if "MISMATCH" in ln]
    assert len(bad) == 1 and bad[0].startswith(name + ":"), lines


def test_a_consistently_wrong_module_fails():
    """Value and gradient both doubled: finite differences of the module's own
    value would agree with its gradient (the closed loop); the reference does not."""
    src = edited(source(), "value", times(2.0))
    src = edited(src, "value_and_gradient",
                 lambda e: ast.Tuple(elts=[times(2.0)(e.elts[0]),
                                           ast.Tuple(elts=[times(2.0)(g) for g in e.elts[1].elts],
                                                     ctx=ast.Load())],
                                     ctx=ast.Load()))
    ok, lines = check_module(src, SRC, WRT, {}, data())
    assert not ok
    assert sum("MISMATCH" in ln for ln in lines) == 2 + len(WRT), lines


def test_a_crashing_module_is_reported_not_raised():
    src = edited(source(), "value", lambda e: ast.parse("undefined_name_", mode="eval").body)
    ok, lines = check_module(src, SRC, WRT, {}, data())
    assert not ok and "raised NameError" in lines[0]


def test_a_namespace_works_as_well_as_source():
    ns = Result(SRC, WRT, {}).numpy_namespace()
    ok, lines = check_module(ns, SRC, WRT, {}, data(3))
    assert ok, lines


def test_symmetric_and_onehot_variables():
    src = "-tr(Y^T log softmax(X W)) + x^T S x"
    vars = {"Y": "onehot", "S": "symmetric"}
    ok, lines = check_gradient(src, ["W", "S", "Y"], vars)
    assert ok, lines


def test_check_gradient_keeps_its_interface():
    ok, lines = check_gradient("tr(A X B)", ["X"], {})
    assert ok and len(lines) == 1 and lines[0].startswith("X:")
    ok, lines = check_gradient("x^T A x", ["x"], [], tol=1e-300)
    assert not ok and "MISMATCH" in lines[0]


def test_unsafe_names_map_to_module_parameters():
    src = "lambda sum(X)"
    r = Result(src, ["lambda"], {})
    assert py_name("lambda") != "lambda"
    ok, lines = check_module(r.numpy_namespace(), src, ["lambda"], {},
                             {"lambda": 0.5, "X": np.ones((2, 3))})
    assert ok, lines


# Issue 18's reproducers: generated modules that computed something other
# than the formula. check_gradient compares with the reference, so each one
# is a test of the module's value and gradient.
ISSUE18 = [
    ("ρ = 1 + gamma; -ρ", ["gamma"], {"gamma": "scalar"}),
    ("κ = mu norm(Sigma); L = sum(x0) / κ", ["mu"], {}),
    ("ρ = x^T x + 0.5; f = z^T (ρ b2)", ["x"], {"z": "onehot"}),
    ("Z1 = W + W2; norm(Z1 z)", ["Z1", "W"], {}),
    ("z1 = y / 1.5; L = (Omega z1.^3)^T y", ["Omega", "y"], {}),
    ("ρ = gamma + pi; logsumexp(ρ (B2 v))", ["ρ", "gamma"], {"gamma": "scalar"}),
    ("ρ = β + 1e-3; L = (X_train / ρ X b)^T (W2 s)", ["W2", "β"], {"s": "onehot"}),
    ("Z1 = 0.1 + A1; h^T (Z1 s)", ["A1", "Z1"], {}),
    ("H1 = Omega / epsilon; J = det((H1 / ε)^T + I)", ["Omega", "H1"], {}),
    ("z1 = s .* h; f = q^T (0.25 + Y z1)", ["h", "z1"], {}),
    ("sum(G ./ x) / 2", ["G"], {}),
    ("(y^T w1) ((Z y ./ z)^T z) / 2", ["Z"], {}),
    ("c^T softmax(c - c)", ["c"], {}),
    ("sum(P + η I + 0.1 I)", ["η"], {}),
    ("Z1 = W_out; J = det(Z1^T + S)", ["Z1", "W_out"], {"W_out": "symmetric"}),
    ("s^T ones (x^T y + tr(S))", ["s", "x", "S"], {}),
]


@pytest.mark.parametrize("src,wrt,vars", ISSUE18,
                         ids=[c.values[0] if hasattr(c, "values") else c[0] for c in ISSUE18])
def test_issue18_reproducers_against_the_reference(src, wrt, vars):
    ok, lines = check_gradient(src, wrt, vars)
    assert ok, lines
