"""The differential fuzzer: random well-typed matdiff programs, each written in
several spellings, checked against the reference interpreter and autograd.

Used by tests/test_differential_fuzz.py (a few hundred programs) and
benchmarks/fuzz.py (10,000+). Nothing here trusts matdiff's derivation:

* the generator builds a typed expression tree of its own (it tracks shapes
  with its own dimension names, N, D, C, H, K of sizes 3…7 shuffled per
  program, and two numeric dimensions 2 and 8 for `X:matrix(2,8)`-style
  declarations), keeps arguments in their domains (positive under
  log/sqrt/fractional powers/divisors, SPD or I-dominated under
  inv/det/logdet) and draws from the whole of SPEC §1: every element-wise
  function of the rule table (and every one the reference knows, once the
  rule table has it), products by juxtaposition, split names (`XW`, `x'Ax`),
  `*`, `@`, `·`, broadcasting (`XW + b`, `X ⊙ b`, scalars), `/` by scalars
  and scalar sums, `⊙ ./ ⊘`, `^T ' ᵀ`, inverses, matrix/vector/scalar powers
  and `.^`, tr/det/logdet/sum/norm/diag/softmax/log_softmax/logsumexp,
  `𝟙 ones 1_N ones(N) I eye I_N`, numbers (`1e-3`, `0.5`, `.5`), `pi`,
  dimension names as scalars (`/N`), Greek scalars, onehot/spd/symmetric and
  declared variables, programs with scalar, vector and matrix intermediates
  used once or several times, and `--wrt` intermediates;
* the meaning of a program is its tree, turned into parser `Ast` nodes
  directly (no text) and evaluated by matdiff/reference.py; autograd of that
  evaluation gives the gradients (sym(G) for symmetric/spd variables, the
  row-sum-preserving part for onehot ones);
* each spelling is parsed by matdiff (the spelling must mean the tree: the
  reference's value of the text is compared too), derived with
  `matdiff.api.Result`, its module compiled and run, and every printed
  gradient read back with the reference in the context of the program's
  intermediates.

Outcomes (per spelling, the first that applies): ``rejected`` (a
MatdiffError), ``crashed derivation`` (any other exception while deriving,
printing or compiling), ``wrong parse`` (the text does not mean the tree),
``crashed module``, ``wrong value``, ``wrong gradient``, ``wrong text``,
``right``. A program whose reference evaluation is not usable (non-finite,
huge, at a kink of relu/abs, singular) is redrawn and counted as discarded.

To extend: a new construct is a production in `Gen` (returning a `Node` of
the right shape), a case in `Renderer.render` (its spellings) and in
`to_ast` (its meaning as parser AST); the reference must cover it.
"""

import math
import random
import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from matdiff.ops import registry
from matdiff.errors import MatdiffError
from matdiff.parser import Ast, is_greek
from matdiff import reference

OUTCOMES = ["right", "rejected", "crashed derivation", "wrong parse", "crashed module",
            "wrong value", "wrong gradient", "wrong text"]
FAILURES = OUTCOMES[2:]

RTOL = 1e-6  # |got − want| ≤ RTOL·|want| + ATOL·max(1, max|want|), entry-wise
ATOL = 1e-8

SYMBOLIC_DIMS = ["N", "D", "C", "H", "K"]
SIZES = [3, 4, 5, 6, 7]
NUMERIC_DIMS = ["2", "8"]  # only in declared variables: X:matrix(2,8)

MATRIX_NAMES = ["A", "B", "F", "G", "J", "M", "P", "Q", "R", "U", "V", "W", "X", "Z",
                "W1", "W2", "A1", "B2", "X_train", "W_out", "Σ", "Omega"]
DECLARED_ONLY = ["Wout", "Xin", "Hid"]  # split if undeclared: need a declaration
VECTOR_NAMES = ["a", "b", "c", "g", "p", "q", "s", "u", "v", "w", "x", "y", "z",
                "x0", "b1", "b2", "w1", "y_true"]
SCALAR_NAMES = ["α", "β", "γ", "λ", "μ", "η", "ε", "τ", "lambda", "alpha", "beta", "gamma",
                "mu", "theta1", "epsilon"]
SCALAR_LATIN = ["t", "k"]  # declared t:scalar
BIND_NAMES = {"scalar": ["ρ", "κ", "rho", "kappa", "ψ", "ω", "s1", "q1"],
              "col": ["z1", "h1", "a1", "u1", "r1", "m1"],
              "mat": ["Z1", "Z2", "H1", "H2", "M1", "G2", "Q1", "P1"]}
FINAL_NAMES = ["L", "J", "f", "loss"]

NONSMOOTH = {"relu", "abs", "sign", "step", "elu", "leaky_relu"}
# Element-wise functions by domain (whatever the rule table and the
# reference both have is drawn; a function not listed here is drawn as if
# it needed a positive argument of moderate size).
POSITIVE_ARG = {"log", "sqrt", "reciprocal"}
BOUNDED_ARG = {"exp", "sinh", "cosh", "expm1"}  # wrapped to keep values moderate
POSITIVE_VALUE = {"exp", "sigmoid", "softplus", "cosh"}


def elementwise_functions():
    """(canonical name, [spellings]) of each element-wise function that the
    rule table has and the reference evaluates."""
    names = {}
    for spelling, canon in registry.functions().items():
        names.setdefault(canon, []).append(spelling)
    known = reference.supported_functions()
    return {c: sorted(s, key=lambda t: (t != c, t)) for c, s in names.items() if c in known}


def function_names():
    return set(registry.functions()) | set(registry.calls()) | {"ones_like", "eye_like"}


# -- the typed tree ---------------------------------------------------------------

class Node:
    """op, args, shape (rows, cols) of dimension names or 1, attr."""
    __slots__ = ("op", "args", "shape", "attr", "pos", "spd")

    def __init__(self, op, args=(), shape=(1, 1), attr=None, pos=False, spd=False):
        self.op = op
        self.args = tuple(args)
        self.shape = shape
        self.attr = attr
        self.pos = pos  # known positive entries
        self.spd = spd  # known SPD (or I-dominated, det > 0)

    @property
    def klass(self):
        r, c = self.shape
        if r == 1 and c == 1:
            return "scalar"
        if c == 1:
            return "col"
        if r == 1:
            return "row"
        return "mat"

    def walk(self):
        yield self
        for a in self.args:
            yield from a.walk()

    def size(self):
        return sum(1 for _ in self.walk())

    def __repr__(self):
        inner = ", ".join(map(repr, self.args))
        return f"{self.op}[{self.attr}]({inner})" if self.attr is not None else f"{self.op}({inner})"


@dataclass
class VarInfo:
    name: str
    shape: tuple
    kind: str = "normal"  # normal, positive, spd, symmetric, onehot
    declared: str = None  # the declaration text (KIND(DIMS)) or None

    @property
    def klass(self):
        r, c = self.shape
        return "scalar" if (r, c) == (1, 1) else "col" if c == 1 else "mat"


@dataclass
class Program:
    stmts: list  # [(name or None, Node)]
    vars: dict  # name -> VarInfo
    sizes: dict  # dimension name -> int
    wrt: list
    seed: int = 0
    features: set = field(default_factory=set)

    @property
    def decls(self):
        override = getattr(self, "decls_override", None)
        if override is not None:
            return override
        return {n: v.declared for n, v in self.vars.items() if v.declared}

    @property
    def bindings(self):
        return [n for n, _ in self.stmts if n is not None]

    def used_vars(self):
        out = []
        for _, node in self.stmts:
            for n in node.walk():
                if n.op == "var" and n.attr not in out:
                    out.append(n.attr)
        return out


# -- the generator ------------------------------------------------------------------

