"""Every rule of rules/ops.toml and rules/elementwise.toml, checked numerically.

For each op (each vector/matrix variant, each argument; n-ary ops with 2 and
3 arguments, a scalar among them for add/mul) a node F is built from
variables of random shapes whose dimensions are all different, and at random
G (the output's shape) and dX (the argument's shape):

  adjoint      ⟨G, dF[dX]⟩ = ⟨pullback(G), dX⟩, both rules instantiated as IR;
  pullback     the pullback against central differences of ⟨G, F(X)⟩ in X;
  differential dF[dX] against (F(X + h dX) - F(X - h dX)) / 2h.

Element-wise functions get the same checks through fn(f, x) for a vector and
a matrix x, plus their `numpy` column against an independent NumPy reference
and their `derivative` against central differences of that column.

The cases are generated from the rule files: a new op without an entry in
OP_CASES fails test_every_op_has_cases; a new element-wise function is
checked automatically (on inputs away from 0, or positive if listed in
POSITIVE).
"""

import zlib

import math

import numpy as np
import pytest

from matdiff import ir
from matdiff.ops import registry
from matdiff import templates
from matdiff.dims import product, size
from matdiff.diff import pullback, rule_env, topo_order
from matdiff.engine import shape_of
from matdiff.evaluate import evaluate

EPS = 1e-6      # central-difference step
RTOL = 1e-6     # finite differences vs rules
ADJ_RTOL = 1e-9  # the adjoint identity is exact up to rounding

# Every dimension has its own size, so a transposed or mis-ordered product
# cannot pass by accident.
SIZES = {"m": 3, "n": 4, "k": 5, "q": 6}


# -- argument specifications ---------------------------------------------------

class Arg:
    """A variable argument: IR kind, shape (dimension names) and value domain.

    domain: normal | positive (0.5..2) | nonzero (|x| >= 0.3) |
            spd | wellcond (square, det > 0) | negdet (square, det < 0)
    """

    def __init__(self, kind, shape, domain="normal"):
        self.kind, self.shape, self.domain = kind, shape, domain


def M(r, c, domain="normal"):
    return Arg("matrix", (r, c), domain)


def V(n, domain="normal"):
    return Arg("vector", (n, 1), domain)


def Row(n, domain="normal"):
    return Arg("matrix", (1, n), domain)


def S(domain="normal"):
    return Arg("scalar", (1, 1), domain)


def SPD(n):
    return Arg("spd", (n, n), "spd")


def SQ(n, domain="wellcond"):
    return Arg("matrix", (n, n), domain)


def power_of(p):
    return lambda x: ir.power(x, ir.num(p))


