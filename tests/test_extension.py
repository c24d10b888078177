"""The extension point (issue 12; README "Adding an op"): ops that exist only
as entries of a rules file registered at run time parse, shape-check, build,
differentiate and print with no Python change.

`sumsq(X)` = Σ xᵢⱼ² is a structural op (spell, shape rule, differential,
pullback, text / LaTeX / NumPy templates); `stanh(x, α)` = tanh(αx) an
element-wise function with a parameter. Gradients are checked against central
differences of NumPy written by hand, all dimensions different.
"""

import numpy as np
import pytest

import matdiff
from matdiff import MatdiffError, ir
from matdiff.api import Result
from matdiff.evaluate import evaluate
from matdiff.ops import registry
from matdiff import templates
from matdiff.parser import parse_program

from numeric import assert_close, numeric_gradient

OPS_TOML = r'''
[sumsq]
name = "d Σx² = 2 sum(X ⊙ dX)"
moves = "Frobenius inner product"
spell = ["sumsq", "sum_squares"]
shape = "scalar"
args = ["X"]
differential.X = "2 sum(X ⊙ dX)"
pullback.X = "2 G X"
text = "sumsq({X})"
latex = "\\left\\|{X}\\right\\|_F^2"
numpy = "_np.sum(_np.square({X}))"
sympy = "Trace(({X}).T * ({X}))"
'''

ELEMENTWISE_TOML = r'''
[stanh]
params = ["alpha"]
derivative = "alpha (1 - tanh(alpha x).^2)"
partial.alpha = "x ⊙ (1 - tanh(alpha x).^2)"
latex = "\\tanh\\left({alpha} {x}\\right)"
numpy = "_np.tanh({alpha} * {x})"
sympy = "tanh(alpha*x)"
'''

# An infix op: (A − B)² element-wise, written A ⊖ B or sqdiff(A, B).
INFIX_TOML = r'''
[sqdiff]
name = "d (A − B)² = 2(A − B) ⊙ (dA − dB)"
moves = "Frobenius/Hadamard identity"
spell = ["sqdiff"]
infix = "⊖"
arity = 2
usage = "sqdiff(A, B)"
shape = "same_pair"
args = ["A", "B"]
differential.A = "2 (A - B) ⊙ dA"
differential.B = "-2 (A - B) ⊙ dB"
pullback.A = "2 G ⊙ (A - B)"
pullback.B = "-2 G ⊙ (A - B)"
text = "{A} ⊖ {B}"
latex = "{A} \\ominus {B}"
prec = "hadamard"
numpy = "_np.square({A} - {B})"
sympy = "HadamardPower({A} - {B}, 2)"
'''

N, D, C = 3, 4, 5
RNG = np.random.default_rng(12)


@pytest.fixture
def extension(tmp_path):
    ops, fns, infix = (tmp_path / n for n in ("ops.toml", "elementwise.toml", "infix.toml"))
    ops.write_text(OPS_TOML, encoding="utf-8")
    fns.write_text(ELEMENTWISE_TOML, encoding="utf-8")
    infix.write_text(INFIX_TOML, encoding="utf-8")
    registry.register_file(ops, "ops")
    registry.register_file(fns, "elementwise")
    registry.register_file(infix, "ops")
    yield
    registry.unregister_all()


def arrays():
    return {"X": RNG.standard_normal((N, D)), "W": RNG.standard_normal((D, C)),
            "Y": RNG.standard_normal((N, C)), "x": RNG.standard_normal(D),
            "α": 0.7}


def sumsq_loss(X, W, x, **_):
    return np.sum((X @ W) ** 2) * (x @ x)


def stanh_loss(X, W, Y, α, **_):
    return np.sum(Y * np.tanh(α * (X @ W)))


SUMSQ = "sumsq(X W) x'x"  # its gradient in x holds the op itself: 2 sumsq(XW) x
STANH = "sum(Y ⊙ stanh(X W, α))"
VARS = {"X": "matrix(N,D)", "W": "matrix(D,C)", "x": "vector(D)"}


def gradients(src, wrt, data):
    """{name: gradient array} from the NumPy module (vectors 1-D)."""
    r = Result(src, wrt, VARS)
    kw = {k: v for k, v in data.items() if k in r.problem.variables}
    _, grads = r.numpy_namespace()["value_and_gradient"](**kw)
    return dict(zip(wrt, grads if len(wrt) > 1 else (grads,)))