class Gen:
    """Random well-typed programs. `rng` is a random.Random."""

    def __init__(self, rng, max_depth=3):
        self.rng = rng
        self.max_depth = max_depth
        self.fns = elementwise_functions()

    # -- program --
    def program(self, seed=0):
        rng = self.rng
        sizes = SIZES[:]
        rng.shuffle(sizes)
        self.sizes = dict(zip(SYMBOLIC_DIMS, sizes))
        self.sizes.update({d: int(d) for d in NUMERIC_DIMS})
        k = rng.choice([2, 3, 3, 4])
        self.dims = rng.sample(SYMBOLIC_DIMS, k)
        self.vars = {}
        self.features = set()
        self.named_dims = rng.random() < 0.4  # declare dims by name: /N, 1_N, I_N
        self.binds = []  # [(name, Node)]
        self.count_dim = None
        self.uses = {}
        self.pool = {"mat": MATRIX_NAMES[:], "col": VECTOR_NAMES[:], "scalar": SCALAR_NAMES[:]}
        for p in self.pool.values():
            rng.shuffle(p)
        stmts = []
        nb = rng.choice([0, 0, 1, 1, 2, 2, 3])
        bind_pools = {k: v[:] for k, v in BIND_NAMES.items()}
        for p in bind_pools.values():
            rng.shuffle(p)
        for _ in range(nb):
            klass = rng.choice(["scalar", "col", "mat", "mat"])
            shape = self.shape_of_class(klass)
            need = rng.choice([None, None, "pos"]) if klass != "mat" or rng.random() < 0.7 else None
            node = self.gen(shape, rng.randint(1, self.max_depth), need)
            name = bind_pools[klass].pop()
            self.features.add(f"intermediate {klass}")
            ref = Node("bind", shape=shape, attr=name, pos=node.pos, spd=node.spd)
            self.binds.append((name, ref))
            self.uses[name] = 0
            stmts.append((name, node))
        final = None
        while final is None or final.op in ("var", "num", "pi", "bind", "dimsc", "neg"):
            final = self._gen((1, 1), rng.randint(2, self.max_depth + 1), None) \
                if rng.random() < 0.95 else self.gen((1, 1), 2)
        for name, ref in self.binds:  # every intermediate is used
            while self.count_uses(stmts, final, name) == 0:
                final = self.combine_scalar(final, self.scalar_of(ref, 1))
        if not self.named_dims and rng.random() < 0.08:
            final = self.sample_count(stmts, final)
        free = [n for n in FINAL_NAMES if n not in self.vars]
        if rng.random() < 0.4 and free:
            stmts.append((rng.choice(free), final))
        else:
            stmts.append((None, final))
        used = []
        for _, node in stmts:
            for n in node.walk():
                if n.op == "var" and n.attr not in used:
                    used.append(n.attr)
        self.vars = {n: v for n, v in self.vars.items() if n in used}
        # a dimension used as a scalar must be declared by a variable still in
        # the program (or be the sample count, which is declared nowhere)
        declared_dims = set()
        for v in self.vars.values():
            if v.declared and "(" in v.declared:
                declared_dims.update(re.findall(r"[^\W\d]\w*", v.declared.split("(", 1)[1]))
        for _, node in stmts:
            for n in node.walk():
                if n.op == "dimsc" and n.attr not in declared_dims and n.attr != self.count_dim:
                    return None
        cands = [n for n in used if self.vars[n].kind != "onehot" or rng.random() < 0.15]
        cands += [n for n, _ in stmts[:-1] if n is not None]
        if not cands:
            return None
        wrt = rng.sample(cands, min(len(cands), rng.choice([1, 1, 2, 3])))
        for w in wrt:
            if w in self.uses:
                self.features.add("wrt intermediate")
        return Program(stmts, self.vars, dict(self.sizes), wrt, seed, self.features)

    def sample_count(self, stmts, final):
        """final / K with K the rows of the first matrix variable and
        undeclared anywhere: SPEC's `…/N` counting the samples."""
        first = None
        for _, node in stmts + [(None, final)]:
            for n in _preorder(node):
                if n.op == "var" and n.klass == "mat":
                    v = self.vars[n.attr]
                    if v.kind in ("normal", "positive", "onehot") and (
                            v.declared is None or v.declared.split("(")[0] in ("matrix", "onehot")):
                        first = v
                        break
            if first:
                break
        if first is None:
            return final
        d = first.shape[0]
        if d in NUMERIC_DIMS or any(v.declared and d in re.findall(r"\w+", v.declared)
                                    for v in self.vars.values()):
            return final
        self.features.add("sample count /N")
        self.count_dim = d
        return Node("sdiv", (final, Node("dimsc", attr=d, pos=True)), (1, 1))

    @staticmethod
    def count_uses(stmts, final, name):
        c = 0
        for _, node in stmts + [(None, final)]:
            c += sum(1 for n in node.walk() if n.op == "bind" and n.attr == name)
        return c

    def shape_of_class(self, klass):
        if klass == "scalar":
            return (1, 1)
        if klass == "col":
            return (self.rng.choice(self.dims), 1)
        return (self.rng.choice(self.dims), self.rng.choice(self.dims))

    def free_shape(self):
        """A shape chosen freely (an argument of sum, norm, …)."""
        rng = self.rng
        r = rng.random()
        if r < 0.06:
            self.features.add("numeric dims")
            return (rng.choice(NUMERIC_DIMS), rng.choice(NUMERIC_DIMS))
        if r < 0.4:
            return (rng.choice(self.dims), 1)
        return (rng.choice(self.dims), rng.choice(self.dims))

    # -- leaves --
    def var(self, shape, kind="normal"):
        """A variable of this shape: an existing one (or its transpose) or a new one."""
        rng = self.rng
        r, c = shape
        klass = "scalar" if shape == (1, 1) else "col" if c == 1 else "mat"
        if kind == "normal" and rng.random() < 0.45:
            same = [v for v in self.vars.values()
                    if v.shape == shape and v.kind in ("normal", "symmetric", "positive")]
            if same:
                return self.var_node(rng.choice(same))
            if klass == "mat":
                tr = [v for v in self.vars.values() if v.shape == (c, r) and v.kind == "normal"]
                if tr:
                    return Node("T", (self.var_node(rng.choice(tr)),), shape)
        if kind == "positive" and rng.random() < 0.4:
            same = [v for v in self.vars.values() if v.shape == shape and v.kind == "positive"]
            if same:
                return self.var_node(rng.choice(same))
        declared = None
        if klass == "scalar":
            if rng.random() < 0.1 and SCALAR_LATIN:
                name = self.fresh_name([n for n in SCALAR_LATIN])
                declared = "scalar"
            else:
                name = self.fresh_name(self.pool["scalar"])
        elif klass == "col":
            name = self.fresh_name(self.pool["col"])
        else:
            if rng.random() < 0.08:
                name = self.fresh_name(DECLARED_ONLY)
                declared = "matrix"
            else:
                name = self.fresh_name(self.pool["mat"])
        if name is None:  # out of names: reuse any of the shape, or fail over
            same = [v for v in self.vars.values() if v.shape == shape and v.kind == kind]
            if same:
                return self.var_node(rng.choice(same))
            raise _Retry()
        if kind == "normal" and klass == "mat" and r == c and rng.random() < 0.15:
            kind = "symmetric"
        if kind in ("spd", "symmetric", "onehot"):
            declared = kind
            self.features.add(kind)
        numeric = any(d in NUMERIC_DIMS for d in shape)
        if numeric or (self.named_dims and rng.random() < 0.7) or declared:
            dims = self.decl_dims(shape, kind, numeric or self.named_dims or rng.random() < 0.3)
            if declared is None:
                declared = {"scalar": "scalar", "col": "vector", "mat": "matrix"}[klass]
            declared = declared + dims
        if not name[0].isupper() and klass == "mat" and declared is None:
            declared = "matrix"
        info = VarInfo(name, shape, kind, declared)
        self.vars[name] = info
        return self.var_node(info)

    def decl_dims(self, shape, kind, with_dims):
        if not with_dims or shape == (1, 1):
            return ""
        r, c = shape
        if kind in ("spd", "symmetric"):
            return f"({r})"
        if c == 1:
            return f"({r})"
        return f"({r},{c})"

    def fresh_name(self, pool):
        for n in pool:
            if n not in self.vars and n not in self.uses:
                return n
        return None

    def var_node(self, info):
        return Node("var", shape=info.shape, attr=info.name, pos=info.kind in ("positive", "spd") and False
                    or info.kind == "positive", spd=info.kind == "spd")

    def leaf(self, shape, need=None):
        rng = self.rng
        r, c = shape
        klass = "scalar" if shape == (1, 1) else "col" if c == 1 else "mat"
        refs = [ref for name, ref in self.binds if ref.shape == shape
                and (need is None or (need == "pos" and ref.pos) or (need == "spd" and ref.spd))]
        if refs and rng.random() < 0.6:
            ref = rng.choice(refs)
            self.uses[ref.attr] += 1
            return Node("bind", shape=shape, attr=ref.attr, pos=ref.pos, spd=ref.spd)
        if need == "spd":
            return self.var(shape, "spd")
        if need == "pos":
            if klass == "scalar":
                x = rng.random()
                if x < 0.25:
                    return self.number(positive=True)
                if x < 0.35:
                    return Node("pi", pos=True)
                if x < 0.5 and self.named_dims:
                    d = self.declared_dim()
                    if d:
                        self.features.add("dimension scalar")
                        return Node("dimsc", attr=d, pos=True)
            return self.var(shape, "positive")
        if klass == "scalar":
            x = rng.random()
            if x < 0.3:
                return self.number()
            if x < 0.35:
                return Node("pi", pos=True)
            return self.var(shape)
        if klass == "mat" and r == c and rng.random() < 0.06:
            return self.eye(shape)
        if klass == "col" and rng.random() < 0.04:
            return self.ones(r)  # sized by its context (else the program is redrawn)
        return self.var(shape)

    def declared_dim(self):
        names = set()
        for v in self.vars.values():
            if v.declared and "(" in v.declared:
                names.update(d for d in re.findall(r"\w+", v.declared.split("(", 1)[1])
                             if not d.isdigit())
        return self.rng.choice(sorted(names)) if names else None

    def number(self, positive=False):
        rng = self.rng
        v = rng.choice([2.0, 3.0, 0.5, 0.25, 1.5, 1e-3, 0.1, 2.5, 1.0, 4.0])
        if not positive and rng.random() < 0.15:
            return Node("neg", (Node("num", attr=v, pos=True),))
        return Node("num", attr=v, pos=True)

    def ones(self, d):
        self.features.add("ones")
        return Node("ones", shape=(d, 1), attr=d, pos=True)

    def eye(self, shape):
        self.features.add("eye")
        return Node("eye", shape=shape, attr=shape[0])

    # -- composite --
    def gen(self, shape, depth, need=None):
        for _ in range(20):
            try:
                return self._gen(shape, depth, need)
            except _Retry:
                depth = max(0, depth - 1)
        return self.leaf(shape, need)

    def _gen(self, shape, depth, need):
        rng = self.rng
        if depth <= 0 or rng.random() < 0.12:
            return self.leaf(shape, need)
        r, c = shape
        klass = "scalar" if shape == (1, 1) else "col" if c == 1 else "mat"
        if need == "spd":
            return self.gen_spd(shape, depth)
        if need == "pos":
            return self.gen_pos(shape, depth)
        table = {"scalar": self.scalar_prods, "col": self.col_prods, "mat": self.mat_prods}[klass]
        prods = table(shape)
        names, weights = zip(*prods)
        f = rng.choices(names, weights)[0]
        self.features.add(f.__name__.lstrip("_"))
        return f(shape, depth - 1)

    # common productions (any shape)
    def p_add(self, shape, d):
        a = self.gen(shape, d)
        b = self.broadcast_partner(shape, d)
        if self.rng.random() < 0.5:
            a, b = b, a
        op = self.rng.choice(["add", "sub"])
        return Node(op, (a, b), shape, pos=op == "add" and a.pos and b.pos)

    def broadcast_partner(self, shape, d):
        """An operand that broadcasts to `shape`: the same shape, a scalar, or
        for a matrix a vector along the last axis (b, or 𝟙bᵀ)."""
        rng = self.rng
        r, c = shape
        x = rng.random()
        if x < 0.2 and shape != (1, 1):
            self.features.add("broadcast scalar")
            return self.gen((1, 1), d)
        if r != 1 and c != 1 and x < 0.45:
            self.features.add("broadcast vector")
            b = self.gen((c, 1), d)
            if rng.random() < 0.3:
                return Node("mm", (self.ones(r), Node("T", (b,), (1, c))), shape)
            return b
        if r != 1 and c != 1 and x < 0.55:
            return self.kept_partner(shape, d)
        if c == 1 and r != 1 and x < 0.3:
            return self.ones(r)
        return self.gen(shape, d)

    def p_had(self, shape, d):
        a = self.gen(shape, d)
        b = self.broadcast_partner(shape, d)
        if self.rng.random() < 0.5:
            a, b = b, a
        return Node("had", (a, b), shape, pos=a.pos and b.pos)

    def p_ediv(self, shape, d):
        b = self.broadcast_partner_pos(shape, d)
        if b.shape == shape and self.rng.random() < 0.15:
            a = b  # x ./ x: a cancellation for the simplifier
            self.features.add("shared operand")
        else:
            a = self.gen(shape, d)
        return Node("ediv", (a, b), shape, pos=a.pos)

    def broadcast_partner_pos(self, shape, d):
        r, c = shape
        x = self.rng.random()
        if r != 1 and c != 1 and x < 0.3:
            self.features.add("broadcast vector")
            return self.gen((c, 1), d, "pos")
        if r != 1 and c != 1 and x < 0.42:
            return self.kept_partner(shape, d, positive=True)
        return self.gen(shape, d, "pos")

    # axis reductions, the axis kept: N×1 / 1×D, broadcast NumPy's way
    def reduction(self, x, fname, axis):
        """sum/mean/var(x, axis) of a matrix x."""
        r, c = x.shape
        self.features.add(f"{fname}(X, {axis})")
        shape = (r, 1) if axis == 1 else (1, c)
        return Node("red", (x,), shape, attr=(fname, axis), pos=fname == "var" or x.pos)

    def kept_partner(self, shape, d, positive=False):
        """An N×1 (axis 1) or 1×D (axis 0) reduction result that broadcasts to
        the matrix shape N×D: mean(M, 1), sqrt(var(M, 0) + c), …"""
        rng = self.rng
        r, c = shape
        self.features.add("broadcast kept axis")
        axis = rng.choice([0, 1])
        k = rng.choice(self.dims)
        x = self.gen((r, k) if axis == 1 else (k, c), d)
        if positive:
            v = self.reduction(x, "var", axis)
            plus = Node("add", (v, self.number(positive=True)), v.shape, pos=True)
            if rng.random() < 0.5:
                return Node("fn", (plus,), v.shape, attr="sqrt", pos=True)
            return plus
        red = self.reduction(x, rng.choice(["sum", "mean", "mean", "var"]), axis)
        if rng.random() < 0.25:
            return Node("fn", (red,), red.shape, attr=rng.choice(["tanh", "exp", "sin"]))
        return red

    def m_normalize(self, shape, d):
        """(M − mean(M, a)) ./ sqrt(var(M, a) + ε): layer norm (a = 1) and batch
        norm (a = 0), M one subtree used three times."""
        rng = self.rng
        axis = rng.choice([0, 1])
        M = self.gen(shape, d)
        self.features.add("layer/batch norm")
        centred = Node("sub", (M, self.reduction(M, "mean", axis)), shape)
        eps = self.gen((1, 1), 0, "pos") if rng.random() < 0.5 else self.number(positive=True)
        v = self.reduction(M, "var", axis)
        den = Node("fn", (Node("add", (v, eps), v.shape, pos=True),), v.shape, attr="sqrt",
                   pos=True)
        return Node("ediv", (centred, den), shape)

    # column stacking and Kronecker products: sizes that are products (N·D)
    def prod_dim(self, *ds):
        """A size N·D (a string the generator only uses with fresh variables)."""
        ds = [x for x in ds if x != 1]
        if not ds:
            return 1
        if len(ds) == 1:
            return ds[0]
        name = "·".join(ds)
        self.sizes[name] = math.prod(self.sizes[x] for x in ds)
        return name

    def prod_var(self, shape):
        """A fresh, undeclared variable of a shape with product sizes."""
        klass = "col" if shape[1] == 1 else "mat"
        name = self.fresh_name(self.pool[klass])
        if name is None:
            raise _Retry()
        info = VarInfo(name, shape, "normal", None if name[0].isupper() or klass == "col"
                       else "matrix")
        self.vars[name] = info
        return self.var_node(info)

    def kron(self, a, b):
        (m, n), (p, q) = a.shape, b.shape
        self.features.add("kron")
        return Node("kron", (a, b), (self.prod_dim(m, p), self.prod_dim(n, q)))

    def vec(self, x):
        self.features.add("vec")
        return Node("call", (x,), (self.prod_dim(*x.shape), 1), attr="vec")

    def s_vec(self, shape, d):
        """vec(M)ᵀ vec(M'), pᵀ vec(M), ‖vec(M)‖²."""
        rng = self.rng
        x = rng.random()
        m, n = rng.choice(self.dims), rng.choice(self.dims)
        v = self.vec(self.gen((m, n), d))
        if x < 0.35:
            w = self.vec(self.gen((m, n), d))
            return Node("mm", (Node("T", (v,), (1, v.shape[0])), w), (1, 1))
        if x < 0.75:
            p = self.prod_var(v.shape)
            return Node("mm", (Node("T", (p,), (1, v.shape[0])), v), (1, 1))
        return Node("pow", (Node("call", (v,), (1, 1), attr="norm", pos=True),
                            Node("num", attr=2.0)), (1, 1), pos=True)

    def s_kron(self, shape, d):
        """sum(W ⊙ (A ⊗ B)), tr(S ⊗ T), pᵀ(x ⊗ y), ‖A ⊗ B‖, sum((A ⊗ B)(C ⊗ D))."""
        rng = self.rng
        x = rng.random()
        dims = self.dims
        if x < 0.35:
            A = self.gen(self.free_shape(), d)
            B = self.gen(self.free_shape(), d)
            K = self.kron(A, B)
            W = self.prod_var(K.shape)
            return Node("call", (Node("had", (W, K), K.shape),), (1, 1), attr="sum")
        if x < 0.5:
            a, b = rng.choice(dims), rng.choice(dims)
            K = self.kron(self.gen((a, a), d), self.gen((b, b), d))
            return Node("call", (K,), (1, 1), attr="tr")
        if x < 0.7:
            a, b = rng.choice(dims), rng.choice(dims)
            K = self.kron(self.gen((a, 1), d), self.gen((b, 1), d))
            p = self.prod_var(K.shape)
            return Node("mm", (Node("T", (p,), (1, K.shape[0])), K), (1, 1))
        if x < 0.85:
            K = self.kron(self.gen(self.free_shape(), d), self.gen(self.free_shape(), d))
            return Node("call", (K,), (1, 1), attr="norm", pos=True)
        m, n, k, q = (rng.choice(dims) for _ in range(4))
        K1 = self.kron(self.gen((m, n), d), self.gen((k, q), d))
        K2 = self.kron(self.gen((n, 1), d), self.gen((q, 1), d))
        return Node("call", (Node("mm", (K1, K2), (K1.shape[0], 1)),), (1, 1), attr="sum")

    def s_reduce(self, shape, d):
        """mean/var of all entries, or a kept axis reduced further by a product."""
        rng = self.rng
        x = rng.random()
        if x < 0.5:
            f = rng.choice(["mean", "var"])
            self.features.add(f"{f}(X)")
            return Node("call", (self.gen(self.free_shape(), d),), (1, 1), attr=f)
        n, k = rng.choice(self.dims), rng.choice(self.dims)
        if x < 0.75:  # aᵀ sum(M, 1)
            red = self.reduction(self.gen((n, k), d), rng.choice(["sum", "mean", "var"]), 1)
            a = self.gen((n, 1), d)
            return Node("mm", (Node("T", (a,), (1, n)), red), (1, 1))
        red = self.reduction(self.gen((k, n), d), rng.choice(["sum", "mean", "var"]), 0)
        return Node("mm", (red, self.gen((n, 1), d)), (1, 1))

    def p_scale(self, shape, d):
        s = self.gen((1, 1), d)
        x = self.gen(shape, d)
        args = (s, x) if self.rng.random() < 0.6 else (x, s)
        return Node("mm", args, shape, pos=s.pos and x.pos)

    def p_sdiv(self, shape, d):
        x = self.gen(shape, d)
        s = self.gen((1, 1), d, "pos")
        return Node("sdiv", (x, s), shape, pos=x.pos)

    def p_neg(self, shape, d):
        return Node("neg", (self.gen(shape, d),), shape)

    def p_fn(self, shape, d):
        rng = self.rng
        fname = rng.choice(sorted(self.fns))
        if fname in POSITIVE_ARG:
            arg = self.gen(shape, d, "pos")
        elif fname in BOUNDED_ARG:
            arg = self.bounded(shape, d)
        elif fname in NONSMOOTH or fname in ("sin", "cos", "tanh", "sigmoid", "softplus") \
                or fname in ("log1p",):
            arg = self.gen(shape, d) if fname != "log1p" else self.gen(shape, d, "pos")
        else:
            arg = self.bounded(shape, d)
        self.features.add(f"fn {fname}")
        params = tuple(self.fn_param() for _ in registry.params(fname))
        return Node("fn", (arg,) + params, shape, attr=fname, pos=fname in POSITIVE_VALUE)

    def fn_param(self):
        """A scalar parameter (elu's α): a number, or a scalar expression."""
        if self.rng.random() < 0.6:
            return Node("num", attr=self.rng.choice([0.1, 0.5, 0.25, 1.5, 2.0]), pos=True)
        return self.gen((1, 1), 0)

    def bounded(self, shape, d):
        """An argument of moderate size (for exp and friends)."""
        rng = self.rng
        x = self.gen(shape, d)
        if rng.random() < 0.5:
            return Node("fn", (x,), shape, attr=rng.choice(["tanh", "sin", "cos", "sigmoid"])) \
                if all(f in self.fns for f in ("tanh", "sin", "cos", "sigmoid")) else x
        return x

    def p_epow(self, shape, d):
        rng = self.rng
        p = rng.choice([2.0, 3.0, 2.0, 0.5, 1.5, -1.0, -2.0])
        base = self.gen(shape, d, "pos" if (p != int(p) or p < 0) else None)
        return Node("epow", (base, Node("num", attr=p) if p > 0 else
                             Node("neg", (Node("num", attr=-p),))), shape,
                    pos=base.pos or p in (2.0,))

    def p_pow(self, shape, d):
        """`^` on a scalar or a vector (ordinary / element-wise)."""
        rng = self.rng
        p = rng.choice([2, 3, 2, 0.5, -1, -2, 1.5])
        base = self.gen(shape, d, "pos" if (p != int(p) or p < 0) else None)
        expo = Node("num", attr=float(abs(p)))
        if p < 0:
            expo = Node("neg", (expo,))
        if p == -1:
            return Node("inv", (base,), shape, pos=base.pos)
        return Node("pow", (base, expo), shape, pos=base.pos or p == 2)

    # scalar productions
    def scalar_prods(self, shape):
        return [(self.s_inner, 4), (self.s_bilinear, 2), (self.s_tr, 2), (self.s_sum, 3),
                (self.s_norm, 2), (self.s_det, 1), (self.s_logdet, 1.5), (self.s_lse, 1),
                (self.p_add, 3), (self.s_prod, 2), (self.p_sdiv, 2), (self.p_neg, 1),
                (self.p_fn, 2), (self.p_pow, 1.5), (self.p_epow, 0.5), (self.s_xent, 1),
                (self.s_quad_diag, 0.5), (self.s_ones, 1), (self.s_sample_mean, 0.3),
                (self.s_tr_scalar, 0.2), (self.s_pow_expr, 0.4), (self.s_reduce, 0.8),
                (self.s_vec, 0.5), (self.s_kron, 0.7)]

    def s_inner(self, shape, d):
        n = self.rng.choice(self.dims)
        a = self.gen((n, 1), d)
        b = a if self.rng.random() < 0.15 else self.gen((n, 1), d)
        return Node("mm", (Node("T", (a,), (1, n)), b), (1, 1))

    def s_bilinear(self, shape, d):
        m, n = self.rng.choice(self.dims), self.rng.choice(self.dims)
        a, M, b = self.gen((m, 1), d), self.gen((m, n), d), self.gen((n, 1), d)
        return Node("mm", (Node("mm", (Node("T", (a,), (1, m)), M), (1, n)), b), (1, 1))

    def s_tr(self, shape, d):
        n = self.rng.choice(self.dims)
        return Node("call", (self.gen((n, n), d),), (1, 1), attr="tr")

    def s_tr_scalar(self, shape, d):
        return Node("call", (self.gen((1, 1), d),), (1, 1), attr=self.rng.choice(["tr", "det"]))

    def s_sum(self, shape, d):
        return Node("call", (self.gen(self.free_shape(), d),), (1, 1), attr="sum")

    def s_norm(self, shape, d):
        x = self.gen(self.free_shape(), d)
        n = Node("call", (x,), (1, 1), attr="norm", pos=True)
        if self.rng.random() < 0.5:
            return Node("pow", (n, Node("num", attr=2.0)), (1, 1), pos=True)
        return n

    def s_det(self, shape, d):
        n = self.rng.choice(self.dims)
        return Node("call", (self.gen((n, n), d, "spd"),), (1, 1), attr="det", pos=True)

    def s_logdet(self, shape, d):
        n = self.rng.choice(self.dims)
        return Node("call", (self.gen((n, n), d, "spd"),), (1, 1), attr="logdet")

    def s_lse(self, shape, d):
        n = self.rng.choice(self.dims)
        return Node("call", (self.gen((n, 1), d),), (1, 1), attr="logsumexp")

    def s_prod(self, shape, d):
        a, b = self.gen((1, 1), d), self.gen((1, 1), d)
        self.features.add("scalar product")
        return Node("mm", (a, b), (1, 1), pos=a.pos and b.pos)

    def s_pow_expr(self, shape, d):
        """A scalar to a scalar power: ρ^β with a positive base."""
        base = self.gen((1, 1), d, "pos")
        e = self.gen((1, 1), 0)
        return Node("pow", (base, e), (1, 1), pos=True)

    def s_xent(self, shape, d):
        """-tr(Yᵀ log softmax(Z)) with a onehot Y, or sum(Y ⊙ log_softmax(Z))."""
        rng = self.rng
        n, k = rng.choice(self.dims), rng.choice(self.dims)
        if rng.random() < 0.25:
            y = self.var((k, 1), "onehot")
            z = self.gen((k, 1), d)
            return Node("neg", (Node("mm", (Node("T", (y,), (1, k)),
                                            Node("fn", (Node("call", (z,), (k, 1), attr="softmax"),),
                                                 (k, 1), attr="log")), (1, 1)),))
        Y = self.var((n, k), "onehot")
        Z = self.gen((n, k), d)
        if rng.random() < 0.5:
            lsm = Node("fn", (Node("call", (Z,), (n, k), attr="softmax"),), (n, k), attr="log")
            return Node("neg", (Node("call", (Node("mm", (Node("T", (Y,), (k, n)), lsm), (k, k)),),
                                     (1, 1), attr="tr"),))
        return Node("call", (Node("had", (Y, Node("call", (Z,), (n, k), attr="log_softmax")),
                                  (n, k)),), (1, 1), attr="sum")

    def s_quad_diag(self, shape, d):
        n = self.rng.choice(self.dims)
        x, a = self.gen((n, 1), d), self.gen((n, 1), d)
        D = Node("call", (a,), (n, n), attr="diag")
        return Node("mm", (Node("mm", (Node("T", (x,), (1, n)), D), (1, n)), x), (1, 1))

    def s_ones(self, shape, d):
        rng = self.rng
        n = rng.choice(self.dims)
        if rng.random() < 0.5:
            v = self.gen((n, 1), d)
            o = self.ones(n)
            return Node("mm", (Node("T", (o,), (1, n)), v), (1, 1)) if rng.random() < 0.5 else \
                Node("mm", (Node("T", (v,), (1, n)), o), (1, 1))
        m = rng.choice(self.dims)
        M = self.gen((n, m), d)
        return Node("mm", (Node("mm", (Node("T", (self.ones(n),), (1, n)), M), (1, m)),
                           self.ones(m)), (1, 1))

    def s_sample_mean(self, shape, d):
        """s / K, K an undeclared capital used only as a divisor: the rows of
        the first matrix variable (SPEC)."""
        if self.named_dims:
            dname = self.declared_dim()
            if dname:
                self.features.add("dimension scalar")
                return Node("sdiv", (self.gen((1, 1), d), Node("dimsc", attr=dname, pos=True)),
                            (1, 1))
        return self.p_sdiv(shape, d)

    # vector productions
    def col_prods(self, shape):
        return [(self.v_matvec, 4), (self.p_add, 3), (self.p_had, 2), (self.p_ediv, 1),
                (self.p_scale, 2), (self.p_sdiv, 1.5), (self.p_neg, 0.7), (self.p_fn, 3),
                (self.v_softmax, 1), (self.v_diagvec, 0.5), (self.v_lse, 0.7),
                (self.p_pow, 1), (self.p_epow, 1), (self.v_rowT, 0.5), (self.v_diagmv, 0.3)]

    def v_matvec(self, shape, d):
        n = shape[0]
        k = self.rng.choice(self.dims)
        if self.rng.random() < 0.3:
            M = self.gen((k, n), d)
            return Node("mm", (Node("T", (M,), (n, k)), self.gen((k, 1), d)), shape)
        return Node("mm", (self.gen((n, k), d), self.gen((k, 1), d)), shape)

    def v_softmax(self, shape, d):
        f = self.rng.choice(["softmax", "log_softmax"])
        return Node("call", (self.gen(shape, d),), shape, attr=f, pos=f == "softmax")

    def v_diagvec(self, shape, d):
        n = shape[0]
        return Node("call", (self.gen((n, n), d),), shape, attr="diag")

    def v_lse(self, shape, d):
        k = self.rng.choice(self.dims)
        return Node("call", (self.gen((shape[0], k), d),), shape, attr="logsumexp")

    def v_rowT(self, shape, d):
        n = shape[0]
        k = self.rng.choice(self.dims)
        row = Node("mm", (Node("T", (self.gen((k, 1), d),), (1, k)), self.gen((k, n), d)), (1, n))
        return Node("T", (row,), shape)

    def v_diagmv(self, shape, d):
        n = shape[0]
        return Node("mm", (Node("call", (self.gen(shape, d),), (n, n), attr="diag"),
                           self.gen(shape, d)), shape)

    # matrix productions
    def mat_prods(self, shape):
        r, c = shape
        prods = [(self.m_matmul, 4), (self.p_add, 3), (self.p_had, 2), (self.p_ediv, 1),
                 (self.p_scale, 2), (self.p_sdiv, 1.5), (self.p_neg, 0.5), (self.p_fn, 3),
                 (self.m_softmax, 1), (self.m_T, 1), (self.m_outer, 1), (self.p_epow, 1),
                 (self.m_normalize, 0.5)]
        if r == c:
            prods += [(self.m_inv, 1.5), (self.m_mpow, 1.5), (self.m_diag, 0.7),
                      (self.m_eye_plus, 1)]
        if r in NUMERIC_DIMS and c in NUMERIC_DIMS and r != c:
            prods += [(self.m_pow_nonsquare, 3)]
        return prods

    def m_matmul(self, shape, d):
        k = self.rng.choice(self.dims)
        return Node("mm", (self.gen((shape[0], k), d), self.gen((k, shape[1]), d)), shape)

    def m_softmax(self, shape, d):
        f = self.rng.choice(["softmax", "log_softmax"])
        return Node("call", (self.gen(shape, d),), shape, attr=f, pos=f == "softmax")

    def m_T(self, shape, d):
        return Node("T", (self.gen((shape[1], shape[0]), d),), shape)

    def m_outer(self, shape, d):
        a, b = self.gen((shape[0], 1), d), self.gen((shape[1], 1), d)
        return Node("mm", (a, Node("T", (b,), (1, shape[1]))), shape)

    def m_inv(self, shape, d):
        return Node("inv", (self.gen(shape, d, "spd"),), shape, spd=True)

    def m_mpow(self, shape, d):
        k = self.rng.choice([2, 2, 3, -1, -2, 0])
        if k < 0:
            base = self.gen(shape, d, "spd")
        else:
            base = self.gen(shape, d)
        if k == -1:
            return Node("inv", (base,), shape, spd=True)
        self.features.add("matrix power")
        return Node("mpow", (base,), shape, attr=k, spd=base.spd and k % 2 == 0 or base.spd)

    def m_pow_nonsquare(self, shape, d):
        self.features.add("elementwise ^ on a non-square matrix")
        return Node("mpow", (self.gen(shape, d),), shape, attr=self.rng.choice([2, 3]))

    def m_diag(self, shape, d):
        return Node("call", (self.gen((shape[0], 1), d),), shape, attr="diag")

    def m_eye_plus(self, shape, d):
        s = self.gen((1, 1), d)
        return Node("add", (self.gen(shape, d), Node("mm", (s, self.eye(shape)), shape)), shape)

    # positive and SPD
    def gen_pos(self, shape, depth):
        rng = self.rng
        if depth <= 0:
            return self.leaf(shape, "pos")
        klass = "scalar" if shape == (1, 1) else "col" if shape[1] == 1 else "mat"
        x = rng.random()
        if x < 0.25:
            f = rng.choice([f for f in ("exp", "sigmoid", "softplus") if f in self.fns])
            arg = self.bounded(shape, depth - 1) if f == "exp" else self.gen(shape, depth - 1)
            return Node("fn", (arg,), shape, attr=f, pos=True)
        if x < 0.4:  # e.^2 + c
            e = self.gen(shape, depth - 1)
            sq = Node("epow", (e, Node("num", attr=2.0)), shape) if rng.random() < 0.5 else \
                Node("had", (e, e), shape)
            c = self.number(positive=True)
            return Node("add", (sq, c) if rng.random() < 0.5 else (c, sq), shape, pos=True)
        if x < 0.5 and klass == "scalar":  # x'x + c, ‖X‖² + c
            n = rng.choice(self.dims)
            v = self.gen((n, 1), depth - 1)
            q = Node("mm", (Node("T", (v,), (1, n)), v), (1, 1))
            c = self.number(positive=True)
            self.features.add("scalar sum as a factor/divisor")
            return Node("add", (q, c) if rng.random() < 0.5 else (c, q), (1, 1), pos=True)
        if x < 0.58 and klass == "scalar":
            n = rng.choice(self.dims)
            return Node("call", (self.gen((n, n), depth - 1, "spd"),), (1, 1), attr="det", pos=True)
        if x < 0.66 and klass != "mat":
            if klass == "col":
                return Node("call", (self.gen(shape, depth - 1),), shape, attr="softmax", pos=True)
            return Node("call", (self.gen(self.free_shape(), depth - 1),), (1, 1), attr="norm",
                        pos=True)
        if x < 0.76:
            a, b = self.gen(shape, depth - 1, "pos"), self.gen(shape, depth - 1, "pos")
            op = rng.choice(["add", "had", "ediv"])
            return Node(op, (a, b), shape, pos=True)
        if x < 0.84:
            s, a = self.gen((1, 1), depth - 1, "pos"), self.gen(shape, depth - 1, "pos")
            if rng.random() < 0.5:
                return Node("sdiv", (a, s), shape, pos=True)
            return Node("mm", (s, a) if rng.random() < 0.5 else (a, s), shape, pos=True)
        if x < 0.9 and "sqrt" in self.fns:
            return Node("fn", (self.gen(shape, depth - 1, "pos"),), shape, attr="sqrt", pos=True)
        return self.leaf(shape, "pos")

    def gen_spd(self, shape, depth):
        """SPD (or, for det/inv, I-dominated with det > 0) of shape n×n."""
        rng = self.rng
        n = shape[0]
        if depth <= 0:
            return self.leaf(shape, "spd")
        x = rng.random()
        if x < 0.3:
            return self.leaf(shape, "spd")
        if x < 0.55:  # MᵀM + c I  or  M Mᵀ + c I
            k = rng.choice(self.dims)
            if rng.random() < 0.5:
                M = self.gen((k, n), depth - 1)
                g = Node("mm", (Node("T", (M,), (n, k)), M), shape)
            else:
                M = self.gen((n, k), depth - 1)
                g = Node("mm", (M, Node("T", (M,), (n, k))), shape)
            c = self.gen((1, 1), depth - 1, "pos")
            ci = Node("mm", (c, self.eye(shape)), shape) if rng.random() < 0.6 else self.eye(shape)
            return Node("add", (g, ci) if rng.random() < 0.5 else (ci, g), shape, spd=True)
        if x < 0.65:
            a, b = self.gen(shape, depth - 1, "spd"), self.gen(shape, depth - 1, "spd")
            return Node("add", (a, b), shape, spd=True)
        if x < 0.72:
            s, a = self.gen((1, 1), depth - 1, "pos"), self.gen(shape, depth - 1, "spd")
            return Node("mm", (s, a), shape, spd=True)
        if x < 0.8:
            return Node("inv", (self.gen(shape, depth - 1, "spd"),), shape, spd=True)
        if x < 0.86:
            a = self.gen(shape, depth - 1, "spd")
            return Node("had", (a, a), shape, spd=True) if rng.random() < 0.5 else \
                Node("mpow", (a,), shape, attr=2, spd=True)
        # S + 0.1 A: not symmetric; eigenvalues' real parts > 0, so det > 0
        S = self.leaf(shape, "spd")
        A = self.var(shape)
        small = Node("num", attr=0.1, pos=True)
        term = Node("mm", (small, A), shape) if rng.random() < 0.5 else \
            Node("sdiv", (A, Node("num", attr=10.0, pos=True)), shape)
        return Node("add", (S, term), shape, spd=True)

    # combining
    def scalar_of(self, ref, d):
        """A scalar use of an intermediate."""
        self.uses[ref.attr] += 1
        k = ref.klass
        r = Node("bind", shape=ref.shape, attr=ref.attr, pos=ref.pos, spd=ref.spd)
        if k == "scalar":
            return r
        if k == "col":
            n = ref.shape[0]
            return self.rng.choice([
                Node("call", (r,), (1, 1), attr="sum"),
                Node("mm", (Node("T", (r,), (1, n)), self.gen((n, 1), d)), (1, 1)),
                Node("call", (r,), (1, 1), attr="norm")])
        if ref.shape[0] == ref.shape[1] and self.rng.random() < 0.4:
            return Node("call", (r,), (1, 1), attr="tr")
        return Node("call", (r,), (1, 1), attr="sum")

    def combine_scalar(self, a, b):
        op = self.rng.choice(["add", "sub", "add", "mm"])
        return Node(op, (a, b), (1, 1))