# op -> [(case id, builder(*vars) -> node, [Arg, ...])]
OP_CASES = {
    "add": [
        ("mat+mat", ir.add, [M("m", "n"), M("m", "n")]),
        ("mat+mat+mat", ir.add, [M("m", "n"), M("m", "n"), M("m", "n")]),
        ("mat+mat+scalar", ir.add, [M("m", "n"), M("m", "n"), S()]),
        ("vec+vec+vec", ir.add, [V("n"), V("n"), V("n")]),
        ("vec+scalar", ir.add, [V("n"), S()]),
        ("row+row", ir.add, [Row("n"), Row("n")]),
        ("scalar+scalar", ir.add, [S(), S()]),
    ],
    "mul": [
        ("mat*mat", ir.mul, [M("m", "n"), M("m", "n")]),
        ("mat*mat*mat", ir.mul, [M("m", "n"), M("m", "n"), M("m", "n")]),
        ("scalar*mat", ir.mul, [S(), M("m", "n")]),
        ("scalar*mat*mat", ir.mul, [S(), M("m", "n"), M("m", "n")]),
        ("vec*vec*vec", ir.mul, [V("n"), V("n"), V("n")]),
        ("scalar*vec", ir.mul, [S(), V("n")]),
        ("row*row", ir.mul, [Row("n"), Row("n")]),
        ("scalar*scalar", ir.mul, [S(), S()]),
    ],
    "matmul": [
        ("mat@mat", ir.matmul, [M("m", "n"), M("n", "k")]),
        ("mat@mat@mat", ir.matmul, [M("m", "n"), M("n", "k"), M("k", "q")]),
        ("mat@vec", ir.matmul, [M("m", "n"), V("n")]),
        ("row@mat", ir.matmul, [Row("m"), M("m", "n")]),
        ("row@mat@vec", ir.matmul, [Row("m"), M("m", "n"), V("n")]),
        ("vec@row", ir.matmul, [V("m"), Row("n")]),
        ("vec@row@mat", ir.matmul, [V("m"), Row("n"), M("n", "k")]),
        ("row@vec", ir.matmul, [Row("n"), V("n")]),
    ],
    "pow": [
        ("mat.^p", ir.power, [M("m", "n", "positive"), S()]),
        ("vec.^p", ir.power, [V("n", "positive"), S()]),
        ("scalar.^p", ir.power, [S("positive"), S()]),
        ("mat.^3", power_of(3), [M("m", "n")]),
        ("vec.^2", power_of(2), [V("n")]),
        ("mat.^-2", power_of(-2), [M("m", "n", "nonzero")]),
        ("mat.^0.5", power_of(ir.Fraction(1, 2)), [M("m", "n", "positive")]),
        ("vec.^-1.5", power_of(ir.Fraction(-3, 2)), [V("n", "positive")]),
        ("mat.^2.5(float)", power_of(2.5), [M("m", "n", "positive")]),
    ],
    "T": [
        ("mat", ir.transpose, [M("m", "n")]),
        ("vec", ir.transpose, [V("n")]),
        ("row", ir.transpose, [Row("n")]),
    ],
    "inv": [
        ("spd", ir.inv, [SPD("n")]),
        ("square", ir.inv, [SQ("n")]),
    ],
    "tr": [
        ("square", ir.tr, [SQ("n", "normal")]),
        ("spd", ir.tr, [SPD("n")]),
    ],
    "det": [
        ("spd", ir.det, [SPD("n")]),
        ("square", ir.det, [SQ("n")]),
        ("square-negdet", ir.det, [SQ("n", "negdet")]),
    ],
    "logdet": [
        ("spd", ir.logdet, [SPD("n")]),
        ("square", ir.logdet, [SQ("n")]),
        ("square-negdet", ir.logdet, [SQ("n", "negdet")]),
    ],
    "sum": [
        ("mat", ir.sum_, [M("m", "n")]),
        ("vec", ir.sum_, [V("n")]),
        ("row", ir.sum_, [Row("n")]),
    ],
    "norm": [
        ("mat", ir.norm, [M("m", "n")]),
        ("vec", ir.norm, [V("n")]),
        ("row", ir.norm, [Row("n")]),
    ],
    "diag": [
        ("vec", ir.diag, [V("n")]),
    ],
    "diagvec": [
        ("square", ir.diagvec, [SQ("n", "normal")]),
    ],
    "let": [
        ("mat", lambda x: ir.let("Z", x), [M("m", "n")]),
        ("vec", lambda x: ir.let("z", x), [V("n")]),
    ],
    "fn": [
        ("exp(mat)", lambda x: ir.fn("exp", x), [M("m", "n")]),
        ("tanh(vec)", lambda x: ir.fn("tanh", x), [V("n")]),
        # a parameter that is a variable: the rule for p (∂f/∂p)
        ("leaky_relu(mat,s)", lambda x, a: ir.fn("leaky_relu", x, a), [M("m", "n", "nonzero"), S()]),
        ("elu(mat,s)", lambda x, a: ir.fn("elu", x, a), [M("m", "n", "nonzero"), S()]),
        ("elu(vec,s)", lambda x, a: ir.fn("elu", x, a), [V("n", "nonzero"), S()]),
    ],  # every element-wise function: test_elementwise_rule below
    "softmax": [
        ("mat", ir.softmax, [M("m", "n")]),
        ("vec", ir.softmax, [V("n")]),
        ("row", ir.softmax, [Row("n")]),
    ],
    "log_softmax": [
        ("mat", ir.log_softmax, [M("m", "n")]),
        ("vec", ir.log_softmax, [V("n")]),
        ("row", ir.log_softmax, [Row("n")]),
    ],
    "logsumexp": [
        ("mat", ir.logsumexp, [M("m", "n")]),
        ("vec", ir.logsumexp, [V("n")]),
        ("row", ir.logsumexp, [Row("n")]),
    ],
    # sizes that are products (dims.Prod): column stacking and Kronecker products
    "vec": [
        ("mat", ir.vec, [M("m", "n")]),
    ],
    "unvec": [
        ("vec->mat", lambda g: ir.unvec(g, "m", "n"), [V(product("m", "n"))]),
        ("vec->mat(numbers)", lambda g: ir.unvec(g, 2, 3), [V(6)]),
    ],
    "kron": [
        ("mat⊗mat", ir.kron, [M("m", "n"), M("k", "q")]),
        ("mat⊗square", ir.kron, [M("m", "n"), SQ("k", "normal")]),
        ("vec⊗mat", ir.kron, [V("m"), M("n", "k")]),
        ("mat⊗vec", ir.kron, [M("m", "n"), V("k")]),
        ("vec⊗vec", ir.kron, [V("m"), V("n")]),
        ("row⊗mat", ir.kron, [Row("m"), M("n", "k")]),
        ("row⊗vec", ir.kron, [Row("m"), V("n")]),
    ],
}

