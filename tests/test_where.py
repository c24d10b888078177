"""`where` blocks: the gradients of several variables share one block of named
parts (δˡ as the seeds write them), and the printed text, read back as a
program with its definitions, gives the same numbers as the generated module.

The read-back goes through matdiff.reference, which evaluates the text
directly (no IR, no emitter); the module is the one `--format numpy` prints.
"""

import numpy as np
import pytest

from matdiff.api import Result
from matdiff.reference import evaluate

R = np.random.default_rng(13)
N, D, H, C = 5, 4, 6, 3


def _onehot(n, c):
    y = np.zeros((n, c))
    y[np.arange(n), R.integers(c, size=n)] = 1.0
    return y


SEED_NETWORKS = [
    # seed 002: two layers, σ, softmax cross-entropy / N, weight decay
    ("Z1 = X W1 + b1; H1 = σ(Z1); Z2 = H1 W2 + b2\n"
     "L = -tr(Y^T log softmax(Z2))/N + λ(‖W1‖_F^2 + ‖W2‖_F^2)",
     ["W1", "b1", "W2", "b2", "Z2"], {"Y": "onehot", "X": "matrix(N,D)", "W2": "matrix(H,C)"},
     dict(X=R.standard_normal((N, D)), W1=R.standard_normal((D, H)), b1=R.standard_normal(H),
          W2=R.standard_normal((H, C)), b2=R.standard_normal(C), Y=_onehot(N, C), λ=0.1)),
    # seed 000: k = 3 sigmoid layers, column vectors, softmax loss
    ("a1 = W1 x + b1; h1 = σ(a1); a2 = W2 h1 + b2; h2 = σ(a2); a3 = W3 h2 + b3\n"
     "f = -y^T log softmax(a3)",
     ["W1", "W2", "W3", "b1", "a2"], {"y": "onehot"},
     dict(x=R.standard_normal(D), W1=R.standard_normal((H, D)), b1=R.standard_normal(H),
          W2=R.standard_normal((N, H)), b2=R.standard_normal(N), W3=R.standard_normal((C, N)),
          b3=R.standard_normal(C), y=np.eye(C)[1])),
    # seed 004: the tanh MLP with a squared error
    ("z1 = tanh(W1 x + b1); z2 = tanh(W2 z1 + b2); R = 1/2 ‖z2 - t‖^2",
     ["W1", "b1", "W2", "b2", "z1"], {},
     dict(x=R.standard_normal(D), W1=R.standard_normal((H, D)), b1=R.standard_normal(H),
          W2=R.standard_normal((C, H)), b2=R.standard_normal(C), t=R.standard_normal(C))),
    # scalars through two tanh units and a σ: 1/h2 folds into divisions
    ("c1 = tanh(w1 x1 + w2 x2); c2 = tanh(w2 x2 + w3 x3); h2 = σ(c1 c2); y = log(h2)",
     ["x2", "w2", "c1"], {k: "scalar" for k in ("w1", "w2", "w3", "x1", "x2", "x3")},
     dict(w1=0.3, w2=-0.7, w3=1.1, x1=0.4, x2=-1.3, x3=0.8)),
    # three tanh layers, the adjoints of the intermediates asked for
    ("z1 = tanh(W1 x + b1); z2 = tanh(W2 z1 + b2); z3 = tanh(W3 z2 + b3); R = 1/2 ‖z3 - t‖^2",
     ["z3", "z2", "z1", "W1"], {},
     dict(x=R.standard_normal(D), W1=R.standard_normal((H, D)), b1=R.standard_normal(H),
          W2=R.standard_normal((C, H)), b2=R.standard_normal(C), W3=R.standard_normal((N, C)),
          b3=R.standard_normal(N), t=R.standard_normal(N))),
    # one expression, four sigmoid layers: forward parts are shared too (h)
    ("sum(σ(σ(σ(σ(X W1) W2) W3) W4))", ["W1", "W2", "W3", "W4"], {},
     dict(X=R.standard_normal((N, D)), W1=R.standard_normal((D, H)),
          W2=R.standard_normal((H, C)), W3=R.standard_normal((C, D)),
          W4=R.standard_normal((D, N)))),
]