class _Retry(Exception):
    pass


def _preorder(node):
    """Nodes in source order (left to right), as the parser meets them."""
    yield node
    for a in node.args:
        yield from _preorder(a)


# -- rendering: several spellings of one tree ------------------------------------------

SUM, NEG, HAD, PROD, APPLY, POST, PRIM = range(1, 8)


@dataclass
class R:
    text: str
    level: int
    head: str = None  # the chunk-form identifier run the text starts with
    tail: str = None  # the one it ends with (no postfix after it)
    whole: bool = False  # the text is one identifier run


_CHUNK = re.compile(r"(?:[^\W\d_]\d*)+")


def _call_word(run):
    """A lower-case word of two or more letters, digits allowed (x0t): before
    `(` the parser reads it as a call (SPEC §1)."""
    return re.fullmatch(r"[a-z][a-z0-9]*", run) is not None and sum(c.isalpha() for c in run) >= 2


def _namechar(ch):
    return ch.isalnum() or ch == "_"


class Style:
    """How one spelling writes things. kind: 'split', 'spaced' or 'star'."""

    def __init__(self, kind, rng):
        self.kind = kind
        self.rng = rng

    def pick(self, *options):
        return self.rng.choice(options)

    def chance(self, p):
        return self.rng.random() < p


class Renderer:
    def __init__(self, program, style):
        self.p = program
        self.s = style
        self.declared = set(program.decls) | set(program.bindings)
        self.fnames = function_names()
        self.bars = []

    def program_text(self):
        parts = []
        for name, node in self.p.stmts:
            t = self.render(node).text
            parts.append(f"{name} = {t}" if name is not None else t)
        sep = self.s.pick("; ", "\n", ";") if self.s.kind != "spaced" else self.s.pick("; ", "\n")
        return sep.join(parts)

    # -- helpers --
    def at(self, node, level):
        r = self.render(node)
        if r.level < level:
            return R("(" + r.text + ")", PRIM)
        if self.s.kind == "star" and r.level < PRIM and self.s.chance(0.15):
            return R("(" + r.text + ")", PRIM)
        return r

    def sp(self):
        if self.s.kind == "spaced":
            return " "
        if self.s.kind == "split":
            return self.s.pick("", " ", " ")
        return self.s.pick(" ", "")

    def safe_run(self, run):
        return (_CHUNK.fullmatch(run) is not None and run not in self.declared
                and run not in self.fnames and not is_greek(run) and "_" not in run
                and run not in ("pi", "eye", "ones", "π") and not re.fullmatch(r"[^\W\d_]\d*", run))

    def juxtapose(self, a, b):
        """a b as a product: concatenated split names where safe, else a space."""
        if self.s.kind == "split" and a.tail and b.head and self.safe_run(a.tail + b.head) \
                and not (b.whole is False and b.text[len(b.head):len(b.head) + 1] == "(" and
                         _call_word(a.tail + b.head)):
            head = (a.text + b.head) if a.whole else a.head
            tail = (a.tail + b.text) if b.whole else b.tail
            return R(a.text + b.text, PROD, head, tail, a.whole and b.whole)
        sep = self.join_sep(a.text, b.text, a.tail)
        return R(a.text + sep + b.text, PROD, a.head, b.tail)

    def join_sep(self, left, right, left_run=None):
        l, r = left[-1], right[0]
        if self.s.kind == "spaced":
            return " "
        if _namechar(l) and (_namechar(r) or r in ".𝟙"):
            return " "
        if (l.isdigit() or l == ".") and (r.isdigit() or r == "."):
            return " "
        if l in "|‖" and r in "|‖":
            return " "
        if r == "(" and left_run and _call_word(left_run):
            return " "
        if left.endswith("ones") and r == "(":
            return " "
        if r == "-" or r == "−":
            return " "
        return self.s.pick("", " ") if not _namechar(r) else " "

    def binop(self, a, op, b, level):
        sp = self.sp()
        text = a.text + sp + op + sp + b.text
        if not sp and (a.text[-1] in "0123456789." and op[0] == "." or b.text[0] in "-−" or
                       op in ("-", "−") and b.text[0] in "-−"):
            text = a.text + " " + op + " " + b.text
        return R(text, level, a.head)

    # -- nodes --
    def render(self, n):
        m = getattr(self, "r_" + n.op)
        return m(n)

    def r_var(self, n):
        name = n.attr
        chunk = re.fullmatch(r"[^\W\d_]\d*", name) is not None
        return R(name, PRIM, name if chunk else None, name if chunk else None, chunk)

    def r_bind(self, n):
        return R(n.attr, PRIM)  # never part of a split run

    def r_num(self, n):
        v = n.attr
        s = self.s
        if v == 1e-3:
            t = s.pick("1e-3", "0.001", "1E-3")
        elif v == 0.5:
            t = s.pick("0.5", ".5", "0.50")
        elif v == 0.25:
            t = s.pick("0.25", ".25")
        elif v == 0.1:
            t = s.pick("0.1", ".1", "1e-1")
        elif v == int(v):
            t = s.pick(str(int(v)), str(int(v)), f"{int(v)}.0")
        else:
            t = repr(v)
        return R(t, PRIM)

    def r_pi(self, n):
        return R(self.s.pick("pi", "π"), PRIM)

    def r_dimsc(self, n):
        return R(n.attr, PRIM)

    def r_ones(self, n):
        s = self.s
        d = n.attr
        forms = ["𝟙", "ones", "1_" + d, "𝟙_" + d, f"ones({d})"]
        t = s.pick(*forms) if s.kind != "spaced" else s.pick("𝟙", "ones", "1_" + d)
        return R(t, PRIM)

    def r_eye(self, n):
        t = self.s.pick("I", "eye", "I_" + str(n.attr))
        if t == "I" and "I" in self.declared:
            t = "eye"
        chunk = t == "I"
        return R(t, PRIM, "I" if chunk else None, "I" if chunk else None, chunk)

    def r_add(self, n):
        return self.binop(self.at(n.args[0], SUM), "+", self.at(n.args[1], NEG), SUM)

    def r_sub(self, n):
        op = self.s.pick("-", "−") if self.s.kind != "split" else "-"
        return self.binop(self.at(n.args[0], SUM), op, self.at(n.args[1], NEG), SUM)

    def r_neg(self, n):
        a = self.at(n.args[0], NEG)
        op = self.s.pick("-", "−") if self.s.kind != "split" else "-"
        sep = " " if a.text[0] in "-−" else ""
        return R(op + sep + a.text, NEG)

    def r_had(self, n):
        op = {"split": (".*",), "spaced": ("⊙", ".*"), "star": ("⊙", "∘", ".*")}[self.s.kind]
        return self.binop(self.at(n.args[0], HAD), self.s.pick(*op), self.signed(n.args[1], PROD),
                          HAD)

    def r_ediv(self, n):
        a, b = n.args
        if b.klass != "scalar" and self.s.chance(0.25):  # `/` by a non-scalar is element-wise
            return self.binop(self.at(a, PROD), "/", self.at(b, APPLY), PROD)
        op = {"split": ("./",), "spaced": ("⊘", "./"), "star": ("⊘", "./")}[self.s.kind]
        return self.binop(self.at(a, HAD), self.s.pick(*op), self.signed(b, PROD), HAD)

    def signed(self, node, level):
        """After an explicit operator a leading minus is allowed: 2 * -x."""
        if node.op == "neg" and self.s.kind == "star" and self.s.chance(0.5):
            inner = self.at(node.args[0], level)
            return R(self.s.pick("-", "−") + inner.text, level)
        return self.at(node, level)

    def r_mm(self, n):
        a, b = n.args
        s = self.s
        la = self.at(a, PROD)
        if s.kind == "star" and s.chance(0.7):
            op = s.pick("*", "@", "*", "·")
            rb = self.signed(b, APPLY)
            return self.binop(la, op, rb, PROD)
        if s.kind == "spaced" and s.chance(0.15):
            return self.binop(la, "*", self.at(b, APPLY), PROD)
        rb = self.at(b, APPLY)
        if rb.text[0] in "-−":
            rb = R("(" + rb.text + ")", PRIM)
        if la.text.endswith("ones") and re.match(r"\(\s*\w+\s*\)", rb.text):
            return self.binop(la, "*", rb, PROD)  # ones (N) is ones(N), the sized vector
        return self.juxtapose(la, rb)

    def r_sdiv(self, n):
        a, b = n.args
        return self.binop(self.at(a, PROD), "/", self.signed(b, APPLY), PROD)

    def r_T(self, n):
        a = n.args[0]
        if a.op == "inv" and self.s.kind == "star" and self.s.chance(0.4):
            base = self.at(a.args[0], POST)
            return R(base.text + "⁻ᵀ", POST, base.head)
        base = self.at(a, POST)
        form = {"split": ("'", "'", "^T"), "spaced": ("^T", "'", "ᵀ"),
                "star": ("ᵀ", "^T", "^{T}", "'")}[self.s.kind]
        t = self.s.pick(*form)
        return R(base.text + t, POST, base.head)

    def r_inv(self, n):
        a = n.args[0]
        s = self.s
        if s.chance(0.3):
            return R("inv(" + self.render(a).text + ")", PRIM)
        base = self.at(a, POST)
        form = {"split": ("^-1", "^{-1}"), "spaced": ("^{-1}", "^-1", "⁻¹"),
                "star": ("⁻¹", "^{-1}", "^(-1)")}[s.kind]
        return R(base.text + s.pick(*form), POST, base.head)

    _SUP = dict(zip("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"))

    def power(self, base_node, k, elementwise=False):
        base = self.at(base_node, POST)
        s = self.s
        if elementwise:
            t = s.pick(".^", " .^ ", ".^") if s.kind != "split" else ".^"
            return R(base.text + t + self.exponent(k), POST, base.head)
        if isinstance(k, Node):
            return R(base.text + "^" + self.exponent(k), POST, base.head)
        forms = [f"^{k}", f"^{{{k}}}"]
        if s.kind == "star" and base.text[-1] not in self._SUP.values():  # ²³ would be 23
            forms += ["".join(self._SUP[ch] for ch in str(k)), f"^({k})"]
        return R(base.text + s.pick(*forms), POST, base.head)

    def exponent(self, e):
        """The text of an exponent node after ^ or .^"""
        s = self.s
        if e.op == "num":
            t = self.r_num(e).text
            return s.pick(t, "{" + t + "}", "(" + t + ")") if s.kind == "star" else t
        if e.op == "neg" and e.args[0].op == "num":
            t = self.r_num(e.args[0]).text
            return s.pick("-" + t, "{-" + t + "}", "(-" + t + ")")
        inner = self.render(e).text
        if e.op in ("var", "bind", "pi", "dimsc") and re.fullmatch(r"\w+", inner) \
                and s.chance(0.5):
            return inner
        return s.pick("(" + inner + ")", "{" + inner + "}")

    def r_pow(self, n):
        base, e = n.args
        if e.op == "num" and e.attr == int(e.attr) and base.klass != "mat":
            return self.power(base, int(e.attr))
        return self.power(base, e)

    def r_mpow(self, n):
        return self.power(n.args[0], n.attr)

    def r_epow(self, n):
        return self.power(n.args[0], n.args[1], elementwise=True)

    def call(self, name, arg_node, prefix_ok=True):
        s = self.s
        if prefix_ok and s.chance(0.3 if s.kind != "star" else 0.15):
            a = self.at(arg_node, APPLY)
            if a.text[0] not in "(-−":
                return R(name + " " + a.text, APPLY)
        return R(name + "(" + self.render(arg_node).text + ")", PRIM)

    def fn_spelling(self, canon):
        spellings = elementwise_functions().get(canon, [canon])
        if self.s.kind == "split":
            return canon
        return self.s.pick(*spellings)

    def r_fn(self, n):
        name = self.fn_spelling(n.attr)
        if len(n.args) > 1:  # parameters: elu(Z, α)
            sep = self.s.pick(", ", ",") if self.s.kind != "spaced" else ", "
            return R(name + "(" + sep.join(self.render(a).text for a in n.args) + ")", PRIM)
        if n.attr == "abs" and self.s.chance(0.4) and "abs" not in self.bars:
            self.bars.append("abs")
            inner = self.render(n.args[0]).text
            self.bars.pop()
            return R("|" + inner + "|", PRIM)
        return self.call(name, n.args[0])

    def r_kron(self, n):
        a, b = n.args
        if self.s.chance(0.3):
            sep = self.s.pick(", ", ",") if self.s.kind != "spaced" else ", "
            return R(f"kron({self.render(a).text}{sep}{self.render(b).text})", PRIM)
        return self.binop(self.at(a, HAD), "⊗", self.signed(b, PROD), HAD)

    def r_red(self, n):
        fname, axis = n.attr
        sep = self.s.pick(", ", ",") if self.s.kind != "spaced" else ", "
        return R(f"{fname}({self.render(n.args[0]).text}{sep}{axis})", PRIM)

    def r_call(self, n):
        f = n.attr
        arg = n.args[0]
        s = self.s
        if f == "norm":
            sub = ""
            if s.chance(0.3):
                sub = "_F" if arg.klass == "mat" else s.pick("_2", "_F")
            if "norm" not in self.bars and s.chance(0.6):
                self.bars.append("norm")
                inner = self.render(arg).text
                self.bars.pop()
                bar = s.pick("‖", "||") if s.kind != "split" else "||"
                if "abs" in self.bars:
                    bar = "‖"  # ||…|| inside |…| would lex as |||
                if bar == "||" and ("|" in inner):
                    inner = " " + inner + " "
                return R(bar + inner + bar + sub, PRIM)
            return R("norm(" + self.render(arg).text + ")" + (sub if sub != "_2" else ""), PRIM)
        if f == "logdet" and arg.spd and s.chance(0.2):
            return self.call("log", Node("call", (arg,), (1, 1), attr="det"))
        name = {"tr": ("tr", "trace"), "log_softmax": ("log_softmax", "logsoftmax")}.get(f, (f,))
        name = s.pick(*name) if s.kind != "split" else name[0]
        return self.call(name, arg)


