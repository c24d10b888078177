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
    """Every expansion step cites the identity of its op's rule entry."""
    from matdiff.ops import registry
    r = Result("-tr(Y^T log softmax(XW+b))", ["W"], {"Y": "onehot"})
    steps = [ln for ln in derivation(r, "L").splitlines() if ln.startswith("    d")]
    assert steps and all(ln.rstrip().endswith("]") for ln in steps)
    cited = {ln.rsplit("[", 1)[1].rstrip("]") for ln in steps}
    names = {e.get("name") for e in registry.ops().values()}
    assert cited <= names | {"constant factor"}
    assert {"product rule", "log-softmax's differential", "sum rule"} <= cited


# ---------------------------------------------------------------------------
# Every form of every derivation, checked numerically: dL = Σ tr(Gᵀ dZ) over
# the terms a step shows, each dZ the directional difference of Z's value
# along a random direction of the variable, against the directional
# difference of the function itself (the reference interpreter's value).

from matdiff import reference
from matdiff.check import random_inputs
from matdiff.evaluate import evaluate
from matdiff.steps import derive_steps
from matdiff.ops import registry
from matdiff import ir

SEED_000 = ("A1 = W1 x; H1 = σ(A1); A2 = W2 H1; H2 = σ(A2); A3 = W3 H2; H3 = σ(A3); "
            "A4 = W4 H3; L = -y^T log softmax(A4)")
SEED_002 = ("Z1 = X W1 + b1; H1 = relu(Z1); Z2 = H1 W2 + b2; "
            "L = -tr(Y^T log softmax(Z2)) / N + λ (sum(W1 .^ 2) + sum(W2 .^ 2))")
SEED_004 = "Z1 = W1 x + b1; H1 = tanh(Z1); Z2 = W2 H1 + b2; R = sum((Z2 - y) .^ 2) / 2"

STEP_CASES = [
    ("-tr(Y^T log softmax(XW+b))", ["W", "b"], {"Y": "onehot"}),
    ("Z = X W + b; L = -tr(Y^T log softmax(Z))", ["W", "b"], {"Y": "onehot"}),
    ("x^T A x", ["x"], {}),
    ("sum(σ(X W))", ["W"], {}),
    ("logdet(S) + tr(inv(S) A)", ["S"], {"S": "spd"}),
    ("‖X W − Y‖^2 + λ ‖W‖^2", ["W"], {}),
    (SEED_000, ["W1", "W3", "x"], {"y": "onehot"}),
    (SEED_002, ["W1", "b1", "W2", "b2"], {"Y": "onehot"}),
    (SEED_004, ["W1", "b1", "W2"], {}),
    ("sum(exp(X) .* log(1 + X .^ 2)) + a^T tanh(X b)", ["X", "b"], {}),
    ("softplus(u)^T v + det(M) * tr(M)", ["u", "M"], {}),
]


def _directional(value, arrays, name, direction, h=1e-6):
    plus = dict(arrays, **{name: arrays[name] + h * direction})
    minus = dict(arrays, **{name: arrays[name] - h * direction})
    return (np.asarray(value(plus), float) - np.asarray(value(minus), float)) / (2 * h)


def _sizes(problem):
    return {d: s for d, s in zip(sorted({str(x) for v in problem.variables.values()
                                         for x in v.shape if not isinstance(x, int)}),
                                 [3, 4, 5, 6, 7, 8, 9, 10, 11])}


@pytest.mark.parametrize("expr,wrt,vars", STEP_CASES, ids=[c[0][:40] for c in STEP_CASES])
def test_every_step_holds_numerically(expr, wrt, vars):
    r = Result(expr, wrt, vars)
    rng = np.random.default_rng(11)
    arrays = random_inputs(r.problem, rng)
    context = tuple(r.problem.variables.values())
    total = lambda a: reference.evaluate(expr, a, vars)  # noqa: E731
    steps = derive_steps(r).steps
    checked = 0
    w = None
    for s in steps:
        if s.kind == "header":
            w = s.text.split("with respect to ", 1)[1].rstrip(":")
            direction = rng.standard_normal(np.shape(arrays[w]))
            if r.problem.variables[w].attr[1] in ("symmetric", "spd"):
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


def _known_rule_names():
    names = {"constant factor", "linearity", "the op's differential",
             "dL = tr(Gᵀ dX) reads off ∂L/∂X = G", "the gradient's transpose: (AB)ᵀ = BᵀAᵀ",
             "the gradient read as one factor"}
    for entry in registry.ops().values():
        for key in ("name", "moves", "moves_broadcast"):
            if key in entry:
                names.add(entry[key])
    names |= {r.name for r in ir.rules()}
    return names


@pytest.mark.parametrize("expr,wrt,vars", STEP_CASES, ids=[c[0][:40] for c in STEP_CASES])
def test_every_step_cites_a_known_identity(expr, wrt, vars):
    known = _known_rule_names()
    steps = derive_steps(Result(expr, wrt, vars)).steps
    for s in steps:
        if s.kind in ("function", "header"):
            continue
        if s.kind == "form" and s.text.count("=") == 1 and s is steps[steps.index(s) - 1]:
            continue
        for name in s.rules:
            # an element-wise function's chain rule names it: "chain rule through σ"
            assert name in known or name.startswith("chain rule through ") \
                or name.startswith("backprop: the adjoint of the intermediate "), name
    # every step after a derivation's first form cites something
    for prev, s in zip(steps, steps[1:]):
        if s.kind in ("rule", "result", "adjoint") or (s.kind == "form" and prev.kind != "header"):
            assert s.rules, s.text


def test_the_mission_example_cites_the_one_hot_row_sum():
    text = derive_steps(Result("-tr(Y^T log softmax(XW+b))", ["W"], {"Y": "onehot"})).text()
    assert "one-hot rows sum to one: Y𝟙 = 𝟙" in text
    assert "log-softmax's differential" in text and "cyclic trace" in text


def test_programs_walk_backwards_one_block_per_intermediate():
    steps = derive_steps(Result(SEED_002, ["W1"], {"Y": "onehot"})).steps
    adj = [s.text.split(" = ")[0] for s in steps if s.kind == "adjoint"]
    assert adj == ["∂L/∂Z2", "∂L/∂H1", "∂L/∂Z1"]


def test_latex_steps_have_a_row_per_step():
    d = derive_steps(Result("x^T A x", ["x"], {}))
    tex = d.latex()
    assert tex.startswith("\\begin{aligned}") and tex.rstrip().endswith("\\end{aligned}")
    assert tex.count("\\\\\n") == len(d.steps) - 1
    assert d._repr_latex_().startswith("$$")
