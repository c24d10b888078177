"""--steps: the derivation ends at dL = tr(Gᵀ dX) with the gradient, and every
differential it shows is an identity that holds numerically."""

import numpy as np
import pytest

from matdiff.api import Result
from matdiff.steps import derivation


@pytest.mark.parametrize("expr,wrt,vars,final", [
    ("-tr(Y^T log softmax(XW+b))", "W", {"Y": "onehot"}, "dL = tr((Xᵀ(softmax(XW + 𝟙bᵀ) − Y))ᵀ dW)"),
    ("Z = X W + b; L = -tr(Y^T log softmax(Z))", "W", {"Y": "onehot"}, "dL = tr((Xᵀ(softmax(Z) − Y))ᵀ dW)"),
    ("x^T A x", "x", {}, "dL = ((A + Aᵀ)x)ᵀ dx"),
    ("sum(σ(X W))", "W", {}, None),
])
def test_derivation_ends_with_the_gradient(expr, wrt, vars, final):
    r = Result(expr, [wrt], vars)
    lines = derivation(r, "L").splitlines()
    assert lines[-1] == f"∂L/∂{wrt} = {r.gradient(wrt).text}"
    dl = [ln.split("    [")[0] for ln in lines if ln.startswith("dL = ")]
    assert len(dl) >= 2
    if final is not None:
        assert dl[-1] == final
    # the last differential names only d of the variable
    assert f"d{wrt}" in dl[-1]


def test_steps_differential_is_numerically_the_gradient():
    # dL = tr(Gᵀ dW) with the printed G: compare with a directional difference.
    r = Result("sum(σ(X W))", ["W"], {})
    ns = r.numpy_namespace()
    rng = np.random.default_rng(3)
    X, W, dW = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    G = ns["gradient"](X=X, W=W)
    h = 1e-6
    fd = (ns["value"](X=X, W=W + h * dW) - ns["value"](X=X, W=W - h * dW)) / (2 * h)
    assert np.trace(G.T @ dW) == pytest.approx(fd, rel=1e-6)


def test_each_step_names_its_identity():
    """Every expansion step cites the identity of its op's rule entry, every
    rewrite step the one rule of the rewrite table it applies."""
    from matdiff.ops import registry
    from matdiff import ir
    steps = derive_steps(Result("-tr(Y^T log softmax(XW+b))", ["W"], {"Y": "onehot"})).steps
    expansions = [s for s in steps if s.kind == "rule"]
    rewrites = [s for s in steps if s.kind == "rewrite"]
    assert expansions and all(len(s.rules) == 1 for s in expansions + rewrites)
    cited = {s.rules[0] for s in expansions}
    names = {e.get("name") for e in registry.ops().values()}
    assert cited <= names | {"constant factor"}
    assert {"product rule", "log-softmax's differential", "sum rule"} <= cited
    assert {s.rules[0] for s in rewrites} <= {r.name for r in ir.rules()}


# ---------------------------------------------------------------------------
# Every form of every derivation, checked numerically: dL = Σ tr(Gᵀ dZ) over
# the terms a step shows, each dZ the directional difference of Z's value
# along a random direction of the variable, against the directional
# difference of the function itself (the reference interpreter's value).
# Every rewrite step, checked numerically: its two sides at random points.

from matdiff import reference
from matdiff.check import random_inputs
from matdiff.evaluate import evaluate
from matdiff.engine import Problem
from matdiff.numpy_emit import py_name
from matdiff.steps import derive_steps, STEP_RULES, _TextPrinter, _LatexPrinter
from matdiff.printing import LatexPrinter, Printer
from matdiff.diff import topo_order
from matdiff.ops import registry
from matdiff import ir

MISSION = ("-tr(Y^T log softmax(XW+b))", ["W", "b"], {"Y": "onehot"})
SEED_000 = ("A1 = W1 x; H1 = σ(A1); A2 = W2 H1; H2 = σ(A2); A3 = W3 H2; H3 = σ(A3); "
            "A4 = W4 H3; L = -y^T log softmax(A4)")