def spellings(program, k=3, seed=0):
    """Up to k distinct spellings of the program."""
    out = []
    kinds = ["split", "spaced", "star"]
    for i in range(k):
        rng = random.Random(seed * 7919 + i)
        text = Renderer(program, Style(kinds[i % 3], rng)).program_text()
        if text not in out:
            out.append(text)
    return out


def canonical_text(program):
    """A fully parenthesised spelling (for reports)."""
    return spellings(program, 1, 0)[0]


# -- meaning: the tree as parser AST -----------------------------------------------------

def _num_text(v):
    return repr(float(v))


def to_ast(node):
    op = node.op
    a = [to_ast(x) for x in node.args]
    if op == "var" or op == "bind" or op == "dimsc":
        return Ast("name", value=node.attr)
    if op == "pi":
        return Ast("name", value="pi")
    if op == "num":
        return Ast("num", value=_num_text(node.attr))
    if op == "ones":
        return Ast("ones", value=None)
    if op == "eye":
        return Ast("eye", value=None)
    if op in ("add", "sub", "neg", "had", "ediv", "T", "inv", "epow", "pow"):
        return Ast(op, a)
    if op == "mm":
        return Ast("prod", a)
    if op == "sdiv":
        return Ast("div", a)
    if op == "mpow":
        k = node.attr
        e = Ast("num", value=str(abs(k)))
        return Ast("pow", (a[0], Ast("neg", (e,)) if k < 0 else e))
    if op == "fn" or op == "call":
        return Ast("call", a, value=node.attr)
    if op == "kron":
        return Ast("kron", a)
    if op == "red":
        fname, axis = node.attr
        return Ast("call", (a[0], Ast("num", value=str(axis))), value=fname)
    raise ValueError(f"to_ast: unknown op {op!r}")


