import numpy as np
import pytest

from matdiff.check import check_gradient

CASES = [
    ("tr(A X B)", ["X"], {}),
    ("-tr(Y^T log softmax(XW+b))", ["W", "b"], {"Y": "onehot"}),
]


@pytest.mark.parametrize("src,wrt,vars", CASES)
def test_check(src, wrt, vars):
    ok, lines = check_gradient(src, wrt, vars)
    assert ok, lines
