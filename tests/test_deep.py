"""Deep input: parsing and shape inference at 5000 levels of nesting, a clean
error past the parser's cap, and the run_deep helper the other stages use."""

import sys

import pytest

from matdiff import MatdiffError, ParseError
from matdiff.ops import registry
from matdiff.deep import in_deep, run_deep
from matdiff.engine import Problem
from matdiff.parser import MAX_NESTING, parse_program
from matdiff.shapes import Inference, shape_text

DEPTH = 5000


def depth_of(ast):
    d, stack = 0, [(ast, 1)]
    while stack:
        a, k = stack.pop()
        d = max(d, k)
        stack.extend((c, k + 1) for c in a.args)
    return d


def parse_and_infer(src, decls=None):
    stmts = parse_program(src, registry.functions(), (decls or {}).keys())
    inf = Inference(src, decls or {})
    return stmts, inf.program(stmts)


DEEP = {
    "calls": "sum(" + "tanh(" * DEPTH + "x" + ")" * DEPTH + ")",
    "prefix": "sum(" + "tanh " * DEPTH + "x)",
    "brackets": "(" * DEPTH + "x^T x" + ")" * DEPTH,
    "signs": "x^T " + "(-" * DEPTH + "x" + ")" * DEPTH,
    "minus-run": "x^T (" + "- " * DEPTH + "x)",
    "products": "tr(" + "X(" * DEPTH + "W" + ")" * DEPTH + ")",
    "long-sum": " + ".join(["x^T x"] * DEPTH),
}


@pytest.mark.parametrize("src", list(DEEP.values()), ids=list(DEEP))
def test_parse_and_shapes_at_depth_5000(src):
    stmts, shape = run_deep(parse_and_infer, src)
    assert shape_text(shape) == "1×1"
    assert depth_of(stmts[-1][1]) >= DEPTH


def test_problem_at_depth_5000_from_the_main_thread():
    src = "sum(" + "tanh(" * DEPTH + "x" + ")" * DEPTH + ")"
    p = Problem(src)  # a long source runs in a deep worker by itself
    assert p.root.is_scalar and list(p.variables) == ["x"]


def test_nesting_past_the_cap_is_a_parse_error_with_a_caret():
    n = MAX_NESTING + 5
    src = "sum(" + "(" * n + "x" + ")" * n + ")"
    with pytest.raises(ParseError) as e:
        Problem(src)
    assert "too deeply nested" in str(e.value)
    start = e.value.span[0]
    assert src[start - 1] == "(" and MAX_NESTING - 5 <= start <= MAX_NESTING + 5
    assert "^" in str(e.value)


def test_run_deep_returns_reraises_and_restores_the_limit():
    before = sys.getrecursionlimit()

    def down(n):
        return 0 if n == 0 else 1 + down(n - 1)
    assert run_deep(down, 100_000) == 100_000
    assert sys.getrecursionlimit() == before

    def bad():
        raise MatdiffError("boom")
    with pytest.raises(MatdiffError, match="boom"):
        run_deep(bad)
    assert not in_deep()
    assert run_deep(lambda: run_deep(in_deep)) is True  # nested calls run inline
    assert run_deep(lambda *a, **k: (a, k), 1, x=2) == ((1,), {"x": 2})


def test_a_long_line_is_shown_around_the_error():
    src = "sum(X) + " * 500 + "x $ y" + " + sum(X)" * 500
    with pytest.raises(ParseError) as e:
        Problem(src)
    _, line, carets = str(e.value).splitlines()
    assert len(line) <= 104 and line.startswith("  …") and line.endswith("…")
    assert line[carets.index("^")] == "$"
    assert f"column {src.index('$') + 1}" in str(e.value)
