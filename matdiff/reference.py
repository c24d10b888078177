"""A reference interpreter: a matdiff program evaluated directly with NumPy.

This is the independent side of every numeric check (`matdiff check`, the
differential fuzzer in tests/fuzz_programs.py and benchmarks/fuzz.py). It
walks the parser's AST (`matdiff.parser.parse_program`) and computes each
node with plain array operations, straight from SPEC §1. It shares nothing
with the derivation: no IR, no simplification, no shape inference of
matdiff's own, no emitter, no printer. The only matdiff modules it imports
are `parser` (the AST), `ops.registry` (the *names* of the element-wise
functions, to parse; their NumPy forms below are written here by hand, never
read from the rule table's `numpy` strings) and `errors`.
tests/test_reference.py enforces that by walking this module's imports.

    >>> from matdiff.reference import evaluate
    >>> evaluate("x^T A x", {"x": x, "A": A})                  # a float
    >>> evaluate("XW + b", {"X": X, "W": W, "b": b})           # a 2-D array
    >>> evaluate("Z = XW; sum(Z)", arrays, overrides={"Z": Z}) # Z replaced

With `xp=autograd.numpy` the same code is differentiable by autograd (no
in-place operation anywhere), which gives a gradient that is independent of
matdiff: `autograd.grad(lambda W: evaluate(src, {**arrays, "W": W},
xp=anp))(W)`.

What it covers (everything the parser accepts):

* products (juxtaposition, split names, `*`, `@`, `·`): the matrix product,
  or scaling when one side is 1×1; `/` by a 1×1 scales, by anything else is
  element-wise; `⊙ ∘ .*`, `⊘ ./`; `+ - −` and unary minus;
* broadcasting: 1×1 against anything; a vector (column or row) against a
  matrix along the last axis, `XW + b` = `XW + 𝟙bᵀ`; a column against a row
  is an error, as are mismatched sizes;
* `ᵀ ' ^T`, `^-1 ⁻¹ inv()` (element-wise reciprocal of a vector or scalar),
  `⁻ᵀ`; `X^k` with integer k: the matrix power of a square matrix, element-wise
  where the two sizes differ (as in NumPy), element-wise on vectors, the
  ordinary power on scalars; `.^` element-wise; exponents are any scalar;
* `tr det logdet sum norm ‖·‖ |·| diag inv softmax log_softmax logsumexp`,
  with tr / det of a 1×1 the value, `logdet` = log|det|, norm Frobenius / 2
  (`_2` of a matrix is an error), softmax and friends row-wise for a matrix
  and over the entries of a column;
* every element-wise function of rules/elementwise.toml, plus the SPEC's
  "more operations" (log1p … reciprocal, elu/leaky_relu with α, sum/mean/var
  along an axis with the axis kept and NumPy size-1 broadcasting, vec, kron and its
  inverse unvec(v, m, n), which printed gradients use),
  whichever the parser produces;
* `𝟙`, `ones`, `1_N`, `ones(N)`, `I`, `eye`, `I_n`: sized from their context
  by a first pass that unifies unknown sizes (each `𝟙`/`I` its own unknown),
  or from `dims`/declarations; `like=` fixes the shape of the result (a
  printed gradient `2𝟙𝟙ᵀ` takes its variable's shape);
* `pi`/`π`, numbers, dimension names used as scalars (`/N`: from `dims`, from
  declarations such as `X:matrix(N,D)`, from `1_N`/`I_N`, `m_X`/`n_X` the
  rows/columns of X, and an undeclared single capital letter dividing a
  scalar as the rows of the first matrix variable, as SPEC says);
* programs of `NAME = expr` statements; `overrides` replaces a binding's
  value (for a gradient with respect to an intermediate); `env` supplies
  extra named values (a printed gradient that uses the intermediates' names).

Values are 2-D arrays inside (1×1 scalar, n×1 column, 1×n row) with a flag
for the N×1 / 1×D results of axis reductions, which broadcast as in NumPy
rather than along the last axis. Inputs and the result follow the generated
modules' convention: float for scalars, 1-D for vectors, 2-D for matrices.

To extend it: a new AST kind `k` gets a method `_k_<k>(self, node)` in
`_Interp`; a new element-wise function gets an entry in `_ELEMENTWISE`
(a function of (xp, special, x)); a new structural call gets a branch in
`_k_call`. Each method computes the shape first (through `unify`, which in
the first pass records unknown sizes and in the second checks sizes) and
the array only in the second pass (`self.arrays` true). Anything not covered
raises `EvaluationError`, never a silent value.
"""

import math
import re

from .errors import MatdiffError
from .parser import parse_program
from .ops import registry

__all__ = ["EvaluationError", "Program", "evaluate", "evaluate_all", "normalize_vars"]


class EvaluationError(Exception):
    """The reference cannot evaluate this input (shape mismatch, unknown
    name, a construct it does not cover). Deliberately not a MatdiffError."""


# -- element-wise functions, written from their definitions -------------------