SEED_001 = "Z = X W + b; L = sum(Z .* G)"
SEED_002 = ("Z1 = X W1 + b1; H1 = relu(Z1); Z2 = H1 W2 + b2; "
            "L = -tr(Y^T log softmax(Z2)) / N + λ (sum(W1 .^ 2) + sum(W2 .^ 2))")
SEED_002_SIGMOID = ("Z1 = X W1 + b1; H1 = σ(Z1); Z2 = H1 W2 + b2\n"
                    "L = -tr(Y^T log softmax(Z2))/N + λ(‖W1‖_F^2 + ‖W2‖_F^2)")
SEED_003 = "z1 = W1 a0 + b1; a1 = σ(z1); z2 = W2 a1 + b2; a2 = σ(z2); C = ‖a2 - y‖^2 / 2"
SEED_004 = "Z1 = W1 x + b1; H1 = tanh(Z1); Z2 = W2 H1 + b2; R = sum((Z2 - y) .^ 2) / 2"

# the mission example and each seed's network
SEED_NETWORKS = [
    MISSION,
    (SEED_000, ["W1", "W3", "x"], {"y": "onehot"}),
    (SEED_001, ["W", "b"], {}),
    (SEED_002, ["W1", "b1", "W2", "b2"], {"Y": "onehot"}),
    (SEED_002_SIGMOID, ["W1", "b1", "W2", "b2"], {"Y": "onehot", "X": "matrix(N,D)"}),
    (SEED_003, ["W1", "b1", "W2"], {}),
    (SEED_004, ["W1", "b1", "W2"], {}),
]

STEP_CASES = SEED_NETWORKS + [
    ("Z = X W + b; L = -tr(Y^T log softmax(Z))", ["W", "b"], {"Y": "onehot"}),
    ("x^T A x", ["x"], {}),
    ("sum(σ(X W))", ["W"], {}),
    ("logdet(S) + tr(inv(S) A)", ["S"], {"S": "spd"}),
    ("‖X W − Y‖^2 + λ ‖W‖^2", ["W"], {}),
    ("sum(exp(X) .* log(1 + X .^ 2)) + a^T tanh(X b)", ["X", "b"], {}),
    ("softplus(u)^T v + det(M) * tr(M)", ["u", "M"], {}),
    ("sum(log_softmax(a) .* y)", ["a"], {}),
    ("sum(softmax(X W) .* Y)", ["W"], {}),
    ("sum(((X - mean(X, 1)) ./ sqrt(var(X, 1) + 1)) .* G)", ["X"], {}),
    ("tr(S A S) + x' S x", ["S", "x"], {"S": "symmetric"}),
]
IDS = [c[0][:40] for c in STEP_CASES]


def _directional(value, arrays, name, direction, h=1e-6):
    plus = dict(arrays, **{name: arrays[name] + h * direction})
    minus = dict(arrays, **{name: arrays[name] - h * direction})
    return (np.asarray(value(plus), float) - np.asarray(value(minus), float)) / (2 * h)


def _arrays(problem, rng):
    """Random data of the declared kinds, every dimension a different size,
    keyed by variable name."""
    by_param = random_inputs(problem, rng)
    return {n: by_param[py_name(n)] for n in problem.variables}


@pytest.mark.parametrize("expr,wrt,vars", STEP_CASES, ids=IDS)
def test_every_step_holds_numerically(expr, wrt, vars):
    r = Result(expr, wrt, vars)
    rng = np.random.default_rng(11)
    arrays = _arrays(r.problem, rng)
    context = tuple(r.problem.variables.values())
    total = lambda a: reference.evaluate(expr, a, vars)  # noqa: E731
    steps = derive_steps(r).steps
    checked = 0
    w = None
    for s in steps:
        if s.kind == "header":
            w = s.text.split("with respect to ", 1)[1].rstrip(":")
            direction = rng.standard_normal(np.shape(arrays[w]))
            kind = r.problem.variables[w].attr[1] if w in r.problem.variables else None
            if kind in ("symmetric", "spd"):
                direction = direction + direction.T  # the gradient holds on symmetric directions
            want = float(_directional(total, arrays, w, direction))
        if s.terms is None or w is None:
            continue
        if s.kind == "adjoint":
            continue  # ∂L/∂Z is checked by the form steps around it
        got = 0.0
        for node, G in s.terms:
            dz = _directional(lambda a: evaluate(node, a, context), arrays, w, direction)
            g = np.asarray(evaluate(G, arrays, context), float)
            got += float(np.sum(np.broadcast_to(g, dz.shape) * dz)) if g.size > 1 or dz.size > 1 \
                else float(g * dz)
        assert got == pytest.approx(want, rel=1e-5, abs=1e-7), (s.text, got, want)
        checked += 1
    assert checked >= 2 * len(wrt)


