"""Parsing rules of SPEC §1 (issue 11 #1, #5; issue 18 `ones`): split names,
unknown functions, `ones` before parentheses. Gradients are checked against
hand-written NumPy and central differences, dimensions all different."""

import numpy as np
import pytest

from matdiff import MatdiffError
from matdiff.ops import registry
from matdiff.api import Result
from matdiff.parser import parse_program

from numeric import assert_close, numeric_gradient

RNG = np.random.default_rng(11)
FUNCTIONS = registry.functions()


def structure(ast):
    """The AST without spans and bracket wrappers."""
    while ast.kind == "paren":
        ast = ast.args[0]
    return (ast.kind, ast.value, tuple(structure(a) for a in ast.args))


def parsed(src, declared=()):
    return [(name, structure(a)) for name, a in parse_program(src, FUNCTIONS, declared)]


def check(src, wrt, f, arrays, vars=None):
    """The module's value is f's, and each gradient is f's central differences."""
    r = Result(src, wrt, vars)
    value, grads = r.numpy_namespace()["value_and_gradient"](**arrays)
    grads = grads if len(wrt) > 1 else (grads,)
    assert value == pytest.approx(f(**arrays), rel=1e-9)
    for name, g in zip(wrt, grads):
        assert_close(g, numeric_gradient(f, arrays, name), f"∂/∂{name} of {src}")
    return r


# -- split names behave exactly like their chunks written with spaces ------------

@pytest.mark.parametrize("tail", [
    " / 2", " * Y", " @ Y", " Y", "Y", " ⊙ Y", " .* Y", " ./ Y", " ⊘ Y", " ∘ Y",
    " + Y", " - Y", "'", "^T", "ᵀ", "^-1", "^{-1}", "⁻¹", "^2", "²", ".^2", "^Tb",
    "(A + B)", " / 2 x'x", "'Y / λ",
])
def test_split_name_parses_as_its_chunks(tail):
    assert parsed(f"XW{tail}") == parsed(f"X W{tail}")
    assert parsed(f"x'Ax{tail}") == parsed(f"x' A x{tail}")
    assert parsed(f"H1W2{tail}") == parsed(f"H1 W2{tail}")


def test_split_name_before_slash_divides_the_product():
    assert parsed("sum(XW / 2)") == parsed("sum((X W) / 2)")
    assert parsed("x'Ax / 2") == parsed("(x'A x) / 2")
    assert parsed("XW * Y") == parsed("(X W) Y")
    assert parsed("X^Tb") == parsed("(X^T) b")  # ^T is always the transpose


def test_split_name_divided_gradient():
    N, D, C = 5, 4, 3
    a = dict(X=RNG.standard_normal((N, D)), W=RNG.standard_normal((D, C)))
    r = check("sum(XW / 2)", ["X", "W"], lambda X, W: np.sum(X @ W) / 2, a)
    assert r.gradient("X").text == Result("sum(X W / 2)", ["X"]).gradient("X").text


def test_split_quadratic_form_divided_gradient():
    n = 6
    a = dict(x=RNG.standard_normal(n), A=RNG.standard_normal((n, n)))
    check("x'Ax / 2", ["x", "A"], lambda x, A: x @ A @ x / 2, a)


def test_split_name_times_and_hadamard_gradient():
    N, D, C = 5, 4, 3
    a = dict(X=RNG.standard_normal((N, D)), W=RNG.standard_normal((D, C)),
             Y=RNG.standard_normal((N, C)), V=RNG.standard_normal((C, 2)))
    check("sum(XW ⊙ Y) + sum(XW * V)", ["X", "W"],
          lambda X, W, Y, V: np.sum(X @ W * Y) + np.sum(X @ W @ V), a)


# -- unknown functions -----------------------------------------------------------

@pytest.mark.parametrize("src,name,col", [
    ("sum(gelu2(X))", "gelu2", 5),
    ("sum(foo1(X))", "foo1", 5),
    ("x'x + sum(softmx2(x))", "softmx2", 11),
    ("relu3(x)'x", "relu3", 1),
])
def test_lowercase_word_with_digits_before_bracket_is_an_unknown_function(src, name, col):
    assert name not in FUNCTIONS
    with pytest.raises(MatdiffError) as e:
        Result(src, ["x"] if "x" in src.replace(name, "") else ["X"])
    assert f"unknown function {name!r}" in str(e.value)
    assert e.value.column == col
    assert "^" in str(e.value)


def test_unknown_function_suggests_the_nearest_known_name():
    with pytest.raises(MatdiffError, match=r"unknown function 'softmx2' \(did you mean 'softmax'\?\)"):
        Result("sum(softmx2(X))", ["X"])
    with pytest.raises(MatdiffError, match=r"unknown function 'tanhh' \(did you mean 'tanh'\?\)"):
        Result("sum(tanhh(X))", ["X"])


def test_uppercase_runs_and_greek_before_brackets_stay_products():
    assert parsed("XW(A+B)") == parsed("X W (A + B)")
    assert parsed("λ(x'x)") == parsed("λ (x'x)")
    assert parsed("a1(x'x)") == parsed("a1 (x'x)")


# -- ones before parentheses -------------------------------------------------------

def test_ones_sized_by_a_dimension_or_an_integer():
    assert parsed("x^T ones(N)") == parsed("x^T 1_N")
    assert parsed("x^T ones(3)") == parsed("x^T 1_3")
    assert parsed("x^T ones (3)") == parsed("x^T 1_3")
    r = Result("x^T ones(3)", ["x"])
    assert r.problem.variables["x"].shape == (3, 1)
    r = Result("x^T ones(N)", ["x"], {"x": "vector(N)"})
    assert r.problem.variables["x"].shape == ("N", 1)


@pytest.mark.parametrize("src,spaced", [
    ("s^T ones (x^T y + tr(S))", "s^T 𝟙 (x^T y + tr(S))"),
    ("s^T ones(x^T y)", "s^T 𝟙 (x^T y)"),
    ("s^T ones(λ)", "s^T 𝟙 λ"),
    ("s^T ones(2.5)", "s^T 𝟙 2.5"),
    ("s^T ones(t)", "s^T 𝟙 t"),  # t declared: a variable, not a size
])
def test_anything_else_after_ones_is_a_product(src, spaced):
    assert parsed(src, declared=["t"]) == parsed(spaced, declared=["t"])


def test_ones_times_bracket_gradient():
    n, m, k = 4, 5, 3
    a = dict(s=RNG.standard_normal(n), x=RNG.standard_normal(m), y=RNG.standard_normal(m),
             S=RNG.standard_normal((k, k)))

    def f(s, x, y, S):
        return np.sum(s) * (x @ y + np.trace(S))
    check("s^T ones (x^T y + tr(S))", ["s", "x", "y", "S"], f, a)