KNOWN_BUGS = {}  # case id -> reason: runs as a non-strict xfail until fixed

# Element-wise functions defined only for positive inputs.
# Functions defined on positive arguments only: the rule table says so itself.
POSITIVE = {f for f, e in registry.elementwise().items() if e.get("domain") == "positive"}

# Independent NumPy references for the element-wise functions.
REFERENCES = {
    "exp": np.exp,
    "log": np.log,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "sqrt": lambda x: x ** 0.5,
    "abs": lambda x: np.where(x < 0, -x, x),
    "sign": lambda x: (x > 0).astype(float) - (x < 0).astype(float),
    "step": lambda x: (x > 0).astype(float),
    # written from their definitions, not from rules/elementwise.toml
    "log1p": lambda x: np.log(1.0 + x),
    "expm1": lambda x: np.exp(x) - 1.0,
    "erf": np.vectorize(math.erf, otypes=[float]),
    "gelu": lambda x: x * 0.5 * (1.0 + np.vectorize(math.erf, otypes=[float])(x / math.sqrt(2.0))),
    "gelu_tanh": lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3))),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "softsign": lambda x: x / (1.0 + np.where(x < 0, -x, x)),
    "sinh": lambda x: (np.exp(x) - np.exp(-x)) / 2.0,
    "cosh": lambda x: (np.exp(x) + np.exp(-x)) / 2.0,
    "square": lambda x: x * x,
    "reciprocal": lambda x: 1.0 / x,
    # with a parameter: f(x, α) at PARAMS' values
    "elu": lambda x, a: np.where(x > 0, x, a * (np.exp(np.minimum(x, 0.0)) - 1.0)),
    "leaky_relu": lambda x, a: np.where(x > 0, x, a * x),
}

# The constant parameter values of functions with parameters, in fn_cases.
PARAMS = {"alpha": 0.3}


def fn_node(fname, x):
    """f(x), with the parameters of f (if any) at PARAMS' values."""
    return ir.fn(fname, x, *[ir.num(ir.Fraction(PARAMS[p]).limit_denominator(1000))
                             for p in registry.params(fname)])


