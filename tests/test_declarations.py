"""Declarations and option errors (issue 11 #4): ROWS×COLS shorthand, and
every error from a --var, a --wrt or an empty expression points at the text."""

import numpy as np
import pytest

from matdiff import MatdiffError, ParseError, UnknownNameError
from matdiff.api import Result
from matdiff.engine import Problem, normalize_decls

from numeric import assert_close, numeric_gradient


@pytest.mark.parametrize("text", ["X:N×D", "X:NxD", "X:N*D", "X: N × D ", "X:matrix(N,D)",
                                  "X:matrix( N , D )"])
def test_rows_by_cols_shorthand(text):
    assert normalize_decls([text]) == {"X": ("matrix", ["N", "D"])}


@pytest.mark.parametrize("text,dims", [("A:3x4", [3, 4]), ("A:Nx3", ["N", 3]),
                                       ("A:3×n_x", [3, "n_x"]), ("A:H1xH2", ["H1", "H2"])])
def test_shorthand_with_numbers_and_names(text, dims):
    assert normalize_decls([text]) == {"A": ("matrix", dims)}


def test_shorthand_declares_the_sizes_of_the_gradient():
    rng = np.random.default_rng(4)
    N, D, C = 5, 4, 3
    a = dict(X=rng.standard_normal((N, D)), W=rng.standard_normal((D, C)))
    r = Result("‖XW‖^2", ["W"], ["X:N×D", "W:DxC"])
    assert r.gradient("W").shape == ("D", "C")
    value, g = r.numpy_namespace()["value_and_gradient"](**a)

    def f(X, W):
        return np.sum((X @ W) ** 2)
    assert value == pytest.approx(f(**a))
    assert_close(g, numeric_gradient(f, a, "W"), "∂/∂W")


@pytest.mark.parametrize("text,message,under", [
    ("X:matrx(N,D)", "unknown kind 'matrx' (did you mean 'matrix'?)", "matrx"),
    ("X:N", "unknown kind 'N' (for a vector of length N write vector(N))", "N"),
    ("X:nxd", "for a matrix write n×d or matrix(n,d)", "nxd"),
    ("X:N×D×K", "a matrix has two dimensions", "N×D×K"),
    ("X:matrix(N,D", "expected ')'", None),
    ("X:matrix(N,0)", "bad dimension '0'", "0"),
    ("X:matrix N", "expected (DIMS) after 'matrix'", "N"),
    ("X", "expected NAME:KIND", None),
    ("2X:matrix", "bad variable name '2X'", "2X"),
])
def test_bad_declaration_points_at_the_bad_part(text, message, under):
    with pytest.raises(UnknownNameError) as e:
        normalize_decls([text])
    err = e.value
    assert message in err.message
    assert err.option == "--var" and err.source == text
    shown, carets = str(err).splitlines()[1:]
    assert shown == f"  --var {text}"
    start = carets.index("^") - len("  --var ")
    if under is None:  # at the end: something is missing
        assert start == len(text)
    else:
        assert text[start:start + len(under)] == under and carets.count("^") == len(under)


def test_dict_declarations_show_name_and_kind():
    with pytest.raises(UnknownNameError) as e:
        Problem("x'x", {"x": "vectr"})
    assert "did you mean 'vector'" in str(e.value)
    assert "  x:vectr" in str(e.value).splitlines()


def test_declared_twice_differently():
    assert normalize_decls(["x:vector", "x:vector"]) == {"x": ("vector", [])}
    with pytest.raises(UnknownNameError, match="declared twice"):
        normalize_decls(["x:vector", "x:vector(3)"])


@pytest.mark.parametrize("src", ["", "   ", "\n", "# a comment only", " ; ; "])
def test_empty_expression_has_a_position(src):
    with pytest.raises(ParseError) as e:
        Problem(src)
    assert "empty" in e.value.message and e.value.span is not None
    assert "^" in str(e.value)


def test_wrt_not_in_the_expression_points_at_the_option():
    with pytest.raises(MatdiffError) as e:
        Result("tr(A X)", ["X", "Q"])
    assert e.value.option == "--wrt"
    assert str(e.value).splitlines()[1:] == ["  --wrt Q", "        ^"]
    assert "its variables: A, X" in e.value.message