def test_parse_shapes_and_build(extension):
    (_, ast), = parse_program("sum_squares(X W)", registry.functions())
    assert (ast.kind, ast.value) == ("call", "sumsq")
    p = Result("sumsq(X W)", [], VARS).problem
    assert p.root.op == "sumsq" and p.root.shape == (1, 1)
    assert p.root.args[0].shape == ("N", "C")
    # errors point at the text, as for any op
    with pytest.raises(MatdiffError, match="W X needs C = N") as e:
        Result("sumsq(W X)", [], VARS)
    assert "^" in str(e.value)
    with pytest.raises(MatdiffError, match="sumsq takes one argument, got 2"):
        Result("sumsq(X, W)", [], VARS)
    with pytest.raises(MatdiffError, match="stanh takes 2 arguments, stanh\\(X, alpha\\), got 1"):
        Result("sum(stanh(X))", [], VARS)
    with pytest.raises(MatdiffError, match="the parameter alpha of stanh must be a scalar"):
        Result("sum(stanh(X, x))", [], VARS)


def test_the_entries_rules(extension):
    """The entries' differentials and pullbacks, as tests/test_rules.py checks
    every op: adjoint identity and both against central differences. sumsq is
    built from a rule template, where no inference runs: its node is shaped by
    its shape rule."""
    from test_rules import M, S, V, check_rule
    X = ir.var("X", "matrix", ("m", "n"))
    node = templates.instantiate("sumsq(X)", {"X": X})
    assert node.op == "sumsq" and node.shape == (1, 1)
    check_rule("ext-sumsq", node, 0, {"X": M("m", "n")})
    x, α = ir.var("x", "vector", ("n", 1)), ir.var("alpha", "scalar", (1, 1))
    node = templates.instantiate("stanh(x, alpha)", {"x": x, "alpha": α}, ("alpha",))
    assert node is ir.fn("stanh", x, α)
    for i in (0, 1):
        check_rule(f"ext-stanh-{i}", node, i, {"x": V("n"), "alpha": S()})


def test_gradient_text_latex_and_numbers(extension):
    g = matdiff.grad(SUMSQ, wrt=["W", "x"], vars=VARS)
    assert g["x"].text == "2sumsq(XW)x"
    assert g["W"].text == "2(xᵀx)XᵀXW"
    assert "\\left\\|X W\\right\\|_F^2" in g["x"].latex.replace("XW", "X W")
    data = arrays()
    got = gradients(SUMSQ, ["W", "x"], data)
    for name in ("W", "x"):
        assert_close(got[name], numeric_gradient(sumsq_loss, data, name), f"∂/∂{name} {SUMSQ}")

    g = matdiff.grad(STANH, wrt=["W", "α"], vars=VARS)
    assert "stanh" not in g["W"].text and "tanh(α(XW))" in g["W"].text.replace("αXW", "α(XW)")
    assert "\\tanh" in g["W"].latex
    got = gradients(STANH, ["W", "α"], data)
    for name in ("W", "α"):
        assert_close(got[name], numeric_gradient(stanh_loss, data, name), f"∂/∂{name} {STANH}")


def sympy_value(expr, data):
    """A SymPy result evaluated at the data (matrices as SymPy matrices)."""
    import sympy as sp
    subs = {}
    for sym in expr.free_symbols:
        v = data.get(str(sym))
        if v is not None:
            v = np.asarray(v, dtype=float)
            subs[sym] = sp.Float(float(v)) if v.ndim == 0 else \
                sp.ImmutableMatrix(v.reshape(v.shape[0], -1))
    return np.array(sp.Matrix(expr.subs(subs).doit()).evalf(), dtype=float)


def test_sympy_where_the_op_is_gone(extension):
    """SymPy output of gradients made of the IR's own nodes and of an
    element-wise function's `sympy` column (already generic)."""
    data = arrays()
    g = matdiff.grad(SUMSQ, wrt="W", vars=VARS)
    assert_close(sympy_value(g.sympy, data), numeric_gradient(sumsq_loss, data, "W"), "sympy ∂/∂W")
    g = matdiff.grad(STANH, wrt="W", vars=VARS)
    assert_close(sympy_value(g.sympy, data), numeric_gradient(stanh_loss, data, "W"), "sympy ∂/∂W")