def meaning(program):
    """The reference Program of the tree itself (no text involved)."""
    stmts = [(name, to_ast(node)) for name, node in program.stmts]
    return reference.Program(stmts, program.decls)


# -- data -------------------------------------------------------------------------------

def make_data(program, rng):
    """{name: value} of the kinds the generator asked for."""
    out = {}
    for name, v in program.vars.items():
        shape = tuple(program.sizes[d] if isinstance(d, str) else d for d in v.shape)
        if v.klass == "scalar":
            shape = ()
        elif v.klass == "col":
            shape = (shape[0],)
        if v.kind == "onehot":
            a = np.zeros(shape)
            if len(shape) == 1:
                a[rng.integers(shape[0])] = 1.0
            else:
                a[np.arange(shape[0]), rng.integers(shape[1], size=shape[0])] = 1.0
        elif v.kind == "spd":
            m = rng.standard_normal(shape)
            a = m @ m.T / shape[0] + np.eye(shape[0])
        elif v.kind == "symmetric":
            m = rng.standard_normal(shape)
            a = (m + m.T) / 2
        elif v.kind == "positive":
            a = rng.uniform(0.5, 1.5, size=shape)
        else:
            a = rng.standard_normal(shape)
            if shape == ():
                a = float(np.sign(a) * (0.3 + abs(a)))  # away from 0
        out[name] = float(a) if shape == () else a
    return out