def _sigmoid(xp, x):
    return 1.0 / (1.0 + xp.exp(-x))


def _erf(xp, special, x):
    sp = special()
    if sp is None:
        raise EvaluationError("erf needs scipy.special (or autograd.scipy.special)")
    return sp.erf(x)


_SQRT2 = math.sqrt(2.0)
_GELU_C = math.sqrt(2.0 / math.pi)

_ELEMENTWISE = {
    "exp": lambda xp, sp, x: xp.exp(x),
    "log": lambda xp, sp, x: xp.log(x),
    "sin": lambda xp, sp, x: xp.sin(x),
    "cos": lambda xp, sp, x: xp.cos(x),
    "tanh": lambda xp, sp, x: xp.tanh(x),
    "sigmoid": lambda xp, sp, x: _sigmoid(xp, x),
    "relu": lambda xp, sp, x: xp.where(x > 0, x, 0.0 * x),
    "softplus": lambda xp, sp, x: xp.logaddexp(0.0, x),
    "sqrt": lambda xp, sp, x: xp.sqrt(x),
    "abs": lambda xp, sp, x: xp.abs(x),
    "sign": lambda xp, sp, x: xp.sign(x),
    "step": lambda xp, sp, x: xp.where(x > 0, 1.0, 0.0) + 0.0 * x,
    "log1p": lambda xp, sp, x: xp.log1p(x),
    "expm1": lambda xp, sp, x: xp.expm1(x),
    "gelu": lambda xp, sp, x: x * 0.5 * (1.0 + _erf(xp, sp, x / _SQRT2)),
    "gelu_tanh": lambda xp, sp, x: 0.5 * x * (1.0 + xp.tanh(_GELU_C * (x + 0.044715 * x ** 3))),
    "silu": lambda xp, sp, x: x * _sigmoid(xp, x),
    "swish": lambda xp, sp, x: x * _sigmoid(xp, x),
    "softsign": lambda xp, sp, x: x / (1.0 + xp.abs(x)),
    "erf": lambda xp, sp, x: _erf(xp, sp, x),
    "sinh": lambda xp, sp, x: xp.sinh(x),
    "cosh": lambda xp, sp, x: xp.cosh(x),
    "square": lambda xp, sp, x: x * x,
    "reciprocal": lambda xp, sp, x: 1.0 / x,
}
# With a constant parameter α: f(x, α).
_ELEMENTWISE_2 = {
    "elu": lambda xp, x, a: xp.where(x > 0, x, a * (xp.exp(xp.where(x > 0, 0.0 * x, x)) - 1.0)),
    "leaky_relu": lambda xp, x, a: xp.where(x > 0, x, a * x),
}
# Not differentiable at 0: evaluate_all reports the smallest |argument|.
_KINKED = {"relu", "abs", "sign", "step", "elu", "leaky_relu"}

_STRUCTURAL = {"tr", "det", "logdet", "sum", "norm", "diag", "inv", "softmax",
               "log_softmax", "logsumexp", "mean", "var", "vec", "kron", "unvec",
               "ones_like", "eye_like"}


def supported_functions():
    """Canonical names of the calls this interpreter evaluates."""
    return set(_ELEMENTWISE) | set(_ELEMENTWISE_2) | _STRUCTURAL


# -- declarations --------------------------------------------------------------

_KINDS = ("scalar", "vector", "matrix", "symmetric", "spd", "onehot")


def normalize_vars(vars):
    """{'X': 'matrix(N,D)'} or ['X:matrix(N,D)', 'Y:onehot'] -> {name: (kind, [dims])}.

    `X:N×D` / `X:NxD` is read as matrix(N,D)."""
    out = {}
    if not vars:
        return out
    if isinstance(vars, dict):
        items = list(vars.items())
    else:
        items = []
        for text in vars:
            if ":" not in text:
                raise EvaluationError(f"bad declaration {text!r}: expected NAME:KIND")
            name, decl = text.split(":", 1)
            items.append((name.strip(), decl.strip()))
    for name, decl in items:
        if isinstance(decl, (tuple, list)):
            kind, dims = str(decl[0]), [_dim_token(str(d)) for d in decl[1:]]
        else:
            decl = str(decl).strip()
            m = re.fullmatch(r"(\w+)\s*[×x]\s*(\w+)", decl)
            if m and m.group(1) not in _KINDS:
                kind, dims = "matrix", [_dim_token(m.group(1)), _dim_token(m.group(2))]
            else:
                m = re.fullmatch(r"([A-Za-z_]+)\s*(?:\(([^)]*)\))?", decl)
                if not m or m.group(1) not in _KINDS:
                    raise EvaluationError(f"bad declaration {decl!r} for {name}")
                kind = m.group(1)
                inner = (m.group(2) or "").strip()
                dims = [_dim_token(p.strip()) for p in inner.split(",")] if inner else []
        out[name] = (kind, dims)
    return out


def _dim_token(text):
    return int(text) if text.isdigit() else text