def test_sympy_of_the_registered_op(extension):
    """The op's own SymPy form, from its entry's `sympy` template."""
    data = arrays()
    g = matdiff.grad(SUMSQ, wrt="x", vars=VARS)
    got = sympy_value(g.sympy, data).ravel()
    assert_close(got, numeric_gradient(sumsq_loss, data, "x"), "sympy ∂/∂x")


SQDIFF = "sum(C ⊙ (X W ⊖ Y))"  # ⊖ at the Hadamard level: (XW) ⊖ Y
SQ_VARS = {"X": "matrix(N,D)", "W": "matrix(D,C)", "Y": "matrix(N,C)", "C": "matrix(N,C)"}


def sqdiff_loss(X, W, Y, C, **_):
    return np.sum(C * (X @ W - Y) ** 2)


def test_an_infix_op(extension):
    """An infix spelling from the entry: lexed, parsed at the Hadamard level,
    the call form the same node, shape-checked by its named rule, printed
    infix, its gradients checked against central differences (evaluated where the
    op is gone, so this part needs no code template of ⊖)."""
    (_, infix), = parse_program("X W ⊖ Y", registry.functions())
    (_, call), = parse_program("sqdiff(X W, Y)", registry.functions())
    assert infix.kind == call.kind == "sqdiff" and infix.args[0].kind == "prod"
    with pytest.raises(MatdiffError, match=r"sqdiff takes two arguments, sqdiff\(A, B\), got 1"):
        Result("sum(sqdiff(X))", [], SQ_VARS)
    with pytest.raises(MatdiffError, match="X ⊖ Y needs D = C") as e:
        Result("sum(X ⊖ Y)", [], SQ_VARS)
    assert "^" in str(e.value)
    g = matdiff.grad("sum(C ⊙ (Y ⊖ X W)) + sum(Y ⊖ C)", wrt="C", vars=SQ_VARS)
    assert g.text == "Y ⊖ XW − 2(Y − C)"  # ∂/∂C sum(Y ⊖ C) = −2(Y − C)
    assert "\\ominus" in g.latex
    data = {"X": RNG.standard_normal((N, D)), "W": RNG.standard_normal((D, C)),
            "Y": RNG.standard_normal((N, C)), "C": RNG.standard_normal((N, C))}
    problem = Result(SQDIFF, [], SQ_VARS).problem
    grads = problem.gradients(["W", "Y"])
    for name in ("W", "Y"):  # made of the IR's own nodes: evaluated with no template of ⊖
        got = evaluate(grads[name], data, tuple(problem.variables.values()))
        assert_close(got, numeric_gradient(sqdiff_loss, data, name), f"∂/∂{name} {SQDIFF}")


def test_numpy_and_sympy_of_an_infix_op(extension):
    """Its `numpy` and `sympy` templates of two arguments ({A}, {B})."""
    data = {"X": RNG.standard_normal((N, D)), "W": RNG.standard_normal((D, C)),
            "Y": RNG.standard_normal((N, C)), "C": RNG.standard_normal((N, C))}
    r = Result(SQDIFF, ["W"], SQ_VARS)
    value, grad = r.numpy_namespace()["value_and_gradient"](**data)
    assert value == pytest.approx(sqdiff_loss(**data), rel=1e-9)
    assert_close(grad, numeric_gradient(sqdiff_loss, data, "W"), "∂/∂W")
    g = matdiff.grad(SQDIFF, wrt="C", vars=SQ_VARS)  # (XW − Y)², the op itself
    assert g.text == "XW ⊖ Y"
    assert_close(sympy_value(g.sympy, data), numeric_gradient(sqdiff_loss, data, "C"), "sympy ∂/∂C")


def test_unregister_forgets_the_op(extension):
    registry.unregister_all()
    with pytest.raises(MatdiffError, match="unknown function 'sumsq'"):
        Result("sumsq(X)", [], {})


def test_the_readme_example(tmp_path):
    """README "Adding an op": its rules file works as shown."""
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Adding an op"):]
    path = tmp_path / "sumsq.toml"
    path.write_text(re.search(r"```toml\n(.*?)```", section, re.S).group(1), encoding="utf-8")
    registry.register_file(path, "ops")
    try:
        assert matdiff.grad("sumsq(X W)", wrt="W").text == "2XᵀXW"
    finally:
        registry.unregister_all()