# -- the truth ----------------------------------------------------------------------------

class Discard(Exception):
    """The program's reference evaluation is not usable at this data."""


@dataclass
class Truth:
    value: float
    grads: dict  # wrt -> array in the module convention (sym/projection applied)
    bindings: dict
    dims: dict
    shapes: dict  # wrt -> module-convention shape


def truth(program, arrays, prog=None):
    """Value, autograd gradients (sym(G) for symmetric/spd, projected for
    onehot), intermediates and dimension sizes of the program's meaning
    (`prog`: a reference.Program; default: the generator's tree)."""
    import autograd
    import autograd.numpy as anp
    prog = prog or meaning(program)
    dims = {d: program.sizes[d] for d in SYMBOLIC_DIMS if d in program.sizes}
    try:
        with np.errstate(all="ignore"):
            value, bound, info = prog.evaluate_all(arrays, dims=dims)
    except (reference.EvaluationError, np.linalg.LinAlgError) as e:
        raise Discard(f"reference: {e}") from None
    if not np.isfinite(value) or abs(value) > 1e8:
        raise Discard("value not finite or huge")
    if info["kink"] < 1e-6:
        raise Discard("at a kink")
    grads, shapes = {}, {}
    for w in program.wrt:
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if w in arrays:
                    g = autograd.grad(lambda x: prog.evaluate({**arrays, w: x}, dims=dims, xp=anp))(
                        arrays[w])
                else:
                    g = autograd.grad(lambda x: prog.evaluate(arrays, dims=dims, overrides={w: x},
                                                              xp=anp))(bound[w])
        except (reference.EvaluationError, np.linalg.LinAlgError) as e:
            raise Discard(f"autograd: {e}") from None
        g = np.asarray(g, dtype=float)
        if not np.all(np.isfinite(g)) or (g.size and np.max(np.abs(g)) > 1e8):
            raise Discard("gradient not finite or huge")
        kind = program.vars[w].kind if w in program.vars else None
        if kind in ("spd", "symmetric"):
            g = (g + g.T) / 2
        if kind == "onehot":
            g = project_onehot(g)
        grads[w] = float(g) if g.ndim == 0 else g
        shapes[w] = g.shape
    # a row binding as a 1×n array, so that read back as a name it is a row
    env = {n: (np.reshape(v, (1, -1)) if n in info.get("rows", ()) else v) for n, v in bound.items()}
    return Truth(value, grads, env, dict(info["dims"]), shapes)