def _declared_shape(kind, dims):
    """The declared dimensions as a (rows, cols) pattern, None where unknown."""
    if kind == "scalar":
        return None
    if kind == "vector" or (kind == "onehot" and len(dims) == 1):
        return (dims[0] if dims else None, 1)
    if kind in ("symmetric", "spd"):
        d = dims[0] if dims else None
        return (d, d)
    return (dims[0] if dims else None, dims[1] if len(dims) > 1 else None)


# -- sizes: union-find over unknown sizes ----------------------------------------

class _Cell:
    """An unknown size (of a 𝟙, an I, or a dimension name); never 1."""
    __slots__ = ("parent", "value", "label")

    def __init__(self, label):
        self.parent = None
        self.value = None
        self.label = label


def _res(d):
    """An int, or the root cell of an unknown size."""
    while isinstance(d, _Cell):
        if d.parent is not None:
            d = d.parent
        elif d.value is not None:
            return d.value
        else:
            return d
    return d


def _is_one(d):
    return _res(d) == 1


def _show(d):
    d = _res(d)
    return str(d) if isinstance(d, int) else f"?{d.label}"


# -- values -------------------------------------------------------------------

class _Val:
    """shape: (rows, cols) of ints or cells; a: the 2-D array (second pass);
    kept: an N×1 / 1×D result of an axis reduction (broadcasts NumPy-style)."""
    __slots__ = ("shape", "a", "kept")

    def __init__(self, shape, a=None, kept=False):
        self.shape = shape
        self.a = a
        self.kept = kept

    @property
    def klass(self):
        r, c = self.shape
        if _is_one(r) and _is_one(c):
            return "scalar"
        if _is_one(c):
            return "col"
        if _is_one(r):
            return "row"
        return "mat"

    @property
    def is_scalar(self):
        return self.klass == "scalar"


def _strip(node):
    while node.kind == "paren":
        node = node.args[0]
    return node


def _integer_exponent(node):
    sign = 1
    while node.kind in ("neg", "paren"):
        if node.kind == "neg":
            sign = -sign
        node = node.args[0]
    if node.kind != "num":
        return None
    try:
        v = float(node.value)
    except ValueError:
        return None
    return sign * int(v) if v.is_integer() else None


_AUTO_DIM = re.compile(r"([mn])_(.+)")