def reference(fname, a):
    return REFERENCES[fname](a, *[PARAMS[p] for p in registry.params(fname)])


# -- building cases --------------------------------------------------------------

def make_vars(args, prefix="X"):
    names = [prefix] if len(args) == 1 else [f"{prefix}{i + 1}" for i in range(len(args))]
    return [ir.var(name, a.kind, a.shape) for name, a in zip(names, args)]


def kind_of(shape):
    if shape == (1, 1):
        return "scalar"
    return "vector" if shape[1] == 1 else "matrix"


def variant(node):
    """Which table of the op's entry the engine applies: vector, matrix or the entry."""
    rule, entry = registry.op_rule(node)
    for name in ("vector", "matrix"):
        if entry.get(name) is rule:
            return name
    return "-"


def op_cases():
    """(id, node, i, {var name: Arg}) for each variable argument i of each case."""
    out = []
    for op, cases in OP_CASES.items():
        for cid, build, args in cases:
            vars_ = make_vars(args)
            node = build(*vars_)
            domains = {v.attr[0]: a for v, a in zip(vars_, args)}
            for i, a in enumerate(node.args):
                if a.op == "var":
                    name = registry.arg_names(node)[i]
                    out.append((f"{op}-{cid}-arg{i}:{name}={a.attr[0]}", node, i, domains, op))
    return out


def fn_cases():
    out = []
    for fname in registry.elementwise():
        domain = "positive" if fname in POSITIVE else "nonzero"
        for label, arg in (("vec", V("n", domain)), ("mat", M("m", "n", domain)),
                           ("row", Row("n", domain))):
            x = ir.var("x", arg.kind, arg.shape)
            out.append((f"fn-{fname}({label})", fn_node(fname, x), 0, {"x": arg}, "fn"))
    return out


def seed(text):
    return zlib.crc32(text.encode())


def random_value(arg, rng):
    shape = [size(d, SIZES) for d in shape_of(ir.var("_", arg.kind, arg.shape))]
    d = arg.domain
    if d == "normal":
        a = rng.standard_normal(shape)
    elif d == "positive":
        a = rng.uniform(0.5, 2.0, size=shape)
    elif d == "nonzero":
        a = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.3, 1.5, size=shape)
    elif d == "spd":
        n = shape[0]
        m = rng.standard_normal(shape)
        a = m @ m.T / n + np.eye(n)
    elif d in ("wellcond", "negdet"):
        n = shape[0]
        a = rng.standard_normal(shape) / (2 * np.sqrt(n)) + np.eye(n)
        if d == "negdet":
            a[0] = -a[0]
    else:
        raise ValueError(d)
    return float(a) if shape == [] else a


def dvar(name, shape):
    return ir.var(name, kind_of(shape), shape)


def normal_like(node, rng):
    return random_value(Arg(kind_of(node.shape), node.shape), rng)


# -- numeric helpers -------------------------------------------------------------

def inner(a, b):
    return float(np.sum(np.asarray(a, float) * np.asarray(b, float)))


def rel_err(got, want):
    got, want = np.asarray(got, float), np.asarray(want, float)
    got = np.broadcast_to(got, want.shape)
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 0.0)
    return float(np.max(np.abs(got - want))) / scale if want.size else 0.0


def perturbed(arrays, name, delta):
    return {**arrays, name: arrays[name] + delta}


def fd_gradient(f, arrays, name):
    """Central differences of the scalar f(arrays) in each entry of arrays[name]."""
    x = arrays[name]
    if np.ndim(x) == 0:
        return (f(perturbed(arrays, name, EPS)) - f(perturbed(arrays, name, -EPS))) / (2 * EPS)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = EPS
        g[idx] = (f(perturbed(arrays, name, e)) - f(perturbed(arrays, name, -e))) / (2 * EPS)
    return g


# -- the three checks ------------------------------------------------------------