def _bindings(src):
    statements = [s.strip() for s in src.replace("\n", ";").split(";") if s.strip()]
    return statements[:-1] + ([statements[-1]] if "=" in statements[-1] else [])


IDS = ["seed002", "seed000", "seed004", "scalars", "tanh3", "nested4"]


@pytest.mark.parametrize("src,wrt,vars,arrays", SEED_NETWORKS, ids=IDS)
def test_shared_where_block_reads_back_to_the_module(src, wrt, vars, arrays):
    r = Result(src, wrt, vars)
    bodies, defs = r.printout()
    assert defs, "a network this deep names its shared parts"
    names = [k for k, _ in defs]
    assert len(set(names)) == len(names)
    # every name the block defines is read by a body or another definition
    import re
    for k, _ in defs:
        others = bodies + [v for j, v in defs if j != k]
        assert any(re.search(re.escape(k) + r"(?![0-9])", t) for t in others), (k, bodies, defs)
    assert all(k.startswith(("δ", "h")) for k in names)
    grads = r.numpy_namespace()["gradient"](**arrays)
    prelude = _bindings(src) + [f"{k} = {v}" for k, v in defs]
    for name, body, g in zip(wrt, bodies, grads):
        program = "; ".join(prelude + [body])
        got = evaluate(program, arrays, vars=vars, like=np.shape(g))
        np.testing.assert_allclose(got, g, rtol=1e-9, atol=1e-12, err_msg=f"∂/∂{name} = {body}")
    # --inline: the same numbers, written out in full
    inline, none = r.printout(inline=True)
    assert none == []
    for name, body, g in zip(wrt, inline, grads):
        got = evaluate("; ".join(_bindings(src) + [body]), arrays, vars=vars, like=np.shape(g))
        np.testing.assert_allclose(got, g, rtol=1e-9, atol=1e-12, err_msg=f"∂/∂{name} = {body}")


def test_deltas_follow_the_layers():
    """δˡ is the back-propagated signal of layer l: δ1 = δ2 W2ᵀ ⊙ H1 ⊙ (1 − H1)
    (the digits of Z_l), down from δ3 = softmax(Z3) − Y."""
    src = ("Z1 = X W1 + b1; H1 = σ(Z1); Z2 = H1 W2 + b2; H2 = σ(Z2); Z3 = H2 W3 + b3\n"
           "L = -tr(Y^T log softmax(Z3))/N")
    _, defs = Result(src, ["W1", "b1", "W2", "b2", "W3"], {"Y": "onehot"}).printout()
    d = dict(defs)
    assert set(d) == {"δ1", "δ2", "δ3"}
    assert d["δ3"] == "softmax(Z3) − Y"
    assert "δ3" in d["δ2"] and "H2" in d["δ2"] and "δ2" in d["δ1"] and "H1" in d["δ1"]


def test_the_adjoint_of_an_intermediate_takes_its_layer():
    """∂R/∂z3 is δ3, though z3 − t has the same adjoint and no index."""
    r = Result(SEED_NETWORKS[4][0], ["z3", "z2", "z1", "W1"], {})
    bodies, _ = r.printout()
    assert bodies[:3] == ["δ3", "δ2", "δ1"]


def test_short_answers_stay_inline():
    r = Result("-tr(Y^T log softmax(XW+b))", ["W", "b"], {"Y": "onehot"})
    bodies, defs = r.printout()
    assert defs == [] and bodies == ["Xᵀ(softmax(XW + 𝟙bᵀ) − Y)", "(softmax(XW + 𝟙bᵀ) − Y)ᵀ𝟙"]


def test_printed_size_grows_linearly_with_depth():
    def chars(k):
        h = "X W1"
        for i in range(2, k + 1):
            h = f"σ({h}) W{i}"
        r = Result(f"sum(σ({h}))", [f"W{i}" for i in range(1, k + 1)], {})
        bodies, defs = r.printout()
        return sum(map(len, bodies)) + sum(len(k) + len(v) for k, v in defs)
    c8, c32 = chars(8), chars(32)
    assert c32 < 5 * c8, (c8, c32)  # linear: 4×; the inline text grows as k³