class _Interp:
    """One evaluation. First pass (arrays=False): shapes only, unknown sizes
    unified and recorded in `sizes`. Second pass: arrays, sizes all known."""

    def __init__(self, prog, inputs, dims, overrides, env, xp, special, arrays, sizes=None):
        self.prog = prog
        self.inputs = inputs  # name -> _Val
        self.dims = dims  # name -> int
        self.overrides = overrides  # name -> _Val
        self.env = env  # name -> _Val (extra named values)
        self.xp = xp
        self.special = special
        self.arrays = arrays
        self.sizes = sizes if sizes is not None else {}
        self.named = {}  # dimension name -> int or _Cell (first pass)
        self.bound = {}
        self.seen_inputs = []
        self.kink = math.inf

    # -- sizes --
    def fail(self, msg, node=None):
        where = ""
        if node is not None and isinstance(self.prog.src, str) and node.span:
            s, e = node.span
            where = f" (at {self.prog.src[s:e]!r}, column {s + 1})"
        raise EvaluationError(msg + where)

    def unify(self, a, b, node, what):
        ra, rb = _res(a), _res(b)
        if ra is rb or (isinstance(ra, int) and ra == rb):
            return
        if isinstance(ra, int) and isinstance(rb, int):
            self.fail(f"shape mismatch in {what}: {ra} vs {rb}", node)
        if not self.arrays:
            if isinstance(ra, int) or isinstance(rb, int):
                cell, n = (rb, ra) if isinstance(ra, int) else (ra, rb)
                if n == 1:
                    self.fail(f"shape mismatch in {what}: a vector's length or a matrix's "
                              f"side cannot be 1", node)
                cell.value = n
            else:
                rb.parent = ra
            return
        self.fail(f"internal: unresolved size in {what}", node)

    def named_dim(self, name):
        if name in self.dims:
            return self.dims[name]
        if self.arrays:
            if name in self.sizes:
                return self.sizes[name]
            self.fail(f"cannot tell the size {name!r}")
        d = self.named.get(name)
        if d is None:
            d = self.auto_dim(name)
            if d is None:
                d = _Cell(name)
            self.named[name] = d
        return d

    def auto_dim(self, name):
        m = _AUTO_DIM.fullmatch(name)
        if m and m.group(2) in self.inputs:
            r, c = self.inputs[m.group(2)].shape
            if self.inputs[m.group(2)].klass == "col":
                return r if m.group(1) == "n" else None
            return r if m.group(1) == "m" else c
        return None

    def size_of(self, node, label):
        """The size of a 𝟙 / I node: its subscript, or an unknown of its own."""
        key = id(node)
        if self.arrays:
            n = self.sizes.get(key)
            if n is None:
                self.fail(f"cannot tell the size of {label} here", node)
            return n
        if node.value is not None:
            v = node.value
            d = int(v) if str(v).isdigit() else self.named_dim(v)
        else:
            d = _Cell(label)
        self.sizes[key] = d
        return d

    # -- arrays --
    def full(self, shape, v):
        return self.xp.full(shape, float(v)) if self.arrays else None

    def scalar_val(self, v):
        return _Val((1, 1), self.xp.reshape(self.xp.array(float(v)), (1, 1)) if self.arrays else None)

    # -- the walk --
    def run(self):
        val = None
        for name, node in self.prog.stmts:
            val = self.node(node)
            if name is not None:
                if name in self.overrides:
                    ov = self.overrides[name]
                    if ov.klass == "col" and val.klass == "row":  # a 1-D value of a row binding
                        ov = _Val((ov.shape[1], ov.shape[0]), ov.a.T)
                    self.same_shape(ov, val, node, f"the override of {name}")
                    val = _Val(ov.shape, ov.a, val.kept)  # a kept N×1 stays one
                self.bound[name] = val
        return val

    def same_shape(self, a, b, node, what):
        if a.klass != b.klass:
            self.fail(f"{what}: a {a.klass} where a {b.klass} is expected", node)
        self.unify(a.shape[0], b.shape[0], node, what)
        self.unify(a.shape[1], b.shape[1], node, what)

    def node(self, node):
        f = getattr(self, "_k_" + node.kind, None)
        if f is None:
            self.fail(f"the reference interpreter has no rule for {node.kind!r} nodes", node)
        return f(node)

    def _k_paren(self, node):
        return self.node(node.args[0])

    def _k_num(self, node):
        try:
            v = float(node.value)
        except (TypeError, ValueError):
            self.fail(f"bad number {node.value!r}", node)
        return self.scalar_val(v)

    def _k_name(self, node, divisor_of_scalar=False):
        name = node.value
        if name in self.bound:
            return self.bound[name]
        if name in self.env:
            return self.env[name]
        if name in ("pi", "π") and name not in self.prog.decls:
            return self.scalar_val(math.pi)
        if name in self.inputs:
            if name not in self.seen_inputs:
                self.seen_inputs.append(name)
            return self.inputs[name]
        if name in self.dims or name in self.named or name in self.prog.sized_names \
                or name in self.sizes or self.auto_dim(name) is not None:
            d = self.named_dim(name)
            if self.arrays:
                return self.scalar_val(d)
            return _Val((1, 1))
        if divisor_of_scalar and len(name) == 1 and "A" <= name <= "Z" \
                and name not in self.prog.decls:
            first = self.first_matrix()
            if first is not None:
                d = self.inputs[first].shape[0]
                if self.arrays:
                    return self.scalar_val(d)
                self.named[name] = d
                return _Val((1, 1))
        self.fail(f"unknown name {name!r} (not an input, intermediate, constant or dimension)",
                  node)

    def first_matrix(self):
        for n in self.seen_inputs:
            kind = self.prog.decls.get(n, (None,))[0]
            if kind is None:
                kind = "matrix" if n[0].isupper() else "other"
            if kind in ("matrix", "onehot") and self.inputs[n].klass == "mat":
                return n
        return None

    def _k_ones(self, node):
        n = self.size_of(node, "𝟙")
        return _Val((n, 1), self.full((n, 1), 1.0) if self.arrays else None)

    def _k_eye(self, node):
        n = self.size_of(node, "I")
        return _Val((n, n), self.xp.eye(n) if self.arrays else None)

    def _k_neg(self, node):
        x = self.node(node.args[0])
        return _Val(x.shape, -x.a if self.arrays else None, x.kept)

    def _k_T(self, node):
        x = self.node(node.args[0])
        return _Val((x.shape[1], x.shape[0]), x.a.T if self.arrays else None, x.kept)

    def square(self, x, node, what):
        self.unify(x.shape[0], x.shape[1], node, f"{what} (needs a square matrix)")

    def _k_inv(self, node):
        return self.inverse(self.node(node.args[0]), node)

    def inverse(self, x, node):
        if x.klass != "mat":
            return _Val(x.shape, 1.0 / x.a if self.arrays else None, x.kept)
        self.square(x, node, "the inverse")
        return _Val(x.shape, self.xp.linalg.inv(x.a) if self.arrays else None)

    def matmul(self, a, b, node):
        if a.is_scalar or b.is_scalar:
            other = b if a.is_scalar else a
            return _Val(other.shape, a.a * b.a if self.arrays else None, other.kept)
        self.unify(a.shape[1], b.shape[0], node, "a matrix product")
        # A m with m a kept N×1 is M×1 with that axis kept (NumPy: (M,N)@(N,1) is 2-D)
        kept = (b.kept and _is_one(b.shape[1])) or (a.kept and _is_one(a.shape[0]))
        return _Val((a.shape[0], b.shape[1]), self.xp.dot(a.a, b.a) if self.arrays else None,
                    kept)

    def _k_prod(self, node):
        return self.matmul(self.node(node.args[0]), self.node(node.args[1]), node)

    def _k_div(self, node):
        a = self.node(node.args[0])
        rhs = _strip(node.args[1])
        if rhs.kind == "name" and a.is_scalar:
            b = self._k_name(rhs, divisor_of_scalar=True)
        else:
            b = self.node(node.args[1])
        if b.is_scalar:
            return _Val(a.shape, a.a / b.a if self.arrays else None, a.kept)
        return self.elementwise(a, b, node, "an element-wise division", lambda x, y: x / y)

    def _k_had(self, node):
        return self.elementwise(self.node(node.args[0]), self.node(node.args[1]), node,
                                "a Hadamard product", lambda x, y: x * y)

    def _k_ediv(self, node):
        return self.elementwise(self.node(node.args[0]), self.node(node.args[1]), node,
                                "an element-wise division", lambda x, y: x / y)

    def _k_add(self, node):
        return self.elementwise(self.node(node.args[0]), self.node(node.args[1]), node,
                                "a sum", lambda x, y: x + y)

    def _k_sub(self, node):
        return self.elementwise(self.node(node.args[0]), self.node(node.args[1]), node,
                                "a difference", lambda x, y: x - y)

    def _k_kron(self, node):
        return self.kron(self.node(node.args[0]), self.node(node.args[1]))

    def elementwise(self, a, b, node, what, op):
        """Broadcasting as SPEC §1 says: 1×1 everywhere; a vector against a
        matrix along the last axis; a kept N×1 / 1×D as in NumPy."""
        arr = self.arrays
        if a.is_scalar or b.is_scalar:
            other = b if a.is_scalar else a
            return _Val(other.shape, op(a.a, b.a) if arr else None, other.kept)
        ka, kb = a.klass, b.klass
        if ka == kb:
            self.unify(a.shape[0], b.shape[0], node, what)
            self.unify(a.shape[1], b.shape[1], node, what)
            # N×1 ± an N-vector stays a kept N×1 (matdiff's choice; NumPy has no such vector)
            return _Val(a.shape, op(a.a, b.a) if arr else None, a.kept or b.kept)
        if {ka, kb} == {"col", "row"} and (a.kept if ka == "col" else b.kept):
            # a kept N×1 against a row 1×D: N×D, as NumPy's (N,1) against (1,D)
            col, row = (a, b) if ka == "col" else (b, a)
            shape = (col.shape[0], row.shape[1])
            return _Val(shape, op(a.a, b.a) if arr else None)
        if "mat" not in (ka, kb):
            self.fail(f"shape mismatch in {what}: a column vector against a row vector", node)
        swap = ka == "mat"
        vec, mat = (b, a) if swap else (a, b)
        if vec.kept and vec.klass == "col":  # N×1 against N×D: down the columns
            self.unify(vec.shape[0], mat.shape[0], node, what)
            va = vec.a
        elif vec.klass == "col":  # a vector: matched against the last axis
            self.unify(vec.shape[0], mat.shape[1], node, what)
            va = vec.a.T if arr else None
        else:  # a row 1×D
            self.unify(vec.shape[1], mat.shape[1], node, what)
            va = vec.a
        if not arr:
            return _Val(mat.shape)
        return _Val(mat.shape, op(mat.a, va) if swap else op(va, mat.a))

    def exponent(self, node):
        e = self.node(node)
        if not e.is_scalar:
            self.fail("an exponent must be a scalar", node)
        return e

    def _k_pow(self, node):
        base = self.node(node.args[0])
        e = self.exponent(node.args[1])
        if base.klass != "mat":
            return _Val(base.shape, base.a ** e.a if self.arrays else None, base.kept)
        k = _integer_exponent(node.args[1])
        if k is None:
            self.fail("non-integer power of a matrix (use .^ for an element-wise power)", node)
        r, c = _res(base.shape[0]), _res(base.shape[1])
        if isinstance(r, int) and isinstance(c, int) and r != c:
            return _Val(base.shape, base.a ** float(k) if self.arrays else None)  # as in NumPy
        self.square(base, node, "a matrix power")
        if not self.arrays:
            return _Val(base.shape)
        n = r
        if k == 0:
            return _Val(base.shape, self.xp.eye(n))
        f = base.a if k > 0 else self.xp.linalg.inv(base.a)
        out = f
        for _ in range(abs(k) - 1):
            out = self.xp.dot(out, f)
        return _Val(base.shape, out)

    def _k_epow(self, node):
        base = self.node(node.args[0])
        e = self.exponent(node.args[1])
        return _Val(base.shape, base.a ** e.a if self.arrays else None, base.kept)

    # -- calls --
    def _k_call(self, node):
        fname, sub = node.value if isinstance(node.value, tuple) else (node.value, None)
        if fname == "variance":  # the parser's name of var (the IR's `var` is a variable)
            fname = "var"
        args = node.args
        xp, arr = self.xp, self.arrays
        if fname in _ELEMENTWISE_2:
            if len(args) != 2:
                self.fail(f"{fname} takes two arguments (x, α)", node)
            x, alpha = self.node(args[0]), self.node(args[1])
            if not alpha.is_scalar:
                self.fail(f"the parameter of {fname} must be a scalar", node)
            if arr:
                self.note_kink(x.a)
            return _Val(x.shape, _ELEMENTWISE_2[fname](xp, x.a, alpha.a) if arr else None, x.kept)
        if fname in ("sum", "mean", "var") and len(args) == 2:
            return self.axis_reduction(fname, args, node)
        if fname == "unvec":
            return self.unvec(args, node)
        if len(args) != 1:
            self.fail(f"{fname} takes one argument, got {len(args)}", node)
        if fname == "ones_like":
            x = self.node(args[0])
            return _Val(x.shape, self.full(x.a.shape, 1.0) if arr else None)
        if fname == "eye_like":
            x = self.node(args[0])
            return _Val((x.shape[0], x.shape[0]), xp.eye(x.a.shape[0]) if arr else None)
        x = self.node(args[0])
        if fname in _ELEMENTWISE:
            if not arr:
                return _Val(x.shape, None, x.kept)
            if fname in _KINKED:
                self.note_kink(x.a)
            return _Val(x.shape, _ELEMENTWISE[fname](xp, self.special, x.a), x.kept)
        scalar = (1, 1)
        k = x.klass

        def s(v):
            return _Val(scalar, xp.reshape(v, (1, 1)) if arr else None)
        if fname == "tr":
            if k == "scalar":
                return x
            self.square(x, node, "tr")
            return s(xp.sum(x.a * xp.eye(x.a.shape[0])) if arr else None)
        if fname == "det":
            if k == "scalar":
                return x
            self.square(x, node, "det")
            return s(xp.linalg.det(x.a) if arr else None)
        if fname == "logdet":
            if k == "scalar":
                return s(xp.log(xp.abs(x.a)) if arr else None)
            self.square(x, node, "logdet")
            return s(xp.linalg.slogdet(x.a)[1] if arr else None)
        if fname == "sum":
            return s(xp.sum(x.a) if arr else None)
        if fname == "mean":
            return s(xp.mean(x.a) if arr else None)
        if fname == "var":
            return s(xp.mean((x.a - xp.mean(x.a)) ** 2) if arr else None)
        if fname == "norm":
            if sub == "2" and k == "mat":
                self.fail("the spectral norm ‖X‖_2 of a matrix is not covered", node)
            return s(xp.sqrt(xp.sum(x.a * x.a)) if arr else None)
        if fname == "inv":
            return self.inverse(x, node)
        if fname == "diag":
            if k == "scalar":
                return x
            if k == "col":
                n = x.shape[0]
                return _Val((n, n), xp.eye(x.a.shape[0]) * x.a.T if arr else None)
            if k == "row":
                self.fail("diag of a row vector", node)
            self.square(x, node, "diag")
            return _Val((x.shape[0], 1),
                        xp.sum(x.a * xp.eye(x.a.shape[0]), axis=1, keepdims=True) if arr else None)
        if fname in ("softmax", "log_softmax", "logsumexp"):
            axis = 0 if _is_one(x.shape[1]) else 1  # over a column's entries, else row-wise
            if fname == "logsumexp":
                shape = scalar if axis == 0 else (x.shape[0], 1)
                return _Val(shape, self.lse(x.a, axis) if arr else None)
            if not arr:
                return _Val(x.shape)
            ls = x.a - self.lse(x.a, axis)
            return _Val(x.shape, xp.exp(ls) if fname == "softmax" else ls)
        if fname == "vec":
            r, c = _res(x.shape[0]), _res(x.shape[1])
            n = r * c if isinstance(r, int) and isinstance(c, int) else _Cell("vec")
            return _Val((n, 1), xp.reshape(x.a.T, (-1, 1)) if arr else None)
        if fname == "kron":
            self.fail("kron takes two arguments", node)
        self.fail(f"the reference interpreter does not cover the function {fname!r}", node)

    def kron(self, a, b):
        (m, n), (p, q) = a.shape, b.shape
        dims = [_res(d) for d in (m, n, p, q)]
        if not all(isinstance(d, int) for d in dims):
            raise EvaluationError("kron of operands of unknown size")
        m, n, p, q = dims
        if not self.arrays:
            return _Val((m * p, n * q))
        xp = self.xp
        big = xp.reshape(a.a, (m, 1, n, 1)) * xp.reshape(b.a, (1, p, 1, q))
        return _Val((m * p, n * q), xp.reshape(big, (m * p, n * q)))

    def unvec(self, args, node):
        """unvec(v, m, n): the m×n matrix whose columns are v's consecutive
        m-chunks (column-major), m and n numbers, dimension names or products."""
        if len(args) != 3:
            self.fail("unvec takes three arguments (v, rows, cols)", node)
        v = self.node(args[0])
        m, n = self.size_arg(args[1]), self.size_arg(args[2])
        if v.klass not in ("col", "scalar"):
            self.fail("unvec of a matrix", node)
        self.unify(v.shape[0], m * n, node, "unvec")
        return _Val((m, n), self.xp.reshape(v.a, (n, m)).T if self.arrays else None)

    def size_arg(self, a):
        a = _strip(a)
        if a.kind == "num" and a.value.isdigit():
            d = int(a.value)
        elif a.kind == "name":
            d = _res(self.named_dim(a.value))
        elif a.kind == "prod":
            return self.size_arg(a.args[0]) * self.size_arg(a.args[1])
        else:
            self.fail("a size must be a number, a dimension name or a product of them", a)
        if not isinstance(d, int):
            self.fail("unvec into a size that is not known", a)
        return d

    def axis_reduction(self, fname, args, node):
        x = self.node(args[0])
        ax, sign = args[1], 1
        while ax.kind in ("paren", "neg"):
            sign, ax = (-sign if ax.kind == "neg" else sign), ax.args[0]
        axis = {(1, "0"): 0, (1, "1"): 1, (-1, "1"): 1, (-1, "2"): 0}.get((sign, ax.value)) \
            if ax.kind == "num" else None  # -1, -2 as in NumPy
        if axis is None:
            self.fail(f"the axis of {fname} must be 0 or 1 (or -2, -1)", node)
        shape = (x.shape[0], 1) if axis == 1 else (1, x.shape[1])
        if not self.arrays:
            return _Val(shape, None, True)
        xp = self.xp
        if fname == "sum":
            v = xp.sum(x.a, axis=axis, keepdims=True)
        elif fname == "mean":
            v = xp.mean(x.a, axis=axis, keepdims=True)
        else:
            mu = xp.mean(x.a, axis=axis, keepdims=True)
            v = xp.mean((x.a - mu) ** 2, axis=axis, keepdims=True)
        return _Val(shape, v, True)

    def lse(self, a, axis):
        xp = self.xp
        m = xp.max(a, axis=axis, keepdims=True)
        out = m + xp.log(xp.sum(xp.exp(a - m), axis=axis, keepdims=True))
        return out

    def note_kink(self, a):
        raw = getattr(a, "_value", a)
        while hasattr(raw, "_value"):
            raw = raw._value
        try:
            import numpy
            self.kink = min(self.kink, float(numpy.min(numpy.abs(raw))))
        except (TypeError, ValueError, RuntimeError):  # a traced value (jax, torch autograd)
            pass