def _rewrites_hold(r, steps, seeds=(5, 6)):
    """Both sides of every rewrite step agree at random points (of the kinds
    declared: one-hot rows, symmetric, SPD); returns how many were checked."""
    context = tuple(r.problem.variables.values())
    rewrites = [s for s in steps if s.kind == "rewrite"]
    for seed in seeds:
        arrays = _arrays(r.problem, np.random.default_rng(seed))
        for s in rewrites:
            before, after = s.nodes
            assert before.shape == after.shape, s.text
            b = np.asarray(evaluate(before, arrays, context), float)
            a = np.asarray(evaluate(after, arrays, context), float)
            assert np.allclose(np.broadcast_to(b, np.broadcast_shapes(b.shape, a.shape)), a,
                               rtol=1e-8, atol=1e-10), s.text
    return len(rewrites)


@pytest.mark.parametrize("expr,wrt,vars", STEP_CASES, ids=IDS)
def test_every_rewrite_step_holds_numerically(expr, wrt, vars):
    r = Result(expr, wrt, vars)
    _rewrites_hold(r, derive_steps(r).steps)


def test_rewrite_steps_hold_on_random_programs():
    """The fuzzer's programs: the steps derive, and every rewrite step they
    show is an identity at random points."""
    import fuzz_programs as F
    from matdiff.errors import MatdiffError
    shown = 0
    for seed in range(60):
        p = F.generate(seed)
        try:
            r = Result(F.canonical_text(p), list(p.wrt), dict(p.decls))
        except MatdiffError:
            continue
        steps = derive_steps(r).steps
        try:
            shown += _rewrites_hold(r, steps, seeds=(seed,))
        except MatdiffError:  # a size no input array shows (vec, kron): not evaluable here
            continue
    assert shown >= 20


def _known_rule_names():
    names = set(STEP_RULES)
    for entry in registry.ops().values():
        for key in ("name", "moves", "moves_broadcast"):
            if key in entry:
                names.add(entry[key])
    return names


@pytest.mark.parametrize("expr,wrt,vars", STEP_CASES, ids=IDS)
def test_every_step_cites_a_known_identity(expr, wrt, vars):
    known = _known_rule_names()
    table = {r.name for r in ir.rules()}
    steps = derive_steps(Result(expr, wrt, vars)).steps
    for s in steps:
        if s.kind == "rewrite":  # one named rewrite of the table, its two nodes kept
            assert len(s.rules) == 1 and s.rules[0] in table, s.rules
            assert s.nodes is not None and s.nodes[0] is not s.nodes[1]
            continue
        for name in s.rules:
            # an element-wise function's chain rule names it: "chain rule through σ"
            assert name in known or name.startswith("chain rule through ") \
                or name.startswith("backprop: the adjoint of the intermediate "), name
    # every step after a derivation's first form cites something, but for a
    # form reached by the rewrite steps just above it
    for prev, s in zip(steps, steps[1:]):
        if s.kind in ("rule", "result", "adjoint", "rewrite") or (
                s.kind == "form" and prev.kind not in ("header", "rewrite")):
            assert s.rules, s.text
        if s.kind == "rewrite":
            assert prev.kind in ("form", "rewrite"), s.text  # it rewrites a form shown above