def check_rule(cid, node, i, domains):
    """Adjoint identity, pullback vs FD, differential vs FD for argument i of node."""
    rng = np.random.default_rng(seed(cid))
    arg = node.args[i]
    xname = arg.attr[0]
    arrays = {name: random_value(a, rng) for name, a in domains.items()}

    G = dvar("G_", node.shape)
    dX = dvar("dX_", arg.shape)
    arrays["G_"] = normal_like(node, rng)
    arrays["dX_"] = normal_like(arg, rng)

    rule, _ = registry.op_rule(node)
    env, argname = rule_env(node, i)
    text = rule["differential"][argname]
    dF = templates.instantiate(text, {**env, "d" + argname: dX})
    pb = pullback(node, i, G)

    # The rules' shapes: the pullback has the argument's shape; the
    # differential the output's (a scalar argument's may stay a broadcast scalar).
    assert pb.shape == arg.shape, f"pullback shape {pb.shape}, argument {arg.shape}"
    assert dF.shape == node.shape or (arg.is_scalar and dF.is_scalar), \
        f"differential shape {dF.shape}, output {node.shape}"

    # Dimensions a rule's result does not show (tr's pullback G·I, the sizes m
    # and n of unvec(g, m, n) with g of m·n entries) come from the case's
    # variables and G, dX.
    ctx = tuple(n for n in topo_order(node) if n.op == "var") + (G, dX)
    F = evaluate(node, arrays, ctx)
    assert np.all(np.isfinite(F)), "F is not finite at the test point"
    dF_val = evaluate(dF, arrays, ctx)
    pb_val = evaluate(pb, arrays, ctx)
    assert np.shape(dF_val) in (np.shape(F), ()), f"evaluated differential {dF!r} has shape {np.shape(dF_val)}"
    assert np.shape(pb_val) == np.shape(arrays[xname]), \
        f"evaluated pullback {pb!r} has shape {np.shape(pb_val)}, argument {np.shape(arrays[xname])}"
    dF_val = np.broadcast_to(dF_val, np.shape(F))

    # (a) adjoint identity ⟨G, dF[dX]⟩ = ⟨pullback(G), dX⟩
    lhs, rhs = inner(arrays["G_"], dF_val), inner(pb_val, arrays["dX_"])
    assert abs(lhs - rhs) <= ADJ_RTOL * max(1.0, abs(lhs), abs(rhs)), \
        f"adjoint: ⟨G, dF⟩ = {lhs!r} but ⟨pullback, dX⟩ = {rhs!r}\n  dF = {dF!r}\n  pullback = {pb!r}"

    # (b) the pullback against central differences of ⟨G, F(X)⟩
    fd = fd_gradient(lambda a: inner(arrays["G_"], evaluate(node, a, ctx)), arrays, xname)
    err = rel_err(pb_val, fd)
    assert err <= RTOL, f"pullback {pb!r} vs finite differences: relative error {err:.2e}"

    # (c) the differential against (F(X + h dX) - F(X - h dX)) / 2h
    h = EPS
    fd_dir = (np.asarray(evaluate(node, perturbed(arrays, xname, h * arrays["dX_"]), ctx))
              - np.asarray(evaluate(node, perturbed(arrays, xname, -h * arrays["dX_"]), ctx))) / (2 * h)
    err = rel_err(dF_val, fd_dir)
    assert err <= RTOL, f"differential {dF!r} vs finite differences: relative error {err:.2e}"


OPS = op_cases()
FNS = fn_cases()


def _param(case):
    cid = case[0]
    marks = [pytest.mark.xfail(reason=KNOWN_BUGS[cid], strict=False)] if cid in KNOWN_BUGS else []
    return pytest.param(*case, id=cid, marks=marks)


@pytest.mark.parametrize("cid,node,i,domains,op", [_param(c) for c in OPS])
def test_op_rule(cid, node, i, domains, op):
    assert node.op == op, f"the constructor rewrote the case into {node!r}"
    check_rule(cid, node, i, domains)