# -- the program ------------------------------------------------------------------

class Program:
    """A parsed program, evaluated many times (finite differences, autograd).

    src: the program text, or a list of (name or None, parser.Ast) statements
    (a generator's own AST, evaluated without parsing any text).
    vars: the declarations (for parsing declared names and for the
    dimension names they give)."""

    def __init__(self, src, vars=None, extra_names=()):
        self.decls = normalize_vars(vars)
        if isinstance(src, str):
            self.src = src
            declared = set(self.decls) | set(extra_names)
            self.stmts = parse_program(src, registry.functions(), declared=declared)
        else:
            self.src = None
            self.stmts = [(n, a) for n, a in src]
        self.bindings = [n for n, _ in self.stmts if n is not None]
        names = set()
        stack = [a for _, a in self.stmts]
        while stack:
            a = stack.pop()
            if a.kind in ("ones", "eye") and a.value is not None and not str(a.value).isdigit():
                names.add(a.value)
            stack.extend(a.args)
        for kind, dims in self.decls.values():
            names.update(d for d in dims if isinstance(d, str))
        self.sized_names = names
        self._plans = {}

    def _prepare(self, arrays, dims, overrides, env, like, xp):
        xp = xp or _numpy()
        special = _special_for(xp)
        inputs = {n: _to_val(v, xp) for n, v in (arrays or {}).items()}
        ovs = {n: _to_val(v, xp) for n, v in (overrides or {}).items()}
        envs = {n: _to_val(v, xp) for n, v in (env or {}).items()}
        dims = dict(dims or {})
        key = (tuple((n, v.shape) for n, v in inputs.items()),
               tuple((n, v.shape) for n, v in ovs.items()),
               tuple((n, v.shape) for n, v in envs.items()),
               tuple(sorted(dims.items())), like)
        sizes = self._plans.get(key)
        if sizes is None:
            sizes = self._plan(inputs, dims, ovs, envs, like, xp, special)
            self._plans[key] = sizes
        return inputs, dims, ovs, envs, xp, special, sizes

    def _plan(self, inputs, dims, ovs, envs, like, xp, special):
        for n in ovs:
            if n not in self.bindings:
                raise EvaluationError(f"override of {n!r}, which is not an intermediate "
                                      f"(intermediates: {', '.join(self.bindings) or 'none'})")
        it = _Interp(self, inputs, dims, ovs, envs, xp, special, arrays=False)
        for name, (kind, ddims) in self.decls.items():
            pattern = _declared_shape(kind, ddims)
            if pattern is None or name not in inputs:
                continue
            for d, actual in zip(pattern, inputs[name].shape):
                if d is None:
                    continue
                want = d if isinstance(d, int) else it.named_dim(d)
                it.unify(want, actual, None, f"the declared dimensions of {name}")
        out = it.run()
        if like is not None:
            target = _Val(_module_shape(like))
            if len(tuple(like)) == 1 and out.klass == "row":  # 1-D: a row's too
                target = _Val((1, tuple(like)[0]))
            it.same_shape(out, target, None, "the result's expected shape")
        sizes = {}
        for k, d in list(it.sizes.items()) + list(it.named.items()):
            r = _res(d)
            if isinstance(r, int):
                sizes[k] = r
            elif not isinstance(k, str):
                raise EvaluationError(
                    f"cannot tell the size of a {'𝟙' if r.label == '𝟙' else r.label} "
                    f"from its context")
        return sizes

    def evaluate_all(self, arrays, dims=None, overrides=None, env=None, xp=None, like=None):
        """(value, {binding: value}, info): the function's value, each
        intermediate's value, and {'kink': min |argument| of relu/abs/…,
        'dims': the sizes of the dimension names used, 'rows': the bindings
        whose value is a row (1-D like a column's in the module convention)}."""
        inputs, dims, ovs, envs, xp, special, sizes = self._prepare(
            arrays, dims, overrides, env, like, xp)
        it = _Interp(self, inputs, dims, ovs, envs, xp, special, arrays=True, sizes=sizes)
        out = it.run()
        bound = {n: _from_val(v, xp) for n, v in it.bound.items()}
        named = {k: v for k, v in sizes.items() if isinstance(k, str)}
        named.update(dims)
        rows = {n for n, v in it.bound.items() if v.klass == "row"}  # 1-D in `bound`
        return _from_val(out, xp), bound, {"kink": it.kink, "dims": named, "rows": rows}

    def evaluate(self, arrays, dims=None, overrides=None, env=None, xp=None, like=None):
        return self.evaluate_all(arrays, dims, overrides, env, xp, like)[0]


