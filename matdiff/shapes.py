"""Kinds, declarations and shape inference by unifying symbolic dimensions.

Inference walks the AST once, gives every variable a shape made of `Dim`
union-find cells, unifies them through every operation and reports a
mismatch at the operator's source position. The IR builder then works with
the resolved dimensions (an int or a name).
"""

import difflib
import re

from .ops import registry, shape_rules, syntax
from .dims import product
from .errors import ShapeError, NameError_
from .parser import GREEK_LETTERS, is_greek

KINDS = ("scalar", "vector", "matrix", "symmetric", "spd", "onehot")
_SQUARE = ("symmetric", "spd")


class Dim:
    __slots__ = ("parent", "value", "rank")
    serial = 0

    def __init__(self, value=None, rank=2):
        self.parent = None
        self.value = value  # int, declared name, auto name, or a DimProd
        self.rank = rank  # 0 literal, 1 declared, 2 auto: lower wins on unify

    def find(self):
        d = self
        while d.parent is not None:
            d = d.parent
        return d


def lit(n):
    return Dim(n, 0)


class DimProd:
    """The value of a Dim that is the product of other Dims (vec(X) has
    m_X·n_X entries): its factors stay cells, so the product follows them as
    they are unified."""
    __slots__ = ("factors",)

    def __init__(self, factors):
        self.factors = tuple(factors)


def resolved(d):
    """An int, a name, or a dims.Prod of them."""
    v = d.find().value
    if isinstance(v, DimProd):
        return product(*(resolved(f) for f in v.factors))
    return v


def _flat(d):
    """(coefficient, [root cells]): d as a number times unknown sizes, in the
    order of construction."""
    r = d.find()
    if isinstance(r.value, DimProd):
        coef, cells = 1, []
        for f in r.value.factors:
            c, fs = _flat(f)
            coef, cells = coef * c, cells + fs
        return coef, cells
    if isinstance(r.value, int):
        return r.value, []
    return 1, [r]


def _is_one(d):
    return d.find().value == 1


def is_scalar_shape(s):
    return _is_one(s[0]) and _is_one(s[1])


def shape_text(s):
    return "×".join(str(resolved(d)) for d in s)


_DIM = re.compile(r"[1-9]\d*|[^\W\d]\w*")


def parse_decl(text, source=None, offset=0, option=None):
    """'matrix(N,D)' -> ('matrix', ['N', 'D']); dims may be ints. 'N×D', 'NxD'
    and 'N*D' are short for matrix(N,D).

    Errors point into `source` (the whole declaration as given, `text` starting
    at `offset` in it), shown as typed after `option` when that is set."""
    source = text if source is None else source

    def bad(msg, i, j=None):
        i, j = offset + i, offset + (i + 1 if j is None else j)
        raise NameError_(msg, source, (i, max(j, i + 1)), option)

    stripped = text.strip()
    lead = len(text) - len(text.lstrip())
    if not stripped:
        bad(f"a declaration needs a kind: one of {', '.join(KINDS)}, or ROWS×COLS", len(text))
    rows_cols = _rows_cols(stripped)
    if rows_cols is not None:
        return "matrix", [_dim_value(d) for d in rows_cols]
    if len(re.split(r"[×*]", stripped)) > 2:
        bad(f"a matrix has two dimensions, not {stripped!r}", lead, lead + len(stripped))
    m = re.match(r"[A-Za-z_]\w*", stripped)
    word = m.group(0) if m else ""
    if word not in KINDS:
        token = word or re.match(r"[^\s(]*", stripped).group(0) or stripped[0]
        close = difflib.get_close_matches(token, KINDS, n=1)
        pair = re.fullmatch(r"([^\W\d]\w*?|\d+)x(\w+)", stripped)
        if close:
            hint = f"did you mean {close[0]!r}?"
        elif pair:
            hint = f"for a matrix write {pair[1]}×{pair[2]} or matrix({pair[1]},{pair[2]})"
        elif _DIM.fullmatch(stripped) and (len(token) <= 2 or not token[0].islower()):
            hint = f"for a vector of length {token} write vector({token})"
        else:
            hint = f"kinds: {', '.join(KINDS)}; or ROWS×COLS for a matrix"
        bad(f"unknown kind {token!r} ({hint})", lead, lead + len(token))
    rest = stripped[len(word):]
    pos = lead + len(word)
    dims = []
    if rest.strip():
        inner = re.fullmatch(r"(\s*)\((.*)\)\s*", rest)
        if inner is None:
            if "(" in rest and ")" not in rest:
                bad("expected ')' to close the dimensions", len(text))
            bad(f"expected (DIMS) after {word!r}", pos + len(rest) - len(rest.lstrip()))
        at = pos + len(inner.group(1)) + 1
        body = inner.group(2)
        if body.strip():
            for part in body.split(","):
                d = part.strip()
                if not _DIM.fullmatch(d):
                    i = at + len(part) - len(part.lstrip())
                    bad(f"bad dimension {d!r}: a dimension is a name or a positive integer",
                        i, i + len(d))
                dims.append(_dim_value(d))
                at += len(part) + 1
    return word, dims