def test_sympy_gets_the_where_block_as_pairs():
    """Result.sympy_printout(): the shared parts as (symbol, expression) pairs,
    like sympy.cse, after the program's intermediates that the text shows by
    name (the pairs stand alone); substituted back, the numbers are the
    module's."""
    import sympy as sp
    from test_outputs import sympy_value
    src = "Z1 = X W1 + b1; H1 = σ(Z1); Z2 = H1 W2 + b2\nL = -tr(Y^T log softmax(Z2))/N"
    wrt = ["W1", "b1", "W2"]
    r = Result(src, wrt, {"Y": "onehot"})
    exprs, pairs = r.sympy_printout()
    assert [str(s) for s, _ in pairs] == ["Z1", "H1", "Z2"] + [k for k, _ in r.printout()[1]]
    assert str(dict(pairs)[sp.MatrixSymbol("H1", *pairs[1][0].shape)]) == "sigmoid(Z1)"
    n, d, h, c = 3, 2, 4, 5
    arrays = dict(X=R.standard_normal((n, d)), W1=R.standard_normal((d, h)),
                  b1=R.standard_normal(h), W2=R.standard_normal((h, c)),
                  b2=R.standard_normal(c), Y=_onehot(n, c))
    grads = r.numpy_namespace()["gradient"](**arrays)
    for name, expr, g in zip(wrt, exprs, grads):
        for sym, definition in reversed(pairs):
            expr = expr.xreplace({sym: definition})
        assert isinstance(expr, sp.Basic)
        got = sympy_value(expr, {**arrays, "N": n}, r.problem.variables)
        np.testing.assert_allclose(np.reshape(got, np.shape(g)), g, rtol=1e-9, atol=1e-12)


DEEP_PROGRAM = ("Z1 = X W1; H1 = σ(Z1); Z2 = H1 W2; H2 = σ(Z2); Z3 = H2 W3; H3 = σ(Z3)\n"
                "Z4 = H3 W4; L = sum(σ(Z4))")


@pytest.mark.parametrize("src,wrt,vars,arrays", SEED_NETWORKS + [
    (DEEP_PROGRAM, ["W1", "W2", "W3", "W4"], {}, SEED_NETWORKS[-1][3])],
    ids=IDS + ["program4"])
def test_sympy_pairs_stand_alone_and_read_back(src, wrt, vars, arrays):
    """Each pair reads only the variables and the pairs before it (a program's
    intermediate is a pair of its own, not written out again in every later
    one), and substituted back the results are the module's numbers."""
    import sympy as sp
    from test_outputs import sympy_value
    r = Result(src, wrt, vars)
    exprs, pairs = r.sympy_printout()
    assert pairs
    symbols = {s.name for s, _ in pairs}
    defined = set()
    for sym, definition in pairs:
        names = {a.name for a in definition.atoms(sp.MatrixSymbol, sp.Symbol)}
        assert names & symbols <= defined, (sym, definition)
        defined.add(sym.name)
    # the program's bindings that the results read (all but the loss) are
    # pairs, in the program's order; the text's where block is among the
    # others (SymPy keeps a part that the text folded away, such as 1/h in a
    # division)
    own = list(r.problem.intermediates)[:-1]
    assert [s.name for s, _ in pairs if s.name in r.problem.intermediates] == own
    assert {k for k, _ in r.printout()[1]} <= defined - set(own)
    grads = r.numpy_namespace()["gradient"](**arrays)
    sizes = {"N": N} if "N" in src else {}
    for name, expr, g in zip(wrt, exprs, grads):
        for sym, definition in reversed(pairs):
            expr = expr.xreplace({sym: definition})
        got = sympy_value(expr, {**arrays, **sizes}, r.problem.variables)
        np.testing.assert_allclose(np.reshape(got, np.shape(g)), g, rtol=1e-9, atol=1e-12,
                                   err_msg=f"∂/∂{name}")