def _module_shape(like):
    like = tuple(like)
    if like == ():
        return (1, 1)
    if len(like) == 1:
        return (like[0], 1)
    return like


def _numpy():
    import numpy
    return numpy


_SPECIAL = {}


def _special_for(xp):
    """A getter of the scipy.special that goes with xp (imported on first use)."""
    name = getattr(xp, "__name__", "")

    def get():
        if name not in _SPECIAL:
            try:
                if name.startswith("autograd"):
                    import autograd.scipy.special as sp
                else:
                    import scipy.special as sp
            except ImportError:
                sp = None
            _SPECIAL[name] = sp
        return _SPECIAL[name]
    return get


def _to_val(v, xp):
    shape = tuple(getattr(v, "shape", ()))
    if len(shape) == 0:
        if not hasattr(v, "shape"):
            v = float(v)
        return _Val((1, 1), xp.reshape(v, (1, 1)))
    if len(shape) == 1:
        return _Val((shape[0], 1), xp.reshape(v, (shape[0], 1)))
    if len(shape) == 2:
        return _Val(shape, v)
    raise EvaluationError(f"an input of {len(shape)} dimensions")


def _from_val(v, xp):
    k = v.klass
    a = v.a
    if k == "scalar":
        x = a[0, 0]
        return float(x) if xp.__name__ == "numpy" else x
    if k == "col":
        return a[:, 0]
    if k == "row":
        return a[0, :]
    return a