def _rows_cols(text):
    """'N×D', 'N * D', '3x4', 'NxD' -> ['N', 'D']; None if not of that form. A
    bare x separates only where no letter of a name touches it (so n_x stays
    a name): '3x4', 'NxD', 'Nx3'."""
    parts = re.split(r"\s*[×*]\s*", text)
    if len(parts) == 1:
        m = re.fullmatch(r"(\w*[A-Z0-9])\s*x\s*([A-Z0-9]\w*)", text)
        parts = [m.group(1), m.group(2)] if m and "x" not in m.group(1) + m.group(2) else [text]
    if len(parts) == 2 and all(_DIM.fullmatch(p) for p in parts):
        return parts
    return None


def _dim_value(d):
    return int(d) if d.isdigit() else d


def default_kind(name):
    first = name[0]
    if is_greek(name):
        if first in GREEK_LETTERS:
            return "matrix" if first.isupper() else "scalar"
        return "matrix" if first.isupper() else "scalar"
    return "matrix" if first.isupper() else "vector"


class Inference:
    """Shape inference over a parsed program."""

    def __init__(self, src, decls):
        self.src = src
        self.decls = decls  # name -> (kind, dims)
        self.named_dims = {}
        self.vars = {}  # name -> (kind, (Dim, Dim))
        self.bound = {}  # intermediate name -> shape
        self.dim_scalars = set()
        self.sized = {}  # ast -> Dim for ones/eye
        self.constants = set()
        self.shapes = {}  # ast -> its shape, for messages
        self.ONE = lit(1)
        # The size-1 axis kept by an axis reduction (sum(X, 1) is N×KEPT): a
        # matrix with one column, which broadcasts NumPy's way (along its
        # size-1 axis), not a vector (which broadcasts along the last axis).
        # It is never unified with ONE, so the marker survives.
        self.KEPT = lit(1)
        self.kept = set()  # ast of the N×1 kept-axis values, for the builder
        for name, (kind, dims) in decls.items():
            for d in dims:
                if isinstance(d, str):
                    self.named_dims.setdefault(d, Dim(d, 1))

    # -- dims --------------------------------------------------------------
    def dim(self, d, auto_name, weak=False):
        """A dimension cell. On unification the lowest rank names the class:
        numbers, then declared names, then variables' automatic names, then
        (weak) those of 𝟙 and I."""
        if isinstance(d, int):
            return self.ONE if d == 1 else lit(d)
        if isinstance(d, str):
            return self.named_dims.setdefault(d, Dim(d, 1))
        Dim.serial += 1
        return Dim(auto_name, 2 + Dim.serial + (10 ** 9 if weak else 0))

    def product(self, *ds):
        """The Dim d1·d2·… (vec, kron): a number when all are numbers."""
        ds = [d for d in ds if not _is_one(d)]
        if not ds:
            return self.ONE
        if len(ds) == 1:
            return ds[0]
        value = product(*(resolved(d) for d in ds))
        if isinstance(value, int):
            return self.dim(value, None)
        return Dim(DimProd(ds), 1)

    def unify(self, a, b, ast, what):
        ra, rb = a.find(), b.find()
        if ra is rb:
            return
        if isinstance(ra.value, DimProd) or isinstance(rb.value, DimProd):
            return self.unify_product(ra, rb, ast, what)
        va, vb = ra.value, rb.value
        if va == 1 and vb == 1 and ra.rank == 0 and rb.rank == 0:
            return  # 1 and a kept 1: equal sizes, and the marker stays apart
        if isinstance(va, int) and isinstance(vb, int) and va != vb:
            raise ShapeError(what(), self.src, ast.op_span)
        # A vector's length or a matrix's side never silently becomes 1.
        if (va == 1 and ra.rank == 0 and not isinstance(vb, int)) or \
                (vb == 1 and rb.rank == 0 and not isinstance(va, int)):
            raise ShapeError(what(), self.src, ast.op_span)
        # Names the user wrote (declarations, 1_N, I_n) are never assumed
        # equal to another name or to a number: they may differ at run time.
        if ra.rank <= 1 and rb.rank <= 1 and va != vb:
            raise ShapeError(self.needs(ast, va, vb), self.src, ast.span)
        if (rb.rank, 0) < (ra.rank, 0) or isinstance(vb, int) and not isinstance(va, int):
            ra, rb = rb, ra
        rb.parent = ra

    def unify_product(self, ra, rb, ast, what):
        """Unification where a size is a product (m_X·n_X): equal products;
        an unknown size becomes the product; a number solves a product with one
        unknown factor (3·n = 12); two products of as many unknowns are unified
        factor by factor (vec(X) against vec(Y): X and Y of one shape)."""
        if not isinstance(ra.value, DimProd):
            ra, rb = rb, ra  # ra is a product
        va, vb = resolved(ra), resolved(rb)
        if va == vb:
            rb.parent = ra
            return
        if isinstance(va, int) and isinstance(vb, int):
            raise ShapeError(what(), self.src, ast.op_span)
        ca, fa = _flat(ra)
        if any(f is rb for f in fa):  # n = m·n: only with m = 1
            raise ShapeError(what(), self.src, ast.op_span)
        if not isinstance(rb.value, DimProd):
            if rb.rank >= 2:  # an unknown size: it is the product
                rb.parent = ra
                return
            if isinstance(vb, int) and len(fa) == 1 and vb % ca == 0 and vb // ca > 1:
                self.unify(fa[0], self.dim(vb // ca, None), ast, what)
                rb.parent = ra
                return
            if isinstance(vb, int):
                raise ShapeError(f"{what()}: cannot tell the sizes whose product {va} is {vb} "
                                 f"(declare them)", self.src, ast.op_span)
            raise ShapeError(self.needs(ast, va, vb), self.src, ast.span)
        cb, fb = _flat(rb)
        if ca != cb or len(fa) != len(fb):
            raise ShapeError(f"{what()} (the sizes {va} and {vb} are not known to be equal)",
                             self.src, ast.op_span)
        for x, y in zip(fa, fb):
            self.unify(x, y, ast, what)
        if ra.find() is not rb.find():
            rb.find().parent = ra.find()

    # -- variables ---------------------------------------------------------
    def variable(self, name, ast):
        if name in self.bound:
            return self.bound[name]
        if name in self.vars:
            return self.vars[name][1]
        if name in ("pi", "π") and name not in self.decls:
            self.constants.add(name)
            return (self.ONE, self.ONE)
        if name not in self.decls and name in self.named_dims:
            self.dim_scalars.add(name)
            return (self.ONE, self.ONE)
        kind, dims = self.decls.get(name, (default_kind(name), []))
        if kind == "onehot" and not dims:
            kind_shape = "vector" if name[0].islower() else "matrix"
        else:
            kind_shape = kind
        if kind_shape == "onehot":
            kind_shape = "vector" if len(dims) == 1 else "matrix"
        want = {"scalar": 0, "vector": 1, "matrix": 2, "symmetric": 1, "spd": 1}[kind_shape]
        if kind_shape in ("matrix",) and len(dims) == 1:
            raise NameError_(f"{name}: a matrix needs two dimensions, got {dims}", self.src, ast.span)
        if len(dims) > max(want, 2 if kind_shape == "matrix" else want):
            raise NameError_(f"{name}: too many dimensions for a {kind}", self.src, ast.span)
        if kind_shape == "scalar":
            shape = (self.ONE, self.ONE)
        elif kind_shape == "vector":
            shape = (self.dim(dims[0] if dims else None, f"n_{name}"), self.ONE)
        elif kind_shape in _SQUARE:
            d = self.dim(dims[0] if dims else None, f"n_{name}")
            shape = (d, d)
        else:
            shape = (self.dim(dims[0] if dims else None, f"m_{name}"),
                     self.dim(dims[1] if len(dims) > 1 else None, f"n_{name}"))
        self.vars[name] = (kind, shape)
        return shape

    # -- the walk ----------------------------------------------------------
    def program(self, stmts):
        self.auto_dim_names(stmts)
        shape = None
        for name, ast in stmts:
            shape = self.infer(ast)
            if name is not None:
                self.bound[name] = shape
        return shape

    def auto_dim_names(self, stmts):
        """`n_X`, `m_X` (printed for undeclared dimensions) read back as those sizes."""
        names, stack = set(), [a for _, a in stmts]
        while stack:
            a = stack.pop()
            if a.kind == "name" or (a.kind in ("ones", "eye") and a.value is not None):
                names.add(a.value)  # 𝟙_n_X, I_m_A: sizes too
            stack.extend(a.args)
        bound = {n for n, _ in stmts if n}
        self.sample_count_names(stmts, bound)
        for name in sorted(names):
            m = re.fullmatch(r"([mn])_(.+)", name)
            if not m or name in self.decls or name in bound or m.group(2) not in names \
                    or m.group(2) in bound:
                continue
            shape = self.variable(m.group(2), None)
            if is_scalar_shape(shape):
                continue
            d = shape[0] if m.group(1) == "m" or _klass(shape) == "col" else shape[1]
            if resolved(d) == name:
                self.named_dims[name] = d.find()
                self.dim_scalars.add(name)
                self.vars.pop(name, None)

    def sample_count_names(self, stmts, bound):
        """Candidates for `…/N`: undeclared single upper-case letters used only as
        divisors. Such a name divided into a scalar is a dimension, not a matrix
        (see i_div)."""
        divisors, other = set(), set()

        def walk(a, divisor=False):
            if a.kind == "name":
                (divisors if divisor else other).add(a.value)
                return
            if a.kind == "div":
                walk(a.args[0])
                rhs = a.args[1]
                while rhs.kind == "paren":
                    rhs = rhs.args[0]
                walk(rhs, divisor=True)
                return
            for c in a.args:
                walk(c)
        for _, a in stmts:
            walk(a)
        self.count_candidates = {
            n for n in divisors - other
            if len(n) == 1 and "A" <= n <= "Z" and n not in self.decls and n not in bound
            and n not in self.named_dims}

    def sample_count(self, name):
        """Bind `name` to the number of rows (samples) of the first matrix so far."""
        first = next((v for v, (kind, shape) in self.vars.items()
                      if kind in ("matrix", "onehot") and not is_scalar_shape(shape)
                      and _klass(shape) == "mat"), None)
        if first is None:
            return False
        root = self.vars[first][1][0].find()
        if root.rank >= 2:  # an automatic name: the user's letter names it now
            root.value, root.rank = name, 1
        self.named_dims[name] = root
        self.dim_scalars.add(name)
        self.count_candidates.discard(name)
        return True

    def infer(self, ast):
        method = getattr(self, "i_" + ast.kind, None)
        # an op written as an operator (A ⊗ B, X⁻¹) is its own AST kind
        shape = method(ast) if method is not None else self.apply(ast, ast.kind)
        self.shapes[ast] = shape
        if self.is_kept_col(shape):
            self.kept.add(ast)
        return shape

    def is_kept_col(self, s):
        """An N×1 matrix (a kept axis), as opposed to an N-vector."""
        return s[1] is self.KEPT and not _is_one(s[0])

    def i_paren(self, ast):
        return self.infer(ast.args[0])

    def i_name(self, ast):
        return self.variable(ast.value, ast)

    def i_num(self, ast):
        return (self.ONE, self.ONE)

    def fresh(self, base):
        self.count = getattr(self, "count", 0) + 1
        return f"{base}{self.count}"

    def i_ones(self, ast):
        d = self.dim(_dimval(ast.value), self.fresh("n_𝟙"), weak=True)
        self.sized[ast] = d
        return (d, self.ONE)

    def i_eye(self, ast):
        d = self.dim(_dimval(ast.value), self.fresh("n_I"), weak=True)
        self.sized[ast] = d
        return (d, d)

    def i_neg(self, ast):
        return self.infer(ast.args[0])

    def i_T(self, ast):
        r, c = self.infer(ast.args[0])
        return (c, r)

    def square(self, s, ast, what):
        if is_scalar_shape(s):
            return s
        self.unify(s[0], s[1], ast, lambda: f"{what} needs a square matrix, but "
                   f"{self.text(ast.args[0])} is {shape_text(s)}")
        return s

    def text(self, ast):
        s, e = ast.span
        return self.src[s:e].strip()

    def needs(self, ast, va, vb):
        """'XW needs D = N: X is N×D, W is N×C'."""
        parts = [f"{self.text(a)} is {shape_text(self.shapes[a])}" for a in ast.args
                 if a in self.shapes and not is_scalar_shape(self.shapes[a])]
        return (f"{self.text(ast)} needs {va} = {vb}" + (": " + ", ".join(parts) if parts else "")
                + " (declared sizes are not assumed equal: write one name for sizes that match)")

    def i_prod(self, ast):
        a, b = ast.args
        sa, sb = self.infer(a), self.infer(b)
        if is_scalar_shape(sa):
            return sb
        if is_scalar_shape(sb):
            return sa
        self.unify(sa[1], sb[0], ast, lambda: (
            f"shape mismatch in the product {self.text(a)} · {self.text(b)}: "
            f"{shape_text(sa)} times {shape_text(sb)}"))
        return (sa[0], sb[1])

    def i_div(self, ast):
        sa = self.infer(ast.args[0])
        rhs = ast.args[1]
        while rhs.kind == "paren":
            rhs = rhs.args[0]
        if rhs.kind == "name" and rhs.value in getattr(self, "count_candidates", ()) \
                and is_scalar_shape(sa) and self.sample_count(rhs.value):
            return sa  # s/N: N counts the samples
        sb = self.infer(ast.args[1])
        if is_scalar_shape(sb):
            return sa
        return self.broadcast(ast, sa, sb, "element-wise division of")

    def i_had(self, ast):
        return self.broadcast(ast, self.infer(ast.args[0]), self.infer(ast.args[1]),
                              "Hadamard product of")

    def i_ediv(self, ast):
        return self.broadcast(ast, self.infer(ast.args[0]), self.infer(ast.args[1]),
                              "element-wise division of")

    def i_add(self, ast):
        return self.broadcast(ast, self.infer(ast.args[0]), self.infer(ast.args[1]), "sum of")

    i_sub = i_add

    def broadcast(self, ast, sa, sb, what):
        """NumPy broadcasting: a scalar everywhere; a vector against a matrix
        along the last axis; a kept N×1 (an axis reduction's result) along
        its size-1 axis, against N×D or a row 1×D (a 1×D row always does).
        `what` names the operation in messages ("sum of", "Hadamard product of")."""
        if is_scalar_shape(sa):
            return sb
        if is_scalar_shape(sb):
            return sa
        a, b = ast.args
        ka, kb = _klass(sa), _klass(sb)
        kept_a, kept_b = self.is_kept_col(sa), self.is_kept_col(sb)

        def msg():
            hint = ""
            if {ka, kb} == {"col", "mat"} and not (kept_a or kept_b):
                hint = " (a vector broadcasts along the last axis; to add down columns write c 𝟙ᵀ)"
            elif {ka, kb} == {"col", "mat"}:
                hint = " (an N×1 result of an axis reduction broadcasts along the rows of N×D)"
            return (f"shape mismatch in the {what} {self.text(a)} and {self.text(b)}: "
                    f"{shape_text(sa)} and {shape_text(sb)}{hint}")
        if ka == kb:
            self.unify(sa[0], sb[0], ast, msg)
            self.unify(sa[1], sb[1], ast, msg)
            if ka == "col":  # kept if either is: N×1 ± an N-vector stays N×1
                return (sa[0], self.KEPT if kept_a or kept_b else self.ONE)
            if ka == "row":
                return (self.KEPT if self.KEPT in (sa[0], sb[0]) else self.ONE, sa[1])
            return sa
        if (kept_a or kept_b) and "col" in (ka, kb):
            col, other = (sa, sb) if kept_a else (sb, sa)
            if _klass(other) == "row":  # N×1 against 1×D: N×D
                return (col[0], other[1])
            if col is sa:
                self.unify(col[0], other[0], ast, msg)
            else:
                self.unify(other[0], col[0], ast, msg)
            return other
        if {ka, kb} == {"col", "row"}:
            raise ShapeError(msg(), self.src, ast.op_span)
        vec, mat = (sa, sb) if ka != "mat" else (sb, sa)
        vlen = vec[0] if _klass(vec) == "col" else vec[1]
        if vec is sa:
            self.unify(vlen, mat[1], ast, msg)
        else:
            self.unify(mat[1], vlen, ast, msg)  # the left operand's size first
        return mat

    def i_pow(self, ast):
        base, expo = ast.args
        sb = self.infer(base)
        se = self.infer(expo)
        if not is_scalar_shape(se):
            raise ShapeError("an exponent must be a scalar", self.src, expo.span)
        if is_scalar_shape(sb) or _klass(sb) != "mat":
            return sb
        k = integer_exponent(expo)
        if k is None:
            raise ShapeError(f"non-integer power of the matrix {self.text(base)}: "
                             f"use .^ for an element-wise power", self.src, ast.op_span)
        r, c = resolved(sb[0]), resolved(sb[1])
        if isinstance(r, int) and isinstance(c, int) and r != c:
            return sb  # element-wise, as in NumPy
        return self.square(sb, ast, "a matrix power")

    def i_epow(self, ast):
        sb = self.infer(ast.args[0])
        se = self.infer(ast.args[1])
        if not is_scalar_shape(se):
            raise ShapeError("an exponent must be a scalar", self.src, ast.args[1].span)
        return sb

    def i_call(self, ast):
        name, sub = ast.value if isinstance(ast.value, tuple) else (ast.value, None)
        return self.apply(ast, name, sub)

    def apply(self, ast, name, sub=None):
        """An op applied to the AST's arguments: its argument count checked,
        then its entry's named shape rule (matdiff/ops/shape_rules.py)."""
        op = registry.op(name)
        if op is None:
            raise NameError_(f"unknown function {name!r}", self.src, ast.op_span)
        count = len(ast.args)
        if op.elementwise:
            params = registry.params(name)
            if count != 1 + len(params):
                raise ShapeError(_elementwise_arity(name, params, count), self.src, ast.span)
            if not params:  # f(X): X's shape (the common case, kept cheap)
                return self.infer(ast.args[0])
            return shape_rules.elementwise(ShapeCall(self, ast, op, sub, params))
        if count != op.get("arity", 1):  # (the common case, one argument, costs one lookup)
            message = syntax.arity_error(name, count)
            if message:
                raise ShapeError(message, self.src, ast.span)
        shape = shape_rules.rule(op.get("shape", "same"))(ShapeCall(self, ast, op, sub))
        if op.get("build") is None:  # built generically: the builder needs its shape
            self.sized[ast] = shape
        return shape

    def size_of(self, a):
        """A size written in the text (unvec's): a positive integer, a dimension
        name, or a product of them."""
        while a.kind == "paren":
            a = a.args[0]
        if a.kind == "num" and a.value.isdigit() and int(a.value) > 0:
            return self.dim(int(a.value), None)
        if a.kind == "name" and not is_greek(a.value):
            return self.named_dims[a.value] if a.value in self.named_dims else self.dim(a.value, None)
        if a.kind == "prod":
            return self.product(self.size_of(a.args[0]), self.size_of(a.args[1]))
        raise ShapeError("a size must be a positive integer, a dimension name or a product "
                         "of them", self.src, a.span)


class ShapeCall:
    """An op applied in the text, as its shape rule sees it (see
    matdiff/ops/shape_rules.py): the arguments' shapes, inferred on demand,
    and helpers whose errors point at the text."""
    __slots__ = ("inf", "ast", "op", "sub", "params", "count", "scalar", "ONE", "KEPT",
                 "_shapes")

    def __init__(self, inf, ast, op, sub=None, params=()):
        self.inf, self.ast, self.op, self.sub = inf, ast, op, sub
        self.params = params  # an element-wise function's scalar parameters
        self.count = len(ast.args)
        self.ONE, self.KEPT = inf.ONE, inf.KEPT
        self.scalar = (inf.ONE, inf.ONE)
        self._shapes = {}

    @property
    def word(self):
        """How messages name the op (var for the variance)."""
        return syntax.word(self.op.name)

    def shape(self, i):
        """Argument i's shape (inferred once: a rule may ask twice)."""
        if i not in self._shapes:
            self._shapes[i] = self.inf.infer(self.ast.args[i])
        return self._shapes[i]

    def text(self, i):
        return self.inf.text(self.ast.args[i])

    def span(self, i=None):
        return self.ast.span if i is None else self.ast.args[i].span

    def error(self, message, span=None):
        raise ShapeError(message, self.inf.src, span or self.ast.span)

    @staticmethod
    def klass(s):
        return "scalar" if is_scalar_shape(s) else _klass(s)

    shape_text = staticmethod(shape_text)
    resolved = staticmethod(resolved)

    def square(self, s, what):
        return self.inf.square(s, self.ast, what)

    def unify(self, a, b, what):
        self.inf.unify(a, b, self.ast, what)

    def product(self, *ds):
        return self.inf.product(*ds)

    def size(self, i):
        """Argument i as a size written in the text (unvec's m, n)."""
        d = self.inf.size_of(self.ast.args[i])
        self.inf.sized[self.ast.args[i]] = d
        return d

    def axis(self, i):
        """Argument i as an axis, 0 or 1 (-2, -1 as in NumPy)."""
        return axis_reduction_axis(self.ast, self.inf.src, self.word, i)


def _elementwise_arity(fname, params, count):
    """'elu takes 2 arguments, elu(X, alpha), got 1'."""
    if not params:
        return f"{fname} takes one argument, got {count}"
    shown = ", ".join(["X"] + list(params))
    return f"{fname} takes {1 + len(params)} arguments, {fname}({shown}), got {count}"


def shape_from_ir(name, nodes, src=""):
    """The shape rule of op `name` applied to built IR nodes (an op with no
    builder of its own, in a rule template, where no inference ran)."""
    from .parser import Ast
    inf = Inference(src, {})
    ast = Ast("call", [Ast("name", value="_") for _ in nodes], value=name)
    call = ShapeCall(inf, ast, registry.op(name))
    for i, node in enumerate(nodes):
        call._shapes[i] = tuple(inf.dim(d, None) for d in node.shape)
    return tuple(resolved(d) for d in shape_rules.rule(call.op.get("shape", "same"))(call))


def axis_reduction_axis(ast, src="", word=None, i=1):
    """The axis (0 or 1) of a reduction's argument i (sum(X, axis)): an integer
    literal; as in NumPy, -1 is the last axis (1) and -2 the first (0). `word`
    names the op in the message."""
    a, sign = ast.args[i], 1
    while a.kind in ("paren", "neg"):
        sign = -sign if a.kind == "neg" else sign
        a = a.args[0]
    axis = {(1, "0"): 0, (1, "1"): 1, (-1, "1"): 1, (-1, "2"): 0}.get((sign, a.value)) \
        if a.kind == "num" else None
    if axis is None:
        raise ShapeError(f"the axis of {word}(X, axis) must be 0 (down each column: 1×D) "
                         f"or 1 (along each row: N×1), or -2 / -1 as in NumPy", src,
                         ast.args[i].span)
    return axis


def _klass(s):
    if _is_one(s[1]):
        return "col"
    if _is_one(s[0]):
        return "row"
    return "mat"


def _dimval(v):
    if v is None:
        return None
    return int(v) if v.isdigit() else v


def integer_exponent(expo):
    """The integer value of an exponent AST, or None."""
    sign = 1
    while expo.kind in ("neg", "paren"):
        if expo.kind == "neg":
            sign = -sign
        expo = expo.args[0]
    if expo.kind != "num":
        return None
    try:
        v = float(expo.value)
    except ValueError:
        return None
    return sign * int(v) if v.is_integer() else None