@pytest.mark.parametrize("cid,node,i,domains,op", [_param(c) for c in FNS])
def test_elementwise_rule(cid, node, i, domains, op):
    assert node.op == "fn"
    check_rule(cid, node, i, domains)


# -- coverage of the rule files --------------------------------------------------

@pytest.mark.parametrize("op", sorted(o for o, e in registry.ops().items() if not e.get("macro")))
def test_every_op_has_cases(op):
    """Every op, every vector/matrix variant and every named argument is exercised."""
    entry = registry.ops()[op]
    assert OP_CASES.get(op), f"no test cases for the op {op!r} of rules/ops.toml: add them to OP_CASES"
    tables = [v for v in ("vector", "matrix") if v in entry] or ["-"]
    seen_variants = {variant(node) for _, node, _, _, o in OPS if o == op}
    assert set(tables) <= seen_variants, f"{op}: variants {set(tables) - seen_variants} untested"
    for t in tables:
        rule = entry if t == "-" else entry[t]
        assert set(rule["pullback"]) == set(rule["differential"]), \
            f"{op}/{t}: pullback and differential name different arguments"
        names = entry["args"]
        expected = {"X"} if names == "*" else set(names)
        assert set(rule["pullback"]) == expected, f"{op}/{t}: rules for {set(rule['pullback'])}, args {expected}"
        seen_args = {registry.arg_names(node)[i] for _, node, i, _, o in OPS
                     if o == op and variant(node) == t}
        assert expected <= seen_args, f"{op}/{t}: arguments {expected - seen_args} untested"


@pytest.mark.parametrize("op", sorted(o for o, e in registry.ops().items() if e.get("macro")))
def test_macro_entry(op):
    """A macro (mean, var) is built from other IR nodes: it has the front end's
    keys and no rule of its own; no IR node carries its name."""
    entry = registry.ops()[op]
    assert entry.get("spell") and entry.get("shape") and entry.get("build")
    assert not {"differential", "pullback", "vector", "matrix", "text"} & set(entry)


@pytest.mark.parametrize("fname", sorted(registry.elementwise()))
def test_elementwise_entry(fname):
    """Aliases resolve, the derivative parses, and cases exist for the function."""
    entry = registry.elementwise()[fname]
    assert "derivative" in entry and "numpy" in entry and "latex" in entry
    x = ir.var("x", "vector", ("n", 1))
    params = [ir.var(p, "scalar", (1, 1)) for p in registry.params(fname)]
    call = ", ".join(["x"] + list(registry.params(fname)))
    env = {"x": x, **{p.attr[0]: p for p in params}}
    for spelling in [fname] + list(entry.get("aliases", ())):
        assert registry.functions()[spelling] == fname
        assert templates.instantiate(f"{spelling}({call})", env, registry.params(fname)) \
            is ir.fn(fname, x, *params)
    for k in range(1 + len(params)):  # f′, then ∂f/∂p for each parameter
        d = templates.derivative(fname, x, params, k)
        assert d.shape in (x.shape, (1, 1))
    assert sum(1 for c in FNS if c[0].startswith(f"fn-{fname}(")) == 3


# -- the element-wise table's numpy and derivative columns ------------------------