_CACHE = {}


def program(src, vars=None, extra_names=()):
    """A cached Program for (src, vars)."""
    key = (src, repr(sorted(normalize_vars(vars).items())), tuple(sorted(extra_names)))
    p = _CACHE.get(key)
    if p is None:
        if len(_CACHE) > 256:
            _CACHE.clear()
        p = _CACHE[key] = Program(src, vars, extra_names)
    return p


def evaluate(src, arrays, dims=None, vars=None, overrides=None, xp=None, env=None, like=None):
    """The value of the program `src` at `arrays` ({name: float | 1-D | 2-D}).

    dims: {dimension name: size} for names used as scalars or sizes (`/N`,
    `1_N`, `I_n`) that no declaration and no array fixes. vars: the user's
    declarations. overrides: {intermediate: value} replacing that binding.
    xp: the array module (numpy, or autograd.numpy to differentiate).
    env: extra named values. like: the expected shape of the result, which
    sizes a `𝟙`/`I` that nothing else sizes."""
    return program(src, vars, tuple(env or ())).evaluate(arrays, dims, overrides, env, xp, like)


def evaluate_all(src, arrays, dims=None, vars=None, overrides=None, xp=None, env=None, like=None):
    return program(src, vars, tuple(env or ())).evaluate_all(arrays, dims, overrides, env, xp, like)