@pytest.mark.parametrize("expr,wrt,vars", SEED_NETWORKS, ids=[c[0][:40] for c in SEED_NETWORKS])
def test_every_rule_that_fired_has_its_own_step(expr, wrt, vars):
    """The mission example and each seed's network: every named rewrite that
    fires while the gradients are derived is a rewrite step of its own."""
    r = Result(expr, wrt, vars)
    with ir.trace_rewrites() as fired:
        r.problem.gradients(wrt)
    steps = derive_steps(r).steps
    assert set(fired) <= {s.rules[0] for s in steps if s.kind == "rewrite"}
    # each distinct change once per block of rewrite steps
    run = []
    for s in steps + [None]:
        if s is not None and s.kind == "rewrite":
            run.append((s.rules[0], s.nodes))
            continue
        assert len(run) == len(set(run)), run
        run = []


def test_the_mission_example_shows_the_one_hot_row_sum():
    """Y𝟙 = 𝟙 is a step of its own, between the form the log-softmax
    pullback gives (with Y𝟙 in it) and the textbook form."""
    r = Result(*MISSION)
    steps = derive_steps(r).steps
    k = next(i for i, s in enumerate(steps) if s.rules == ("one-hot rows sum to one: Y𝟙 = 𝟙",))
    before, after = steps[k].nodes
    Y = r.problem.variables["Y"]
    assert before.op == "matmul" and before.args[0] is Y and ir.is_ones_matrix(before.args[1])
    assert after is ir.ones(Y.rows)
    raw = steps[k - 1]
    assert raw.kind == "form" and raw.rules == ("Frobenius/Hadamard identity and row sums",)
    assert any(before in topo_order(g) for _, g in raw.terms)
    end = next(s for s in steps[k:] if s.kind == "form")
    assert not end.rules and all(before not in topo_order(g) for _, g in end.terms)
    assert [s.kind for s in steps[k - 1:steps.index(end) + 1]].count("form") == 2


def test_a_rule_firing_many_times_shows_once():
    """The trace records every firing with its nodes; the steps show each
    distinct change once, in the order the rules fired."""
    from matdiff.steps import _rewrite_steps, _Style
    Y = ir.var("Y", "onehot", ("N", "C"))
    Z = ir.var("Z", "matrix", ("C", "C"))
    with ir.trace_rewrites() as fired:
        for _ in range(30):
            ir.matmul(Y, ir.ones("C"))
        ir.apply("diag", (ir.ones("N"),), ("N", "N"))
        ir.matmul(ir.inv(Z), Z)
    assert len(fired) == 32 and all(f.before is not None and f.after is not None for f in fired)
    text, latex = _Style(_TextPrinter(), Printer(), False), _Style(_LatexPrinter(), Printer(), True)
    steps = _rewrite_steps(fired, text, latex)
    assert [s.rules[0] for s in steps] == [fired[0], fired[30], fired[31]]
    assert [s.nodes for s in steps] == [(f.before, f.after) for f in (fired[0], fired[30], fired[31])]


# ---------------------------------------------------------------------------
# Broadcasts in differentials: a scalar term of a vector or matrix sum shows
# its 𝟙 (da − 𝟙softmax(a)ᵀda), and reads back to the same numbers.

def _broadcast_cases():
    a = ir.var("a", "vector", ("n", 1))
    u = ir.var("u", "vector", ("m", 1))
    X = ir.var("X", "matrix", ("m", "n"))
    s = ir.matmul(ir.transpose(ir.apply("softmax", (a,), a.shape)), a)  # softmax(a)ᵀa
    t = ir.apply("tr", (ir.matmul(ir.transpose(X), X),), (1, 1))        # tr(XᵀX)
    row = ir.transpose(a)
    return [
        ir.add(a, ir.neg(s)),              # a − 𝟙softmax(a)ᵀa
        ir.add(X, ir.scale(2, t)),         # X + 2tr(XᵀX)𝟙𝟙ᵀ
        ir.add(row, s, ir.num(1)),         # aᵀ + softmax(a)ᵀa𝟙ᵀ + 1
        ir.add(X, ir.neg(ir.matmul(ir.transpose(u), X, a))),  # X − 𝟙uᵀXa𝟙ᵀ
    ]


