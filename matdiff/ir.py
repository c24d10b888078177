"""The IR: an immutable, hash-consed expression DAG; every node knows its shape.

Shapes are (rows, cols) with each dimension an int, a dimension name or a
product of them (dims.Prod: vec and kron).
Vectors are (n, 1) columns, scalars (1, 1). Nodes are built only through the
constructors below, which keep every node in canonical form (like terms
collected, scalars pulled out, transposes pushed inward, ...): structurally
equal expressions are the same object, so `is` is equality.

Ops and their args / attr:
  var(name, kind)  const(value)  dim(name)  pi  ones(n)  eye(n)  zero
  add(*terms)   mul(*factors)  element-wise product, scalars broadcast
  pow(base, exponent)  element-wise power   matmul(*chain) (>= 2 non-scalars)
  T  inv  tr  det  logdet  sum  norm  diag (vector->matrix)
  diagvec (matrix->vector)  fn(name; x, params...)  softmax  vec  unvec  kron  log_softmax  logsumexp
"""

import weakref
import zlib
from fractions import Fraction

from .dims import Prod
from .errors import ShapeError

# Weak values: a node lives as long as something uses it, so long-running
# sessions (notebooks) do not accumulate every expression ever built.
_TABLE = weakref.WeakValueDictionary()


class Node:
    __slots__ = ("op", "args", "attr", "shape", "skey", "depth", "leaf", "__weakref__")

    def __repr__(self):
        shape = "×".join(str(d) for d in self.shape)
        return f"<{self.op} {self.attr if self.attr is not None else ''} {shape} #{self.skey:08x}>"

    @property
    def is_scalar(self):
        return self.shape == (1, 1)

    @property
    def rows(self):
        return self.shape[0]

    @property
    def cols(self):
        return self.shape[1]


def _make(op, args=(), attr=None, shape=(1, 1)):
    key = (op, args, attr, shape)
    node = _TABLE.get(key)
    if node is not None:
        return node
    node = Node()
    node.op, node.args, node.attr, node.shape = op, args, attr, shape
    # A stable structural key (no per-process string hashing) for canonical order.
    h = zlib.crc32(repr((op, attr, shape)).encode())
    for a in args:
        h = zlib.crc32(a.skey.to_bytes(4, "little"), h)
    node.skey = h
    node.depth = 1 + max((a.depth for a in args), default=-1)
    if op == "var":
        node.leaf = attr[0]
    elif op == "ones":
        node.leaf = "𝟙"
    elif args:
        node.leaf = args[0].leaf
    else:
        node.leaf = ""
    _TABLE[key] = node
    return node


# ----------------------------------------------------------------------------
# Named rewrites. A simplification is a Rule in a table: a name (the identity
# it uses, which --steps and `trace_rewrites` report), a phase, and a function
# that returns the rewritten node or None. Keys: an op's name (its
# constructor's arguments), ("pair", left op, right op) for adjacent factors of
# a matrix product, ("T", op) for a transpose, ("fn", name) for an element-wise
# function, "factor" for the common factors of a sum. The core's rules are
# below; every op's are in matdiff/ops/rewrites.py. Constructors themselves do
# only what keeps hash-consing sound: flatten, fold numbers, collect like
# terms and powers, and order the operands canonically.

PHASES = ("canonicalize", "collect", "factor", "lower")


class Rule:
    __slots__ = ("name", "phase", "key", "fn")

    def __init__(self, name, phase, key, fn):
        self.name, self.phase, self.key, self.fn = name, phase, key, fn

    def __repr__(self):
        return f"<rule {self.phase}: {self.name}>"


_RULES = {}     # key -> [Rule], in phase order (registration order within one)
_LOWER = {}     # op -> [Rule] of the lower phase: applied by lower(), never by constructors
_PAIRS = []     # the ("pair", a, b) rules, "*" a wildcard op
_PAIR_INDEX = {}
_trace = None   # a list while trace_rewrites() records
_raw = False    # True inside without_rewrites(): constructors skip the table