@pytest.mark.parametrize("label,arg", [("vec", ("n", 1)), ("mat", ("m", "n"))], ids=["vec", "mat"])
@pytest.mark.parametrize("fname", sorted(registry.elementwise()))
def test_elementwise_numpy_column(fname, label, arg):
    """The `numpy` translation computes the function (independent reference)."""
    if fname not in REFERENCES:
        pytest.skip(f"no independent NumPy reference for {fname!r}")
    rng = np.random.default_rng(seed(f"numpy-{fname}-{label}"))
    x = ir.var("x", kind_of(arg), arg)
    a = random_value(Arg(kind_of(arg), arg, "positive" if fname in POSITIVE else "nonzero"), rng)
    got = evaluate(fn_node(fname, x), {"x": a})
    want = reference(fname, a)
    assert np.shape(got) == np.shape(a)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    if fname not in POSITIVE:  # large |x|: the translation must not overflow or lose the value
        big = np.linspace(-700.0, 700.0, 2 * SIZES["n"] + 1)
        with np.errstate(over="ignore", invalid="ignore"):
            ref = reference(fname, big)
        out = evaluate(fn_node(fname, ir.var("x", "vector", (2 * SIZES["n"] + 1, 1))), {"x": big})
        fine = np.isfinite(ref)
        np.testing.assert_allclose(out[fine], ref[fine], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("label,arg", [("vec", ("n", 1)), ("mat", ("m", "n"))], ids=["vec", "mat"])
@pytest.mark.parametrize("fname", sorted(registry.elementwise()))
def test_elementwise_derivative_column(fname, label, arg):
    """`derivative` agrees with central differences of the `numpy` translation."""
    rng = np.random.default_rng(seed(f"deriv-{fname}-{label}"))
    x = ir.var("x", kind_of(arg), arg)
    a = random_value(Arg(kind_of(arg), arg, "positive" if fname in POSITIVE else "nonzero"), rng)
    f = fn_node(fname, x)
    fd = (evaluate(f, {"x": a + EPS}) - evaluate(f, {"x": a - EPS})) / (2 * EPS)
    d = np.broadcast_to(evaluate(templates.derivative(fname, x, f.args[1:]), {"x": a}), np.shape(a))
    err = rel_err(d, fd)
    assert err <= RTOL, f"{fname}' = {registry.elementwise()[fname]['derivative']}: error {err:.2e}"


def test_evaluate_conventions():
    """The evaluator itself: shapes, named dimensions, helpers."""
    X = ir.var("X", "matrix", ("m", "n"))
    x = ir.var("x", "vector", ("n", 1))
    rng = np.random.default_rng(0)
    A, v = rng.standard_normal((3, 4)), rng.standard_normal(4)
    e = ir.add(ir.matmul(X, x), ir.mul(ir.dim("m"), ir.ones("m")), ir.softmax(ir.matmul(X, x)))
    z = A @ v
    ez = np.exp(z - z.max())
    np.testing.assert_allclose(evaluate(e, {"X": A, "x": v}), z + 3.0 + ez / ez.sum())
    t = evaluate(ir.tr(ir.matmul(ir.transpose(X), X)), {"X": A})
    assert isinstance(t, float) and abs(t - np.sum(A * A)) < 1e-12
    np.testing.assert_allclose(evaluate(ir.matmul(x, ir.transpose(x)), {"x": v}), np.outer(v, v))
    with pytest.raises(KeyError):
        evaluate(X, {})


@pytest.mark.parametrize("fname", sorted(f for f in registry.elementwise() if registry.params(f)))
def test_elementwise_partial_column(fname):
    """`partial.NAME` agrees with central differences of the function in that parameter."""
    rng = np.random.default_rng(seed(f"partial-{fname}"))
    x = ir.var("x", "matrix", ("m", "n"))
    a = random_value(M("m", "n", "nonzero"), rng)
    names = registry.params(fname)
    ps = [ir.var(p, "scalar", (1, 1)) for p in names]
    f = ir.fn(fname, x, *ps)
    at = {"x": a, **{p: PARAMS[p] for p in names}}
    for k, p in enumerate(names, 1):
        fd = (evaluate(f, {**at, p: at[p] + EPS}) - evaluate(f, {**at, p: at[p] - EPS})) / (2 * EPS)
        d = np.broadcast_to(evaluate(templates.derivative(fname, x, ps, k), at), np.shape(a))
        err = rel_err(d, fd)
        assert err <= RTOL, f"∂{fname}/∂{p}: error {err:.2e}"