def project_onehot(g):
    g = np.asarray(g, dtype=float)
    if g.ndim == 1:
        return g - np.mean(g)
    if g.ndim == 2:
        return g - np.mean(g, axis=1, keepdims=True)
    return g


def close(got, want):
    """(ok, relative error) entry-wise with RTOL/ATOL; a shape or type
    difference is not close."""
    want_a = np.asarray(want, dtype=float)
    try:
        got_a = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return False, math.inf
    if got_a.shape != want_a.shape:
        return False, math.inf
    if not got_a.size:
        return True, 0.0
    if not np.all(np.isfinite(got_a)):
        return False, math.inf
    scale = max(1.0, float(np.max(np.abs(want_a))))
    diff = np.abs(got_a - want_a)
    ok = bool(np.all(diff <= RTOL * np.abs(want_a) + ATOL * scale))
    return ok, float(np.max(diff) / scale)


# -- running one spelling ---------------------------------------------------------------------

@dataclass
class Outcome:
    src: str
    wrt: list
    vars: dict
    outcome: str
    detail: str = ""
    flags: list = field(default_factory=list)


def text_as_program(text):
    """A printed gradient as a program: `BODY\n  where δ1 = …\n        δ2 = …`
    (shared parts named after the body) becomes `δ1 = …; δ2 = …; BODY`."""
    lines = text.split("\n")
    body, defs = lines[0], []
    for line in lines[1:]:
        line = line.strip()
        if line.startswith("where "):
            line = line[len("where "):]
        if line:
            defs.append(line)
    return "\n".join(defs + [body])


def run_spelling(program, src, arrays, tr):
    """Classify one spelling (see OUTCOMES)."""
    from matdiff.api import Result
    from matdiff.numpy_emit import py_name
    decls = program.decls
    flags = []

    def out(kind, detail=""):
        return Outcome(src, list(program.wrt), dict(decls), kind, detail, flags)

    try:
        result = Result(src, program.wrt, decls)
        ns = result.numpy_namespace()
        texts = {w: result.gradient(w).text for w in program.wrt}
    except MatdiffError as e:
        return out("rejected", str(e).splitlines()[0])
    except RecursionError as e:
        return out("crashed derivation", f"RecursionError: {e}")
    except Exception as e:
        return out("crashed derivation", f"{type(e).__name__}: {e}")
    dims = {d: program.sizes[d] for d in SYMBOLIC_DIMS if d in program.sizes}
    try:
        with np.errstate(all="ignore"):
            parsed = reference.evaluate(src, arrays, dims=dims, vars=decls)
        ok, err = close(parsed, tr.value)
        if not ok:
            return out("wrong parse", f"the text means {parsed!r}, the program {tr.value!r}")
    except (reference.EvaluationError, MatdiffError) as e:
        return out("wrong parse", f"the reference cannot evaluate the text: {e}")
    kwargs = {py_name(n): v for n, v in arrays.items()}
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v1 = ns["value"](**kwargs)
            v2, grads = ns["value_and_gradient"](**kwargs)
            g_only = ns["gradient"](**kwargs)
    except Exception as e:
        return out("crashed module", f"{type(e).__name__}: {e}")
    problems = []
    for what, v in (("value", v1), ("value_and_gradient's value", v2)):
        ok, err = close(v, tr.value)
        if not ok:
            problems.append(f"{what} {v!r}, want {tr.value!r}")
        elif not isinstance(v, float):
            problems.append(f"{what} is a {type(v).__name__}, not a float")
    if problems:
        return out("wrong value", "; ".join(problems))
    if len(program.wrt) == 1:
        grads, g_only = (grads,), (g_only,)
    gproblems = []
    for w, g, g1 in zip(program.wrt, grads, g_only):
        want = tr.grads[w]
        kind = program.vars[w].kind if w in program.vars else None
        gg = project_onehot(g) if kind == "onehot" else g
        ok, err = close(gg, want)
        if not ok:
            gproblems.append(f"∂/∂{w}: shape {np.shape(g)} want {np.shape(want)}, rel. error {err:.2e}")
        elif np.ndim(want) == 0 and not isinstance(g, float):
            gproblems.append(f"∂/∂{w} is a {type(g).__name__}, not a float")
        ok1, _ = close(project_onehot(g1) if kind == "onehot" else g1, want)
        if ok and not ok1:
            gproblems.append(f"gradient() differs from value_and_gradient() for {w}")
    if gproblems:
        return out("wrong gradient", "; ".join(gproblems))
    tproblems = []
    for w in program.wrt:
        text = texts[w]
        want = tr.grads[w]
        kind = program.vars[w].kind if w in program.vars else None
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = reference.evaluate(text_as_program(text), arrays, dims={**dims, **tr.dims}, vars=decls,
                                         env=tr.bindings, like=tr.shapes[w])
        except (reference.EvaluationError, MatdiffError, np.linalg.LinAlgError) as e:
            tproblems.append(f"∂/∂{w} = {text}: cannot be read back: {str(e).splitlines()[0]}")
            continue
        if kind == "onehot":
            got = project_onehot(got)
        ok, err = close(got, want)
        if not ok:
            tproblems.append(f"∂/∂{w} = {text}: reads back with rel. error {err:.2e}")
    if tproblems:
        return out("wrong text", "; ".join(tproblems))
    return out("right")