def rewrite(key, name, phase="collect"):
    """Decorator: add fn to the table as the rule `name` of `phase` under key."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}")

    def register(fn):
        r = Rule(name, phase, key, fn)
        if phase == "lower":
            _LOWER.setdefault(key, []).append(r)
        elif isinstance(key, tuple) and key[0] == "pair":
            _PAIRS.append(r)
            _PAIRS.sort(key=lambda q: PHASES.index(q.phase))
            _PAIR_INDEX.clear()
        else:
            rules = _RULES.setdefault(key, [])
            rules.append(r)
            rules.sort(key=lambda q: PHASES.index(q.phase))
        return fn
    return register


def rules():
    """Every rule of the table (for documentation and tests)."""
    return ([r for rs in _RULES.values() for r in rs] + list(_PAIRS) + [_COLLECT, _POWERS]
            + [r for rs in _LOWER.values() for r in rs])


def lower(outputs):
    """outputs (a list of nodes) with the lower phase applied to every node
    beneath them, bottom up: the forms code is emitted from (diag(v)M as the
    broadcast product v𝟙ᵀ ⊙ M), never printed. A lower rule, keyed by op,
    gets the node (its arguments lowered already) and returns its
    replacement or None; lowered nodes are built as they stand (`raw`), since
    the canonical rules would undo a lowering."""
    if not _LOWER:
        return list(outputs)
    memo = {}
    for out in outputs:
        stack = [(out, False)]
        while stack:  # post-order without recursion: DAGs are as deep as the network
            n, ready = stack.pop()
            if n in memo:
                continue
            if not ready:
                stack.append((n, True))
                stack.extend((a, False) for a in n.args if a not in memo)
                continue
            args = tuple(memo[a] for a in n.args)
            m = n if args == n.args else _make(n.op, args, n.attr, n.shape)
            for r in _LOWER.get(m.op, ()):
                new = r.fn(m)
                if new is not None:
                    if _trace is not None:
                        _fired(r, lambda m=m: m, new)
                    m = new
                    break
            memo[n] = m
    return [memo[o] for o in outputs]


def raw(op, args, shape, attr=None):
    """The node op(args) as it stands, no rule applied (for lower rules)."""
    return _make(op, tuple(args), attr, tuple(shape))


class Firing(str):
    """One firing of a rule, as trace_rewrites records it: the rule's name (a
    str, so a trace reads as the list of names), with `before` (the node the
    rule rewrote, as it would have been built without the rule) and `after`
    (what the rule itself made of it: the rules that then fired inside its
    result are the firings recorded after it)."""

    def __new__(cls, rule, before, after):
        self = super().__new__(cls, rule.name)
        self.rule, self.before, self.after = rule, before, after
        return self

    @property
    def name(self):
        return self.rule.name


def _fired(rule, before, after, mark=None, own=None):
    """Record a firing while tracing. `before` builds the unrewritten node;
    `after` is the result, or a function building it; `own` (optional)
    builds the rule's own result with the table off, shown in place of
    `after` (the rules that fired inside it were recorded from `mark` on, so
    the firing goes in front of them). Called with the trace off."""
    global _trace
    if _trace is not None:
        trace, _trace = _trace, None
        try:
            b = before()
            a = after() if callable(after) else after
            if own is not None:
                try:
                    with without_rewrites():
                        a = own() or a
                except Exception:  # a rule that needs its inner rewrites: show the result
                    pass
        finally:
            _trace = trace
        trace.insert(len(trace) if mark is None else mark, Firing(rule, b, a))


def _rewrite(key, *args, before=None):
    """The first rule of `key` that rewrites args, or None; before() builds
    the node without rewriting (for the trace: callers pass it only while
    tracing)."""
    if _raw:
        return None
    for r in _RULES.get(key, ()):
        mark = None if _trace is None else len(_trace)
        out = r.fn(*args)
        if out is not None:
            if _trace is not None:
                _fired(r, before, out, mark, lambda: r.fn(*args))
            return out
    return None


def _pair_rules(a, b):
    k = (a.op, b.op)
    rs = _PAIR_INDEX.get(k)
    if rs is None:
        rs = _PAIR_INDEX[k] = [r for r in _PAIRS if r.key[1] in (a.op, "*")
                               and r.key[2] in (b.op, "*")]
    return rs


class trace_rewrites:
    """with ir.trace_rewrites() as names: … records the rules that fired (in
    order) while building inside the block: each a Firing, the rule's name
    with the node it rewrote (`before`) and the result (`after`)."""

    def __enter__(self):
        global _trace
        self.outer, _trace = _trace, []
        return _trace

    def __exit__(self, *exc):
        global _trace
        inner, _trace = _trace, self.outer
        if self.outer is not None:
            self.outer.extend(inner)
        return False


class without_rewrites:
    """with ir.without_rewrites(): … builds with every named rule switched
    off, the table's and the constructors' own (like terms stay apart, and
    powers of one base): the form a rule template gives before the named
    identities simplify it, as --steps shows it. Numbers still fold, and
    products, sums and transposes keep their canonical shape. Its nodes are
    for display only; nothing built inside fires or is traced."""

    def __enter__(self):
        global _raw, _trace
        self.outer = _raw, _trace
        _raw, _trace = True, None

    def __exit__(self, *exc):
        global _raw, _trace
        _raw, _trace = self.outer
        return False


# The constructors' own canonical steps, named for --steps.
_COLLECT = Rule("collecting like terms: aX + bX = (a + b)X", "collect", "add", None)
_POWERS = Rule("powers of one base: x^a ⊙ x^b = x^(a+b)", "collect", "mul", None)


# Symmetry of registered ops, from their entries' `symmetric` key (filled by
# matdiff.ops): "always" (diag(v)), "first" (X⁻¹ of a symmetric X), "all"
# (A ⊗ B of symmetric A, B).
SYMMETRY = {}


def clear_cache():
    """Drop the hash-cons table (long-running processes may call this)."""
    _TABLE.clear()


# ----------------------------------------------------------------------------
# Leaves


def num(v):
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 2 ** 53:
            v = Fraction(int(v))
    elif isinstance(v, int):
        v = Fraction(v)
    return _make("const", (), v)


def var(name, kind, shape):
    return _make("var", (), (name, kind), tuple(shape))


def dim(d):
    """A dimension used as a scalar; a product of dimensions is their product."""
    if isinstance(d, int):
        return num(d)
    if isinstance(d, Prod):
        return mul(*[dim(f) for f in d.factors])
    return _make("dim", (), d)


def pi():
    return _make("pi")


def ones(n):
    if n == 1:
        return num(1)
    return _make("ones", (), n, (n, 1))


def eye(n):
    if n == 1:
        return num(1)
    return _make("eye", (), n, (n, n))


def zero(shape):
    if shape == (1, 1):
        return num(0)
    return _make("zero", (), None, tuple(shape))


def ones_like(shape):
    r, c = shape
    if c == 1:
        return ones(r)
    if r == 1:
        return transpose(ones(c))
    return matmul(ones(r), transpose(ones(c)))


def is_zero(x):
    return x.op == "zero" or (x.op == "const" and x.attr == 0)


def is_ones_matrix(x):
    """𝟙, 𝟙ᵀ or 𝟙𝟙ᵀ: an all-ones array."""
    if x.op == "ones":
        return True
    if x.op == "T":
        return x.args[0].op == "ones"
    if x.op == "matmul" and len(x.args) == 2:
        a, b = x.args
        return a.op == "ones" and b.op == "T" and b.args[0].op == "ones"
    return False


# ----------------------------------------------------------------------------
# Sums


def split_coef(x):
    """x = c * rest with c a number."""
    if x.op == "const":
        return x.attr, None
    if x.op == "mul" and x.args[0].op == "const":
        rest = x.args[1:]
        return x.args[0].attr, (rest[0] if len(rest) == 1 else _make("mul", rest, None, x.shape))
    return Fraction(1), x


def _bshape(xs, what):
    shape = (1, 1)
    for x in xs:
        if x.shape == (1, 1):
            continue
        if shape == (1, 1):
            shape = x.shape
        elif x.shape != shape:
            raise ShapeError(f"{what} of arrays of different shapes {_fmt(shape)} and {_fmt(x.shape)}")
    return shape


def _fmt(shape):
    return "×".join(str(d) for d in shape)


def add(*xs):
    shape = _bshape(xs, "addition")
    terms = {}
    count = 0
    for x in xs:
        if x.op == "T" and x.args[0].op == "add":
            x = _make("add", tuple(transpose(t) for t in x.args[0].args), None, x.shape)
        for t in (x.args if x.op == "add" else (x,)):
            if is_zero(t):
                continue
            c, core = split_coef(t)
            if core is not None:
                count += 1
            terms[core] = terms.get(core, 0) + c
    items = [(c, t) for t, c in terms.items() if c != 0]
    if count > len(terms) - (None in terms):  # like terms were collected
        if _raw:
            return _uncollected(xs, shape)
        if _trace is not None:
            _fired(_COLLECT, lambda: _uncollected(xs, shape), lambda: _sum_of(items, shape))
    return _sum_of(_factor(items, shape), shape)


def _uncollected(xs, shape):
    """The sum of xs with like terms left apart (numbers added up)."""
    const, out = Fraction(0), []
    for t in _terms_of(xs):
        if t.op == "const":
            const += t.attr
        else:
            out.append(t)
    if const:
        out.append(num(const))
    return _make("add", tuple(out), None, shape)


def _terms_of(xs):
    """The terms of the sum of xs, uncollected."""
    out = []
    for x in xs:
        if x.op == "T" and x.args[0].op == "add":
            out.extend(transpose(t) for t in x.args[0].args)
        else:
            out.extend(x.args if x.op == "add" else (x,))
    return tuple(t for t in out if not is_zero(t))


def _sum_of(items, shape):
    """The sum node of (coefficient, term) items, as add has collected them."""
    if not items:
        return zero(shape)
    if len(items) == 1:
        c, t = items[0]
        out = num(c) if t is None else scale(c, t)
        if out.shape != shape:  # a lone scalar term broadcast over a shape
            out = mul(out, ones_like(shape))
        return out
    nodes = [num(c) if t is None else scale(c, t) for c, t in items]
    nodes.sort(key=_canonical)
    return _make("add", tuple(nodes), None, shape)


def _canonical(x):
    """The canonical order of a sum's terms and a product's factors: by
    structure alone (a stable crc32 key, never Python's salted hash). The order
    a reader sees is the printer's (matdiff/present.py), not this one."""
    return x.skey


def scale(c, x):
    if c == 1:
        return x
    return mul(num(c), x)


def _chain(x):
    return list(x.args) if x.op == "matmul" else [x]


def _scalar_parts(x):
    """Split a term core into (non-numeric scalar factors, remaining core)."""
    if x.op == "mul" and not x.is_scalar:
        sc = [f for f in x.args if f.is_scalar]
        if sc:
            rest = [f for f in x.args if not f.is_scalar]
            return sc, (rest[0] if len(rest) == 1 else mul(*rest))
    return [], x


def _linear(x, f):
    """f(s·M) = s·f(M) for a linear f: x's scalar factors come out, or None."""
    sc, core = _scalar_parts(x)
    return mul(*sc, f(core)) if sc else None


def _factor(items, shape):
    """Pull factors common to every term out of a sum (textbook form): the
    first "factor" rule that applies."""
    if _raw or len(items) < 2 or any(t is None for _, t in items):
        return items
    for r in _RULES.get("factor", ()):
        mark = None if _trace is None else len(_trace)
        out = r.fn(items, shape)
        if out is not None:
            if _trace is not None:
                _fired(r, lambda: _sum_of(items, shape), lambda: _sum_of(out, shape), mark,
                       lambda: _sum_of(r.fn(items, shape) or out, shape))
            return out
    return items


@rewrite("factor", "common scalar factor: sA + sB = s(A + B)", "factor")
def _common_scalar(items, shape):
    parts = [_scalar_parts(t) for _, t in items]
    common = set(parts[0][0])
    for sc, _ in parts[1:]:
        common &= set(sc)
    if not common:
        return None
    inner = []
    for (c, _), (sc, core) in zip(items, parts):
        rest = [f for f in sc if f not in common] + [core]
        inner.append(scale(c, mul(*rest)))
    return [(Fraction(1), mul(*common, add(*inner)))]


@rewrite("factor", "common coefficient: 2A + 2B = 2(A + B)", "factor")
def _common_coefficient(items, shape):
    coefs = {c for c, _ in items}
    if len(coefs) == 1:
        (c,) = coefs
        if c not in (1, -1):
            return [(c, add(*[t for _, t in items]))]
    return None


def _full(items, shape):
    # a broadcast scalar term has no matrix factor in common with the rest
    return all(t.shape == shape for _, t in items)


@rewrite("factor", "common left factor: AB + AC = A(B + C)", "factor")
def _common_left(items, shape):
    if not _full(items, shape):
        return None
    chains = [_chain(t) for _, t in items]
    if all(len(ch) >= 2 for ch in chains):
        first = chains[0][0]
        if all(ch[0] is first for ch in chains):
            inner = add(*[scale(c, matmul(*ch[1:])) for (c, _), ch in zip(items, chains)])
            return [(Fraction(1), matmul(first, inner))]
    return None


@rewrite("factor", "common right factor: BA + CA = (B + C)A", "factor")
def _common_right(items, shape):
    if not _full(items, shape):
        return None
    chains = [_chain(t) for _, t in items]
    if all(len(ch) >= 2 for ch in chains):
        last = chains[0][-1]
        if all(ch[-1] is last for ch in chains):
            inner = add(*[scale(c, matmul(*ch[:-1])) for (c, _), ch in zip(items, chains)])
            return [(Fraction(1), matmul(inner, last))]
    return None


@rewrite("factor", "common Hadamard factor: A ⊙ X + B ⊙ X = (A + B) ⊙ X", "factor")
def _common_hadamard(items, shape):
    if not _full(items, shape) or not all(t.op == "mul" and not t.is_scalar for _, t in items):
        return None
    common = set(items[0][1].args)
    for _, t in items[1:]:
        common &= set(t.args)
    common = [f for f in common if not f.is_scalar and f.shape == shape]
    # only where each term keeps a matrix factor (no broadcast scalar left over)
    if common and all(sum(not f.is_scalar for f in t.args) > len(common) for _, t in items):
        inner = add(*[scale(c, mul(*[f for f in t.args if f not in common])) for c, t in items])
        return [(Fraction(1), mul(*common, inner))]
    return None


# ----------------------------------------------------------------------------
# Element-wise products and powers


_FLATTEN_LIMIT = 12


def mul(*xs):
    shape = _bshape(xs, "element-wise product")
    coef = Fraction(1)
    powers = {}
    other = []
    combined = False
    for x in xs:
        # A long product stays one factor: flattening it into every product
        # built on it (an adjoint times σ' at each layer) would cost O(depth²).
        flat = x.op == "mul" and len(x.args) <= _FLATTEN_LIMIT
        for f in (x.args if flat else (x,)):
            if f.op == "const":
                coef = coef * f.attr
                continue
            if is_zero(f):
                return zero(shape)
            if f.op == "pow" and f.args[1].op == "const":
                base, e = f.args[0], f.args[1].attr
            else:
                base, e = f, Fraction(1)
            if is_ones_matrix(base):  # 𝟙 ⊙ 𝟙 = 𝟙
                powers[base] = Fraction(1)
                continue
            if base in powers:
                combined = True
            powers[base] = powers.get(base, 0) + e
    if coef == 0:
        return zero(shape)
    if combined:
        if _raw:
            return _uncombined(xs, coef, shape)
        if _trace is not None:
            _fired(_POWERS, lambda: _uncombined(xs, coef, shape), lambda: mul(*xs))
    for base, e in powers.items():
        if e != 0:
            other.append(power(base, num(e)) if e != 1 else base)
    # An all-ones factor does nothing next to another factor of full shape.
    if any(not f.is_scalar and f.shape == shape and not is_ones_matrix(f) for f in other):
        other = [f for f in other if not is_ones_matrix(f)]
    if isinstance(coef, float) and coef.is_integer():
        coef = Fraction(int(coef))
    if not other:
        if shape == (1, 1):
            return num(coef)
        base = ones_like(shape)
        return base if coef == 1 else _make("mul", (num(coef), base), None, shape)
    if shape != (1, 1) and all(f.is_scalar for f in other):
        other.append(ones_like(shape))  # z ⊙ z⁻¹ cancelled: the shape stays, as s𝟙
    other.sort(key=_canonical)
    if coef != 1:
        other.insert(0, num(coef))
    if len(other) == 1:
        only = other[0]
        if only.shape != shape:
            return mul(only, ones_like(shape))
        return only
    return _make("mul", tuple(other), None, shape)


def _uncombined(xs, coef, shape):
    """The product of xs with the powers of one base left apart (the numbers
    multiplied into coef)."""
    out = tuple(f for x in xs for f in (x.args if x.op == "mul" and len(x.args) <= _FLATTEN_LIMIT
                                        else (x,)) if f.op != "const")
    return _make("mul", ((num(coef),) if coef != 1 else ()) + out, None, shape)


def power(base, e):
    """Element-wise power base.^e (e a node, usually a constant)."""
    if e.op == "const":
        p = e.attr
        if p == 1:
            return base
        if p == 0:
            return ones_like(base.shape) if not base.is_scalar else num(1)
        if base.op == "const" and isinstance(p, Fraction) and p.denominator == 1:
            try:
                return num(base.attr ** int(p))
            except ZeroDivisionError:
                pass
        if base.op == "pow" and base.args[1].op == "const" and isinstance(p, Fraction) \
                and p.denominator == 1:
            return power(base.args[0], num(base.args[1].attr * p))
        if base.op == "mul" and base.is_scalar and isinstance(p, Fraction) and p.denominator == 1:
            return mul(*[power(f, e) for f in base.args])
    if is_zero(base) and e.op == "const" and e.attr > 0:
        return base
    return _make("pow", (base, e), None, base.shape)


def recip(x):
    return power(x, num(-1))


def neg(x):
    return scale(-1, x)


def sub(a, b):
    return add(a, neg(b))


# ----------------------------------------------------------------------------
# Matrix products


def matmul(*xs):
    scalars = []
    chain = []
    for x in xs:
        if x.is_scalar:
            scalars.append(x)
            continue
        sc, core = _scalar_parts(x) if x.op == "mul" else ([], x)
        scalars.extend(sc)
        if core.op == "matmul":
            chain.extend(core.args)
        else:
            chain.append(core)
    for a, b in zip(chain, chain[1:]):
        if a.cols != b.rows:
            raise ShapeError(f"matrix product of {_fmt(a.shape)} and {_fmt(b.shape)}")
    if not chain:
        return mul(*scalars) if scalars else num(1)
    shape = (chain[0].rows, chain[-1].cols)
    if any(is_zero(f) for f in chain + scalars):
        return zero(shape)
    chain = _simplify_chain(chain, scalars)
    chain = _split_scalar_products(chain, scalars)
    if not chain:
        core = eye(shape[0])
    elif len(chain) == 1:
        core = chain[0]
    else:
        core = _make("matmul", tuple(chain), None, shape)
    return mul(*scalars, core) if scalars else core


def _split_scalar_products(chain, scalars):
    """aᵀv vᵀb = (aᵀv)(vᵀb): a row-to-column stretch inside a longer chain is a
    scalar factor."""
    while True:
        for i, f in enumerate(chain):
            if f.rows != 1:
                continue
            j = next(k for k in range(i, len(chain)) if chain[k].cols == 1) \
                if any(chain[k].cols == 1 for k in range(i, len(chain))) else None
            if j is not None and j > i and (i, j) != (0, len(chain) - 1):
                scalars.append(matmul(*chain[i:j + 1]))
                chain = chain[:i] + chain[j + 1:]
                break
        else:
            return chain


def _is_onehot(x):
    return x.op == "var" and x.attr[1] == "onehot"


def _simplify_chain(chain, scalars):
    """Local rewrites of adjacent factors; factors that become scalars go to `scalars`."""
    changed = True
    while changed:
        changed = False
        out = []
        for f in chain:
            if f.op == "eye":
                changed = True
                continue
            if out:
                prev = out[-1]
                rep = _pair(prev, f)
                if rep is not None:
                    out.pop()
                    if rep.is_scalar:
                        scalars.append(rep)
                    else:
                        out.append(rep)
                    changed = True
                    continue
            out.append(f)
        chain = out
    return chain


def _cancels(parts):
    """Some of the terms would cancel (or are zero) in add(*parts)."""
    coefs = {}
    for p in parts:
        if is_zero(p):
            return True
        for t in (p.args if p.op == "add" else (p,)):
            c, core = split_coef(t)
            coefs[core] = coefs.get(core, 0) + c
    return any(c == 0 for c in coefs.values())


def _pair(a, b):
    """Simplify the adjacent pair a b by the first pair rule that applies, or None."""
    if _raw:
        return None
    for r in _pair_rules(a, b):
        mark = None if _trace is None else len(_trace)
        out = r.fn(a, b)
        if out is not None:
            if _trace is not None:
                _fired(r, lambda: _make("matmul", (a, b), None, (a.rows, b.cols)), out, mark,
                       lambda: r.fn(a, b))
            return out
    return None


# The core's pair rules: all-ones vectors, row and column sums.

@rewrite(("pair", "var", "ones"), "one-hot rows sum to one: Y𝟙 = 𝟙")
def _onehot_rows(a, b):
    return ones(a.rows) if _is_onehot(a) else None


@rewrite(("pair", "T", "T"), "one-hot rows sum to one: 𝟙ᵀYᵀ = 𝟙ᵀ")
def _onehot_rows_t(a, b):
    if a.args[0].op == "ones" and _is_onehot(b.args[0]):
        return transpose(ones(b.cols))
    return None


@rewrite(("pair", "T", "ones"), "𝟙ᵀ𝟙 = n")
def _ones_dot(a, b):
    return dim(b.rows) if a.args[0].op == "ones" else None


@rewrite(("pair", "T", "var"), "a one-hot vector sums to one: 𝟙ᵀy = 1")
def _onehot_sum(a, b):
    return num(1) if a.args[0].op == "ones" and _is_onehot(b) and b.cols == 1 else None


@rewrite(("pair", "T", "ones"), "a one-hot vector sums to one: yᵀ𝟙 = 1")
def _onehot_sum_t(a, b):
    return num(1) if _is_onehot(a.args[0]) and a.rows == 1 else None


def _row_constant(f):
    """f = c𝟙ᵀ: constant along each row."""
    return f.op == "matmul" and len(f.args) == 2 and f.args[0].cols == 1 \
        and f.args[1].op == "T" and f.args[1].args[0].op == "ones"


def _column_constant(f):
    """f = 𝟙r: constant down each column."""
    return f.op == "matmul" and len(f.args) == 2 and f.args[1].rows == 1 \
        and f.args[0].op == "ones"


@rewrite(("pair", "mul", "ones"), "row sums: (c𝟙ᵀ ⊙ A)𝟙 = c ⊙ (A𝟙)")
def _row_sum_scaled(a, b):
    if a.is_scalar:
        return None
    rowc = [f for f in a.args if _row_constant(f)]
    if not rowc:
        return None
    f = rowc[0]
    rest = [g for g in a.args if g is not f]
    return mul(f.args[0], matmul(mul(*rest), b))


@rewrite(("pair", "add", "ones"), "row sums of a sum where terms cancel: (X − X𝟙𝟙ᵀ/n)𝟙 = 0")
def _row_sum_distributed(a, b):
    if a.is_scalar:
        return None
    parts = [mul(t, dim(a.cols), ones(a.rows)) if t.is_scalar else matmul(t, b) for t in a.args]
    # (checked before add, which would factor (…)𝟙 back)
    return add(*parts) if _cancels(parts) else None


@rewrite(("pair", "T", "mul"), "column sums: 𝟙ᵀ(𝟙r ⊙ A) = r ⊙ 𝟙ᵀA")
def _column_sum_scaled(a, b):
    if a.args[0].op != "ones" or b.is_scalar:
        return None
    colr = [f for f in b.args if _column_constant(f)]
    if not colr:
        return None
    f = colr[0]
    rest = [g for g in b.args if g is not f]
    return mul(f.args[1], matmul(a, mul(*rest)))


@rewrite(("pair", "T", "add"), "column sums of a sum where terms cancel: 𝟙ᵀ(X − 𝟙𝟙ᵀX/N) = 0")
def _column_sum_distributed(a, b):
    if a.args[0].op != "ones" or b.is_scalar:
        return None
    parts = [mul(t, dim(b.rows), transpose(ones(b.cols))) if t.is_scalar else matmul(a, t)
             for t in b.args]
    return add(*parts) if _cancels(parts) else None


# ----------------------------------------------------------------------------
# Transpose and symmetry


def is_symmetric(x):
    op = x.op
    if x.is_scalar or op in ("eye", "zero") or SYMMETRY.get(op) == "always":
        return True
    if x.rows != x.cols:
        return False
    if op == "var":
        return x.attr[1] in ("symmetric", "spd")
    if op in ("mul", "add"):
        if all(is_symmetric(a) for a in x.args):
            return True
        if op == "add":
            return frozenset(x.args) == frozenset(transpose(a) for a in x.args)
        return False
    # Not through `let`: a named intermediate may be differentiated as an
    # independent input, and Z1ᵀ = Z1 holds for its value, not its differential.
    if op in ("fn", "pow") or SYMMETRY.get(op) == "first":
        return is_symmetric(x.args[0])
    if SYMMETRY.get(op) == "all":
        return all(is_symmetric(a) for a in x.args)
    if op == "matmul":
        ch = x.args
        n = len(ch)
        for i in range(n // 2):
            if transpose(ch[i]) is not ch[n - 1 - i]:
                return False
        return n % 2 == 0 or is_symmetric(ch[n // 2])
    return False


def _transpose_free(x):
    """Transposing x adds no transpose sign (it is one, or it is symmetric)."""
    return x.op == "T" or x.is_scalar or is_symmetric(x) or (
        x.op in ("mul", "add") and all(_transpose_free(a) for a in x.args)) or (
        x.op in ("fn", "pow") and _transpose_free(x.args[0])) or x.op == "ones"


def transpose(x):
    if x.is_scalar:
        return x
    op = x.op
    if op == "T":
        return x.args[0]
    if op == "zero":
        return zero((x.cols, x.rows))
    if is_symmetric(x):
        return x
    if op == "matmul":
        return matmul(*[transpose(a) for a in reversed(x.args)])
    if op == "mul" and _transpose_free(x):
        return mul(*[transpose(a) for a in x.args])
    sc, core = _scalar_parts(x)
    if sc:
        return mul(*sc, transpose(core))
    if op == "add" and _transpose_free(x):
        return add(*[transpose(a) for a in x.args])
    if op == "fn" and _transpose_free(x.args[0]):
        return fn(x.attr, transpose(x.args[0]), *x.args[1:])
    if op == "pow" and _transpose_free(x.args[0]):
        return power(transpose(x.args[0]), x.args[1])
    out = _rewrite(("T", op), x, before=_trace is not None
                   and (lambda: _make("T", (x,), None, (x.cols, x.rows))))
    if out is not None:
        return out
    return _make("T", (x,), None, (x.cols, x.rows))


# ----------------------------------------------------------------------------
# Element-wise functions (the core's only application node; the functions
# themselves, and what composes with what, are the registry's)


def fn(name, x, *params):
    """Element-wise function by canonical name, with its scalar parameters
    (`elu(x, α)`: the arguments after x)."""
    for p in params:
        if not p.is_scalar:
            raise ShapeError(f"the parameter of {name} must be a scalar, not {_fmt(p.shape)}")
    before = _trace is not None and (lambda: _make("fn", (x, *params), name, x.shape))
    out = _rewrite(("fn", name), x, *params, before=before)
    if out is None:
        out = _rewrite(("fn", "*"), name, x, *params, before=before)
    if out is not None:
        return out
    return _make("fn", (x, *params), name, x.shape)


# ----------------------------------------------------------------------------
# Named ops: built through apply, their constructors registered from matdiff.ops


def apply(name, args, shape, attr=None):
    """The node name(args) of a registered op: the first of its named rewrites
    that applies, else the node itself."""
    out = _rewrite(name, *args, before=_trace is not None
                   and (lambda: _make(name, tuple(args), attr, tuple(shape))))
    if out is not None:
        return out
    return _make(name, tuple(args), attr, tuple(shape))


_CONSTRUCTORS = {}


def constructor(f, name=None):
    """Register f as ir.<name> (the op constructors live in matdiff.ops)."""
    _CONSTRUCTORS[name or f.__name__] = f
    return f


def __getattr__(name):
    try:
        return _CONSTRUCTORS[name]
    except KeyError:
        raise AttributeError(f"module 'matdiff.ir' has no attribute {name!r}") from None


def let(name, x):
    """A named intermediate: the identity, kept as a node so that gradients with
    respect to it exist and results can be printed with its name."""
    return _make("let", (x,), name, x.shape)
