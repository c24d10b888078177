"""Declared dimension names are never silently unified (issue 11 #2): two
different names, or a name and a number, that would have to be equal are a
shape error naming both and pointing at the place. Inferred sizes unify."""

import numpy as np
import pytest

from matdiff import ShapeError
from matdiff.api import Result
from matdiff.engine import Problem

from numeric import assert_close, numeric_gradient

RNG = np.random.default_rng(2)


@pytest.mark.parametrize("src,vars,message,where", [
    ("sum(XW)", ["X:matrix(N,D)", "W:matrix(N,C)"],
     "XW needs D = N: X is N×D, W is N×C", "XW"),
    ("sum(X W)", ["X:matrix(N,D)", "W:matrix(N,C)"],
     "X W needs D = N: X is N×D, W is N×C", "X W"),
    ("sum(X + W)", ["X:matrix(N,D)", "W:matrix(N,C)"],
     "X + W needs D = C: X is N×D, W is N×C", "X + W"),
    ("sum(X ⊙ b)", ["X:matrix(N,D)", "b:vector(C)"],
     "X ⊙ b needs D = C: X is N×D, b is C×1", "X ⊙ b"),
    ("tr(X)", ["X:matrix(N,D)"], "tr(X) needs N = D: X is N×D", "tr(X)"),
    ("sum(X^2)", ["X:matrix(N,D)"], "X^2 needs N = D: X is N×D", "X^2"),
    ("x^T ones(3)", ["x:vector(n)"], "x^T ones(3) needs n = 3", "x^T ones(3)"),
    ("a^T x", ["a:vector(3)", "x:vector(n)"], "a^T x needs 3 = n", "a^T x"),
    ("x^T 1_m", ["x:vector(n)"], "x^T 1_m needs n = m", "x^T 1_m"),
    ("Z = XW; sum(Z + Y)", ["X:matrix(N,D)", "W:matrix(D,C)", "Y:matrix(N,K)"],
     "Z + Y needs C = K: Z is N×C, Y is N×K", "Z + Y"),
])
def test_declared_names_do_not_unify(src, vars, message, where):
    with pytest.raises(ShapeError) as e:
        Problem(src, vars)
    assert message in str(e.value)
    start = src.index(where)
    assert e.value.span == (start, start + len(where))
    _, line, carets = str(e.value).splitlines()
    assert line.strip() == src and carets.strip() == "^" * len(where)


def test_inferred_sizes_unify_with_declared_ones():
    p = Problem("sum(X W V)", ["X:matrix(N,D)", "V:matrix(C,K)"])
    assert p.variables["W"].shape == ("D", "C")
    p = Problem("x^T A y + sum(A)", ["x:vector(3)"])
    assert p.variables["A"].shape[0] == 3


def test_same_name_twice_is_one_size():
    p = Problem("sum(XW)", ["X:matrix(N,D)", "W:matrix(D,C)"])
    assert p.variables["W"].shape == ("D", "C")


def test_gradient_with_declared_and_inferred_sizes():
    N, D, C = 5, 4, 3
    a = dict(X=RNG.standard_normal((N, D)), W=RNG.standard_normal((D, C)),
             b=RNG.standard_normal(C))
    r = Result("sum(σ(XW + b))", ["W", "b"], {"X": "matrix(N,D)", "b": "vector(C)"})
    value, (gW, gb) = r.numpy_namespace()["value_and_gradient"](**a)

    def f(X, W, b):
        return np.sum(1 / (1 + np.exp(-(X @ W + b))))
    assert value == pytest.approx(f(**a))
    assert_close(gW, numeric_gradient(f, a, "W"), "∂/∂W")
    assert_close(gb, numeric_gradient(f, a, "b"), "∂/∂b")