def run_program(program, n_spellings=3, data_seed=0):
    """[Outcome] for each spelling, or raises Discard."""
    rng = np.random.default_rng(data_seed)
    for attempt in range(3):
        arrays = make_data(program, rng)
        try:
            tr = truth(program, arrays)
            break
        except Discard:
            if attempt == 2:
                raise
    return [run_spelling(program, src, arrays, tr)
            for src in spellings(program, n_spellings, program.seed)]


def run_source(src, wrt, vars=None, seed=0):
    """Classify a hand-written program (its meaning: the reference on its own
    text) with the same comparisons as a fuzzed spelling. Data: random, of
    the kinds matdiff infers, every dimension a different size."""
    from matdiff.api import Result
    from matdiff.check import random_inputs
    from matdiff.engine import shape_of
    from matdiff.numpy_emit import py_name
    if isinstance(wrt, str):
        wrt = [wrt]
    vars = dict(vars or {})
    problem = Result(src, [], vars).problem
    by_param = random_inputs(problem, np.random.default_rng(seed), sizes=SIZES + [8, 9, 10, 11])
    arrays = {n: by_param[py_name(n)] for n in problem.variables}
    infos = {}
    for n, node in problem.variables.items():
        kind = node.attr[1]
        infos[n] = VarInfo(n, tuple(shape_of(node)) or (1, 1),
                           kind if kind in ("spd", "symmetric", "onehot") else "normal", vars.get(n))
    program = Program([], infos, {}, list(wrt), seed)
    program.decls_override = vars
    tr = truth(program, arrays, reference.Program(src, vars))
    return run_spelling(program, src, arrays, tr)


def generate(seed, max_depth=3):
    """The program for a seed (deterministic)."""
    rng = random.Random(seed)
    for _ in range(50):
        g = Gen(rng, max_depth)
        try:
            p = g.program(seed)
        except _Retry:
            continue
        if p is not None:
            return p
    raise RuntimeError("could not generate a program")


def fuzz_one(seed, n_spellings=3, max_depth=3):
    """(program, [Outcome]) or (program, None) when discarded."""
    p = generate(seed, max_depth)
    try:
        return p, _in_one_deep_worker(run_program, p, n_spellings, seed)
    except Discard:
        return p, None


def _in_one_deep_worker(fn, *args):
    """matdiff runs each stage in a big-stack worker thread (matdiff.deep,
    where present); nested stages run inline, so one worker for the whole
    program saves a thread per stage."""
    try:
        from matdiff.deep import run_deep
    except ImportError:
        return fn(*args)
    return run_deep(fn, *args)


def command_line(o):
    """A reproducer as a matdiff command line."""
    import shlex
    parts = ["matdiff", "grad", shlex.quote(o.src)]
    for w in o.wrt:
        parts += ["--wrt", shlex.quote(w)]
    for n, d in o.vars.items():
        parts += ["--var", shlex.quote(f"{n}:{d}")]
    return " ".join(parts)


# -- rejections: documented limits -------------------------------------------------------------

# Messages of inputs that matdiff documents as unsupported (README "Errors",
# SPEC §1). The generator avoids them; a rejection that matches none of these
# is a well-typed program matdiff should have accepted (a bug).
DOCUMENTED_LIMITS = [
    (r"spectral norm", "‖X‖_2 of a matrix (README: an error)"),
    (r"non-integer power of the matrix", "X^p with non-integer p on a matrix: use .^"),
]


def failure_key(outcome, detail):
    """A failure's kind within its class, names elided (for grouping reports)."""
    if outcome == "rejected":
        return rejection_key(detail)
    if outcome == "wrong text":
        kinds = sorted(set(re.findall(r"(cannot be read back: [^(;:]*|reads back with)", detail)))
        return "; ".join(re.sub(r"'[^']*'", "'…'", k).strip() for k in kinds)
    if outcome in ("crashed module", "crashed derivation"):
        return detail.split(":")[0]
    if outcome == "wrong gradient":
        return "shape" if "shape (" in detail and "want (" in detail and \
            re.search(r"shape (\([^)]*\)) want (?!\1)", detail) else "values"
    return ""


def rejection_key(message):
    """A rejection message's kind: its lower-case words (names, shapes and
    the quoted source elided)."""
    msg = re.sub(r" \(at (line \d+, )?column \d+\)$", "", message.strip())
    msg = re.sub(r"'[^']*'", " ", msg)
    return " ".join(re.findall(r"(?<![\w'])[a-z][a-z-]+(?![\w(])", msg)) or msg


def documented_limit(message):
    for pattern, why in DOCUMENTED_LIMITS:
        if re.search(pattern, message):
            return why
    return None


# -- shrinking a failing program ---------------------------------------------------------------

def _replace(node, target, new):
    if node is target:
        return new
    if not node.args:
        return node
    args = tuple(_replace(a, target, new) for a in node.args)
    if all(a is b for a, b in zip(args, node.args)):
        return node
    return Node(node.op, args, node.shape, node.attr, node.pos, node.spd)


def _fresh_var(program, shape, kind):
    klass = "scalar" if shape == (1, 1) else "col" if shape[1] == 1 else "mat"
    pool = {"scalar": SCALAR_NAMES, "col": VECTOR_NAMES, "mat": MATRIX_NAMES}[klass]
    taken = set(program.vars) | set(program.bindings)
    for name in pool:
        if name in taken or "_" in name or len(name) > 2 and klass != "scalar":
            continue
        declared = None
        if kind in ("spd",):
            declared = f"spd({shape[0]})" if shape[0] in NUMERIC_DIMS else "spd"
        elif any(d in NUMERIC_DIMS for d in shape):
            r, c = shape
            declared = f"vector({r})" if c == 1 else f"matrix({r},{c})"
        return VarInfo(name, shape, kind, declared)
    return None


def _prune(program, stmts, vars_extra=()):
    """Drop bindings nothing uses (and wrt entries that went away)."""
    while True:
        used = set()
        for _, node in stmts:
            used.update(n.attr for n in node.walk() if n.op == "bind")
        dead = [i for i, (name, _) in enumerate(stmts[:-1]) if name is not None and name not in used]
        if not dead:
            break
        stmts = [s for i, s in enumerate(stmts) if i not in dead]
    names = set()
    for _, node in stmts:
        names.update(n.attr for n in node.walk() if n.op == "var")
    allvars = {**program.vars, **{v.name: v for v in vars_extra}}
    vars_ = {n: v for n, v in allvars.items() if n in names}
    binds = {n for n, _ in stmts[:-1] if n is not None}
    wrt = [w for w in program.wrt if w in vars_ or w in binds]
    if not wrt:
        return None
    return Program(stmts, vars_, program.sizes, wrt, program.seed, program.features)


def _candidates(program):
    if len(program.wrt) > 1:
        for w in program.wrt:
            yield Program(program.stmts, program.vars, program.sizes,
                          [x for x in program.wrt if x != w], program.seed, program.features)
    if len(program.stmts) > 1 and program.stmts[-1][0] is not None:
        name, node = program.stmts[-1]
        yield Program(program.stmts[:-1] + [(None, node)], program.vars, program.sizes,
                      program.wrt, program.seed, program.features)
    nodes = []
    for i, (_, root) in enumerate(program.stmts):
        seen = set()
        for n in root.walk():
            if id(n) not in seen and n.op not in ("var", "num"):
                seen.add(id(n))
                nodes.append((n.size(), i, n))
    nodes.sort(key=lambda t: -t[0])
    for _, i, n in nodes:
        options = [a for a in n.args if a.shape == n.shape and a.op != "num"]
        kind = "spd" if n.spd else "positive" if n.pos else "normal"
        row = n.shape[0] == 1 and n.shape[1] != 1
        shape = (n.shape[1], 1) if row else n.shape  # a row: the transpose of a new vector
        v = _fresh_var(program, shape, kind)
        leaf = None
        if n.shape == (1, 1) and not n.spd:
            leaf = Node("num", attr=2.0, pos=True)
        if v is not None:
            new_var = Node("var", shape=shape, attr=v.name, pos=kind == "positive",
                           spd=kind == "spd")
            options.append(Node("T", (new_var,), n.shape) if row else new_var)
        if leaf is not None:
            options.append(leaf)
        for new in options:
            stmts = list(program.stmts)
            name, root = stmts[i]
            stmts[i] = (name, _replace(root, n, new))
            extra = [v] if v is not None else []
            p = _prune(program, stmts, extra)
            if p is not None:
                yield p


def _fails_as(program, outcome, n_spellings, data_seed):
    try:
        outs = _in_one_deep_worker(run_program, program, n_spellings, data_seed)
    except Discard:
        return None
    except Exception:
        return None
    for o in outs:
        if o.outcome == outcome:
            return o
    return None


def shrink(seed, outcome, n_spellings=3, max_depth=3, budget=200):
    """The smallest program found (greedily) that still fails as `outcome`:
    subtrees replaced by one of their operands or by a variable, unused
    intermediates and extra --wrt names dropped. Returns an Outcome or None."""
    program = generate(seed, max_depth)
    best = _fails_as(program, outcome, n_spellings, seed)
    if best is None:
        return None
    improved = True
    while improved and budget > 0:
        improved = False
        for cand in _candidates(program):
            budget -= 1
            o = _fails_as(cand, outcome, n_spellings, seed)
            if o is not None:
                program, best, improved = cand, o, True
                break
            if budget <= 0:
                break
    return best