def _bare_scalar_terms(node):
    """Sums in node that add a scalar depending on a variable to an array."""
    return [n for n in topo_order(node) if n.op == "add" and not n.is_scalar
            and any(t.is_scalar and any(m.op == "var" for m in topo_order(t)) for t in n.args)]


@pytest.mark.parametrize("k", range(4))
def test_differentials_print_their_broadcasts(k):
    node = _broadcast_cases()[k]
    assert _bare_scalar_terms(node)  # the IR adds the scalar bare
    text = _TextPrinter()(node)
    names = {v.attr[0]: v.attr[1] for v in topo_order(node) if v.op == "var"}
    back = Problem(text, [f"{n}:{kind}" for n, kind in names.items()]).root
    assert not _bare_scalar_terms(back)  # read back, every broadcast is explicit
    rng = np.random.default_rng(k)
    sizes = {"n": 4, "m": 3}
    arrays = {v.attr[0]: rng.standard_normal(tuple(sizes.get(d, d) for d in v.shape if d != 1))
              for v in topo_order(node) if v.op == "var"}
    want = np.asarray(evaluate(node, arrays), float)
    got = np.asarray(reference.evaluate(text, arrays, names), float)
    assert np.allclose(np.broadcast_to(want, got.shape), got)


def test_numbers_added_to_arrays_stay_bare():
    """1 − σ(z) is how a textbook writes σ′: no 𝟙 for a number."""
    z = ir.var("z", "vector", ("n", 1))
    one_minus = ir.add(ir.num(1), ir.neg(ir.fn("sigmoid", z)))
    assert _TextPrinter()(one_minus) == Printer()(one_minus)
    assert _LatexPrinter()(one_minus) == LatexPrinter()(one_minus)


def test_vector_log_softmax_differential_shows_the_broadcast():
    """d(log_softmax(a)) = da − 𝟙softmax(a)ᵀda, in text and in LaTeX; the
    gradient printed is the one `grad` prints."""
    r = Result("sum(log_softmax(a) .* y)", ["a"], {})
    d = derive_steps(r)
    rule = next(s for s in d.steps if s.rules == ("log-softmax's differential",))
    lhs, rhs = rule.text.split(" = ")
    assert rhs.split(" − ", 1)[1].startswith("𝟙")
    assert "\\mathbf{1}\\operatorname{softmax}" in rule.latex
    assert d.steps[-1].text == f"∂L/∂a = {r.gradient('a').text}"


def test_derivation_ends_at_the_gradient_in_every_case():
    """The ∂L/∂X lines are the gradients as `grad --inline` prints them."""
    for expr, wrt, vars in STEP_CASES:
        r = Result(expr, wrt, vars)
        results = [s for s in derive_steps(r).steps if s.kind == "result"]
        bodies, _ = r.printout(inline=True)
        assert [s.text for s in results] == [f"∂L/∂{w} = {b}" for w, b in zip(wrt, bodies)]


def test_programs_walk_backwards_one_block_per_intermediate():
    steps = derive_steps(Result(SEED_002, ["W1"], {"Y": "onehot"})).steps
    adj = [s.text.split(" = ")[0] for s in steps if s.kind == "adjoint"]
    assert adj == ["∂L/∂Z2", "∂L/∂H1", "∂L/∂Z1"]


def test_latex_steps_have_a_row_per_step():
    for expr, wrt, vars in [("x^T A x", ["x"], {}), MISSION]:
        d = derive_steps(Result(expr, wrt, vars))
        tex = d.latex()
        assert tex.startswith("\\begin{aligned}") and tex.rstrip().endswith("\\end{aligned}")
        rows = tex[len("\\begin{aligned}\n"):-len("\n\\end{aligned}")].split(" \\\\\n")
        assert len(rows) == len(d.steps)
        for row, s in zip(rows, d.steps):
            assert row.startswith("&\\quad ") == (s.kind in ("rule", "rewrite"))
            for name in s.rules:
                assert f"\\text{{({'; '.join(s.rules)})}}" in row
        assert d._repr_latex_() == "$$" + tex + "$$"
