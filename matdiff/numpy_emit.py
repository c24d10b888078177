"""NumPy code emission: a self-contained module with value / gradient /
value_and_gradient, reading the same DAG as the printers.

Code is built as Python `ast` trees (matdiff.pyast) and printed with
`ast.unparse`, which parenthesises by precedence: no code is pasted together
as strings, so inlining a single-use subexpression is always safe. Each node
used more than once becomes a temporary, computed once, and so does any
expression taller than `MAX_HEIGHT` (deep nesting compiles at any depth).
`value` is the forward half of `value_and_gradient`'s body, not a second
rendering of it.

Arrays: vectors (and row vectors) are 1-D, matrices 2-D, scalars floats.
Broadcast forms stay broadcasts inside element-wise operations: 𝟙bᵀ is b,
b𝟙ᵀ is b[:, None], s𝟙𝟙ᵀ is s (a "lite" form: NumPy-broadcastable to the
node's shape); 𝟙ᵀG becomes a column sum, diag(v)M a row scaling.
"""

import ast
import keyword
import re
import unicodedata

from . import pyast as P
from .ops import registry
from .dims import Prod, product
from .ir import is_ones_matrix
from .diff import topo_order
from .engine import shape_of
from fractions import Fraction

_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | {"None", "True", "False"}

# Tall expressions are bound to temporaries: Python's parser allows about 200
# nested parentheses, and short lines read better anyway.
MAX_HEIGHT = 24

HELPERS = {
    "_sigmoid": '''def _sigmoid(x):
    # one exp of -|x|: no overflow, full relative accuracy on both sides
    e = _np.exp(-_np.abs(x))
    return _np.where(x >= 0, 1.0, e) / (1.0 + e)
''',
    "_softmax": '''def _softmax(z):
    # row-wise for a matrix, over the entries for a vector; max-shifted
    e = _np.exp(z - _np.max(z, axis=-1, keepdims=True))
    return e / _np.sum(e, axis=-1, keepdims=True)
''',
    "_log_softmax": '''def _log_softmax(z):
    s = z - _np.max(z, axis=-1, keepdims=True)
    return s - _np.log(_np.sum(_np.exp(s), axis=-1, keepdims=True))
''',
    "_logsumexp": '''def _logsumexp(z):
    m = _np.max(z, axis=-1, keepdims=True)
    return (m + _np.log(_np.sum(_np.exp(z - m), axis=-1, keepdims=True)))[..., 0]
''',
    "_erf": '''def _erf(x):
    # NumPy has no erf: the standard library's, entry by entry
    return _np.vectorize(_math.erf, otypes=[float])(x)
''',
    "_gelu": '''def _gelu(x):
    # x Φ(x) with Φ the standard normal CDF
    return 0.5 * x * (1.0 + _erf(x / _np.sqrt(2.0)))
''',
    "_gelu_tanh": '''def _gelu_tanh(x):
    return 0.5 * x * (1.0 + _np.tanh(_np.sqrt(2.0 / _np.pi) * (x + 0.044715 * x ** 3)))
''',
    "_elu": '''def _elu(x, alpha):
    # x for x > 0, alpha (e^x - 1) otherwise (expm1 of min(x, 0): no overflow)
    return _np.where(x > 0, x, alpha * _np.expm1(_np.minimum(x, 0.0)))
''',
    "_leaky_relu": '''def _leaky_relu(x, alpha):
    return _np.where(x > 0, x, alpha * x)
''',
    "_by_directions": '''def _by_directions(directional, x, arrays):
    # the columns of a Hessian / Jacobian: directional derivatives along each
    # basis direction of x, in vec order (column stacking)
    shape = _np.shape(x)
    size = int(_np.prod(shape))
    cols = []
    for k in range(size):
        e = _np.zeros(size)
        e[k] = 1.0
        col = directional(e.reshape(shape, order='F'), **arrays)
        cols.append(_np.ravel(_np.asarray(col, dtype=float), order='F'))
    return _np.stack(cols, axis=1)
''',
}


def py_name(name):
    """A safe Python identifier for a user name (lambda -> lambda_)."""
    if name.isidentifier() and unicodedata.normalize("NFKC", name) == name \
            and name not in _RESERVED and not name.startswith("_"):
        return name
    if name in _RESERVED:
        return name + "_"
    safe = "".join(ch if (ch.isascii() and (ch.isalnum() or ch == "_")) else "_" for ch in
                   unicodedata.normalize("NFKC", name))
    if not safe or safe[0].isdigit() or safe.startswith("_"):
        safe = "v" + safe
    return safe + "_"


def _rank(node):
    r, c = node.shape
    if (r, c) == (1, 1):
        return 0
    return 1 if (c == 1 or r == 1) else 2


def _sub_chain(args):
    from .ir import matmul
    return args[0] if len(args) == 1 else matmul(*args)


def _is_broadcast(node):
    """𝟙vᵀ or v𝟙ᵀ (a matrix that is a vector repeated along one axis)."""
    if node.op != "matmul" or len(node.args) != 2 or _rank(node) != 2:
        return False
    a, b = node.args
    return a.op == "ones" or (b.op == "T" and b.args[0].op == "ones")


def _block_sum(f, side):
    """(m, p, axis) when f sums blocks from the left: I_m ⊗ 𝟙_pᵀ sums each
    block's p rows (axis 1 of an m×p×n×q reshape), 𝟙_mᵀ ⊗ I_p the grid's m
    block rows (axis 0); from the right I_n ⊗ 𝟙_q (axis 3), 𝟙_n ⊗ I_q (axis 2)."""
    if f.op != "kron":
        return None
    a, b = f.args

    def ones(x):
        t = x.args[0] if x.op == "T" else x
        return t.op == "ones" and (x.op == "T") == (side == "left")
    if a.op == "eye" and ones(b):
        return (a.rows, b.cols, 1) if side == "left" else (a.rows, b.rows, 3)
    if ones(a) and b.op == "eye":
        return (a.cols, b.rows, 0) if side == "left" else (a.rows, b.rows, 2)
    return None


_TEMPLATES = {}


def _template(text):
    """A rule's code template ('_np.exp({x})', '_elu({x}, {alpha})') as a tree
    with slot names: {X} and {x} are `_slot_X`, a parameter {p} is `_slot_p`."""
    tree = _TEMPLATES.get(text)
    if tree is None:
        slotted = re.sub(r"\{(\w+)\}", lambda m: "_slot_" + ("X" if m[1] in "xX" else m[1]), text)
        tree = P.parse_expr(slotted)
        _TEMPLATES[text] = tree
    return tree


class Emitter:
    """Expression trees for IR nodes, and the statements binding temporaries.

    expr(node) is code for an array of exactly the node's shape; lite(node)
    returns (code, full) where code may be a broadcastable form (full False).
    """

    np = "_np"

    def __init__(self, variables):
        self.params = {name: py_name(name) for name in variables}
        self.dims = {}
        for name, node in variables.items():
            for axis, d in enumerate(shape_of(node)):  # declared numbers too: never baked in
                self.dims.setdefault(d, (self.params[name], axis))
        self.helpers = set()
        self.uses = {}
        self.stmts = []
        self.done = {}  # node -> (code, full) of a node bound to a temporary

    # -- small pieces ------------------------------------------------------
    def f(self, path, *args, **kw):
        """A call of an array-module function: f('exp', x) is _np.exp(x)."""
        return P.call(f"{self.np}.{path}", *args, **kw)

    def dim(self, d):
        if d in self.dims:
            param, axis = self.dims[d]
            return P.subscript(P.attr(param, "shape"), P.const(axis))
        if isinstance(d, int):
            return P.const(d)
        if isinstance(d, Prod):  # m·n: the product of its factors' sizes
            code = None
            for f in d.factors:
                c = self.dim(f)
                code = c if code is None else P.binop(code, "*", c)
            return code
        for known in self.dims:  # a factor of an array's size m·n: that size // m
            if isinstance(known, Prod) and d in known.factors:
                rest = list(known.factors)
                rest.remove(d)
                if all(f in self.dims or isinstance(f, int) for f in rest):
                    return P.binop(self.dim(known), "//", self.dim(product(*rest)))
        from .errors import ShapeError
        raise ShapeError(f"the size {d} cannot be read from any input array: give it, "
                         f"e.g. 1_N or I_N with N a dimension of a variable")

    def shape_code(self, node):
        return P.tuple_(*[self.dim(d) for d in shape_of(node)])

    def number(self, v):
        return P.const(float(v))

    def broadcast(self, code, node):
        return P.call(P.attr(self.f("broadcast_to", code, self.shape_code(node)), "copy"))

    def helper(self, hname, *args):
        self.helpers.add(hname)
        return P.call(hname, *args)

    def template(self, text, arg, **params):
        """text's tree with {x} (or {X}) replaced by arg and each {p} by params[p]."""
        self.need_helpers(text)
        slots = {"_slot_" + k: v for k, v in params.items()}
        slots["_slot_X"] = arg
        return P.substitute(_template(text), slots)

    def need_helpers(self, text):
        """The helpers `text` calls, and the helpers they call."""
        for h in HELPERS:
            if h + "(" in text and h not in self.helpers:
                self.helpers.add(h)
                self.need_helpers(HELPERS[h])

    # -- expressions -------------------------------------------------------
    def expr(self, node):
        code, full = self.lite(node)
        return code if full else self.broadcast(code, node)

    def lite(self, node):
        hit = self.done.get(node)
        if hit is not None:
            return hit
        out = getattr(self, "e_" + node.op)(node)
        code, full = out if isinstance(out, tuple) else (out, True)
        if not isinstance(code, (ast.Name, ast.Constant)) and (
                self.uses.get(node, 0) >= 2 or P.height(code) > MAX_HEIGHT):
            tmp = f"_t{len(self.stmts)}"
            self.stmts.append(P.assign(tmp, code))
            code = P.name(tmp)
            self.done[node] = (code, full)
        return code, full

    def e_var(self, n):
        return P.name(self.params[n.attr[0]])

    def e_const(self, n):
        return self.number(n.attr)

    def e_dim(self, n):
        return P.call("_float", self.dim(n.attr))

    def e_pi(self, n):
        return P.attr(self.np, "pi")

    def e_ones(self, n):
        return P.const(1.0), False

    def e_eye(self, n):
        return self.f("eye", self.dim(n.attr))

    def e_zero(self, n):
        return P.const(0.0), False

    def e_let(self, n):
        return self.lite(n.args[0])

    def e_add(self, n):
        from .ir import split_coef, scale
        acc, full = None, False
        for t in n.args:
            c, core = split_coef(t)
            minus = c < 0 and acc is not None
            if minus:
                code, f = (self.number(-c), False) if core is None else self.lite(scale(-c, core))
            else:
                code, f = self.lite(t)
            full |= f and t.shape == n.shape
            acc = code if acc is None else P.binop(acc, "-" if minus else "+", code)
        return acc, full

    def e_mul(self, n):
        from .ir import power, num
        nums, dens = [], []
        for f in n.args:
            if f.op == "pow" and f.args[1].op == "const" and f.args[1].attr < 0:
                dens.append(power(f.args[0], num(-f.args[1].attr)))
            else:
                nums.append(f)
        full = False
        negate = bool(nums) and nums[0].op == "const" and nums[0].attr == -1 and len(nums) > 1
        if negate:
            nums = nums[1:]
        acc = None
        for f in nums:
            code, ff = self.lite(f)
            full |= ff and f.shape == n.shape
            acc = code if acc is None else P.binop(acc, "*", code)
        if acc is None:
            acc = P.const(1.0)
        if negate:
            acc = P.neg(acc)
        for d in dens:
            code, ff = self.lite(d)
            full |= ff and d.shape == n.shape
            acc = P.binop(acc, "/", code)
        return acc, full

    def e_pow(self, n):
        base, e = n.args
        if e.op == "const" and e.attr == Fraction(1, 2):
            code, full = self.lite(base)
            return self.f("sqrt", code), full
        if e.op == "const" and e.attr == 2:
            code, full = self.lite(base)
            if isinstance(code, ast.Name):
                return P.binop(code, "*", code), full
            return self.f("square", code), full
        code, full = self.lite(base)
        return P.binop(code, "**", self.expr(e)), full

    def e_matmul(self, n):
        args = list(n.args)
        first, last = args[0], args[-1]
        # Broadcasts: 𝟙vᵀ is v along the last axis, v𝟙ᵀ is v[:, None].
        if len(args) == 2 and _rank(n) == 2:
            a, b = args
            if a.op == "ones":
                return self.expr(b.args[0] if b.op == "T" else b), False
            if b.op == "T" and b.args[0].op == "ones":
                return P.subscript(self.expr(a), P.tuple_(P.full_slice(), P.none())), False
        # (I_m ⊗ 𝟙_pᵀ) M (I_n ⊗ 𝟙_q) and friends (kron's pullbacks): sums of M's
        # p×q blocks, or of its block grid, by a reshape: no Kronecker factor formed
        rows, cols = _block_sum(first, "left"), _block_sum(last, "right")
        if rows is not None and cols is not None and len(args) > 2:
            (m, p, ra), (n, q, ca) = rows, cols
            four = P.tuple_(*[self.dim(d) for d in (m, p, n, q)])
            blocks = P.call(P.attr(self.expr(_sub_chain(args[1:-1])), "reshape"), four)
            return self.f("sum", blocks, axis=P.tuple_(P.const(ra), P.const(ca)))
        # Reductions and scalings that need no matrix product.
        if first.op == "T" and first.args[0].op == "ones":
            rest = _sub_chain(args[1:])
            if _rank(rest) == 2:
                return self.f("sum", self.expr(rest), axis=P.const(0))
            return self.f("sum", self.expr(rest))
        if last.op == "ones":
            rest = _sub_chain(args[:-1])
            if rest.op == "T" and _rank(rest) == 2:  # Gᵀ𝟙: column sums of G, read in order
                return self.f("sum", self.expr(rest.args[0]), axis=P.const(0))
            if _rank(rest) == 2:
                return self.f("sum", self.expr(rest), axis=P.const(-1))
            return self.f("sum", self.expr(rest))
        if first.op == "diag":
            rest = _sub_chain(args[1:])
            v = self.expr(first.args[0])
            if _rank(rest) == 2:
                v = P.subscript(v, P.tuple_(P.full_slice(), P.none()))
            return P.binop(v, "*", self.expr(rest))
        if last.op == "diag":
            return P.binop(self.expr(_sub_chain(args[:-1])), "*", self.expr(last.args[0]))
        if len(args) == 2 and args[0].cols == 1 and args[1].rows == 1:
            return self.f("outer", self.expr(args[0]), self.expr(args[1]))
        # L X⁻¹ R where the inverse is used only here: L @ solve(X, R), no inverse formed.
        for i, f in enumerate(args):
            if f.op == "inv" and f not in self.done and self.uses.get(f, 0) < 2:
                X = self.expr(f.args[0])
                left, right = args[:i], args[i + 1:]
                if right:
                    solved = self.f("linalg.solve", X, self.expr(_sub_chain(right)))
                    return P.binop(self.expr(_sub_chain(left)), "@", solved) if left else solved
                from .ir import transpose
                lt = self.expr(transpose(_sub_chain(left)))
                return P.attr(self.f("linalg.solve", P.attr(X, "T"), lt), "T")
        # Left to right; an outer product inside a longer chain is kept exact.
        acc, rows, cols = self.expr(args[0]), args[0].rows, args[0].cols
        i = 1
        while i < len(args):
            f = args[i]
            if f.op == "diag" and i + 1 < len(args):
                # A diag(v) B = A @ (v[:, None] * B): a row scaling, never the n×n diag(v)
                nxt = args[i + 1]
                v = self.expr(f.args[0])
                if nxt.op == "ones":
                    code = v
                elif _rank(nxt) == 2:
                    code = P.binop(P.subscript(v, P.tuple_(P.full_slice(), P.none())), "*",
                                   self.expr(nxt))
                else:
                    code = P.binop(v, "*", self.expr(nxt))
                f, i = nxt, i + 1
            elif f.op == "diag":
                code = None  # A diag(v) at the end: A's columns scaled, A * v
                acc = P.binop(acc, "*", self.expr(f.args[0]))
            else:
                code = self.expr(f)
            if code is None:
                pass
            elif (rows, cols) == (1, 1):
                acc = P.binop(acc, "*", code)  # a 1×1 partial product scales
            elif cols == 1 and f.rows == 1:
                acc = self.f("outer", acc, code)
            else:
                acc = P.binop(acc, "@", code)
            cols = f.cols
            i += 1
        return acc

    def e_T(self, n):
        x = n.args[0]
        code = self.expr(x)
        return P.attr(code, "T") if _rank(x) == 2 else code

    def e_tr(self, n):
        x = n.args[0]
        if x.op == "matmul" and x not in self.done and self.uses.get(x, 0) < 2 \
                and not any(f.op == "inv" and self.uses.get(f, 0) < 2 for f in x.args):
            # tr(A B) = sum(A ⊙ Bᵀ): no product matrix is formed
            from .ir import matmul, transpose
            a = x.args[0] if len(x.args) == 2 else matmul(*x.args[:-1])
            b = x.args[-1]
            if a.op == "T":
                return self.f("sum", P.binop(self.expr(a.args[0]), "*", self.expr(b)))
            return self.f("sum", P.binop(self.expr(a), "*", self.expr(transpose(b))))
        return self.template(registry.ops()["tr"]["numpy"], self.expr(x))

    def e_diagvec(self, n):
        x = n.args[0]
        if x.op == "matmul" and x not in self.done and self.uses.get(x, 0) < 2 and not any(
                f.op in ("inv", "ones") or (f.op == "T" and f.args[0].op == "ones")
                for f in x.args):
            # diag(L R) = the row sums of L ⊙ Rᵀ, no product matrix formed; split
            # where L is a column if the chain has one (diag(u vᵀ) = u ⊙ v)
            from .ir import transpose
            k = next((i for i in range(1, len(x.args)) if x.args[i - 1].cols == 1), len(x.args) - 1)
            left, right = _sub_chain(x.args[:k]), _sub_chain(x.args[k:])
            if left.op != "diag" and right.op != "diag":
                prod = P.binop(self.expr(left), "*", self.expr(transpose(right)))
                return prod if left.cols == 1 else self.f("sum", prod, axis=P.const(-1))
        return self.template(registry.ops()["diagvec"]["numpy"], self.expr(x))

    def e_softmax(self, n):
        from .ir import log_softmax
        ls = log_softmax(n.args[0])
        if self.uses.get(ls, 0) >= 2:
            return self.f("exp", self.expr(ls))
        return self.template(registry.ops()["softmax"]["numpy"], self.expr(n.args[0]))

    def e_unvec(self, n):
        # column-major: the columns of the result are consecutive chunks of g
        return self.f("reshape", self.expr(n.args[0]), self.shape_code(n), order=P.const("F"))

    def e_kron(self, n):
        def as_2d(x):  # vectors are 1-D: a column x[:, None], a row x[None, :]
            code = self.expr(x)
            if _rank(x) == 2:
                return code
            index = (P.full_slice(), P.none()) if x.cols == 1 else (P.none(), P.full_slice())
            return P.subscript(code, P.tuple_(*index))
        a, b = n.args
        if is_ones_matrix(a):  # 𝟙𝟙ᵀ ⊗ B: B tiled
            code = self.f("tile", as_2d(b), P.tuple_(self.dim(a.rows), self.dim(a.cols)))
        else:
            code = self.f("kron", as_2d(a), as_2d(b))
        return code if _rank(n) == 2 else self.f("ravel", code)

    def e_fn(self, n):
        code, full = self.lite(n.args[0])
        params = {p: self.expr(a) for p, a in zip(registry.params(n.attr), n.args[1:])}
        return self.template(registry.elementwise()[n.attr]["numpy"], code, **params), full

    def __getattr__(self, attr):
        """e_<op> for the other one-argument ops: their `numpy` entry in rules/ops.toml."""
        if attr.startswith("e_"):
            tpl = registry.ops().get(attr[2:], {}).get("numpy")
            if tpl is not None and "{X}" in tpl:
                return lambda n: self.template(tpl, self.expr(n.args[0]))
        raise AttributeError(attr)

    # -- statements --------------------------------------------------------
    def count_uses(self, outputs):
        uses = {}
        order = []
        for out in outputs:
            for n in topo_order(out):
                if n not in uses:
                    uses[n] = 0
                    order.append(n)
        for n in order:
            for a in n.args:
                uses[a] += 1
        # softmax(z) next to log_softmax(z): compute the log once, exp it.
        from .ir import log_softmax
        for n in order:
            if n.op == "softmax":
                ls = log_softmax(n.args[0])
                if ls in uses:
                    uses[ls] += 2
        for out in outputs:
            uses[out] = uses.get(out, 0) + 2
        self.uses = uses

    def finish(self, node):
        """The returned value of node: a float, or an array of its own."""
        code = self.expr(node)
        if _rank(node) == 0:
            return P.call("_float", code)
        if node.op == "var" or (node.op == "let" and node.args[0].op == "var"):
            return self.f("array", code, dtype=P.name("_float"))  # never the caller's array
        return code

    def run(self, outputs):
        """Statements computing outputs in order; returns the list of
        (statements so far, return expression) after each output."""
        self.count_uses(outputs)
        self.stmts, self.done = [], {}
        marks = []
        for out in outputs:
            code = self.finish(out)
            marks.append((len(self.stmts), code))
        return marks

    # -- module assembly (overridden by the JAX and PyTorch emitters) ------
    def head(self, src, what):
        return _head(src, self, what)

    def matrix_result(self, code):
        """A Hessian / Jacobian matrix as returned: always 2-D."""
        return self.f("atleast_2d", self.f("asarray", code, dtype=P.name("_float")))

    def extra_functions(self, params, wrt):
        """Definitions after value / value_and_gradient / gradient (a custom_vjp, ...)."""
        return []


def _head(src, em, what):
    """Docstring, imports and helpers. The user's text enters only as a constant."""
    doc = "Generated by matdiff: value(**arrays)" + (f" and {what}" if what else "") + "."
    imports = [ast.alias(name="numpy", asname="_np")]
    if any("_math." in HELPERS[h] for h in em.helpers):
        imports.append(ast.alias(name="math", asname="_math"))
    stmts = [ast.Expr(value=ast.Constant(value=doc)), ast.Import(names=imports),
             P.assign("_EXPRESSION", P.const(src.strip())),
             P.assign("_float", P.name("float"))]  # a variable may be called `float`
    # The helpers are fixed text of this module (never user input): kept verbatim.
    return stmts + [HELPERS[h] for h in sorted(em.helpers)]


def _module_text(stmts):
    """PEP 8 layout: two blank lines around each top-level definition."""
    parts = []
    for s in stmts:
        text = s.rstrip("\n") if isinstance(s, str) else P.unparse_module([s])
        block = isinstance(s, str) or isinstance(s, ast.FunctionDef)
        if parts and (block or parts[-1][1]):
            parts.append(("\n", False))
        parts.append((text, block))
    return "\n".join(t for t, _ in parts) + "\n"


def module_source(problem, grads, header=None, emitter=None):
    """The --format numpy module for problem and {name: gradient node};
    emitter: an Emitter subclass for another array library (matdiff.emit_jax)."""
    em = (emitter or Emitter)(problem.variables)
    params = [em.params[v] for v in problem.variables]
    wrt = list(grads)
    g_nodes = [grads[w] for w in wrt]
    marks = em.run([problem.root] + g_nodes)
    n_forward, ret_v = marks[0]
    rets = [code for _, code in marks[1:]]
    g_ret = rets[0] if len(rets) == 1 else P.tuple_(*rets)
    body = em.stmts
    funcs = [
        P.function("value", params, body[:n_forward] + [P.ret(ret_v)]),
        P.function("value_and_gradient", params, body + [P.ret(P.tuple_(ret_v, g_ret))],
                   doc="The backprop kernel: value and gradient, sharing the forward pass."),
        # gradient() calls the kernel by a private name: a variable may shadow `value_and_gradient`
        P.assign("_value_and_gradient", P.name("value_and_gradient")),
        P.function("gradient", params, [P.ret(P.subscript(
            P.call("_value_and_gradient", **{p: P.name(p) for p in params}), P.const(1)))]),
    ] + em.extra_functions(params, wrt)
    head = em.head(problem.src, f"the gradient with respect to {', '.join(wrt)}" if wrt else "")
    return _module_text(head + funcs)


def compile_module(source):
    """Execute generated (never user-written) code in a fresh namespace."""
    namespace = {"__name__": "matdiff_generated"}
    exec(compile(source, "<matdiff-generated>", "exec"), namespace)
    return namespace


def higher_module_source(h, emitter=None):
    """The --format numpy module of a Hessian / Jacobian (higher.Higher)."""
    problem = h.problem
    dname = h.direction.attr[0]
    em = (emitter or Emitter)({**problem.variables, dname: h.direction})
    user = [em.params[v] for v in problem.variables]
    fn = h.kind
    if h.matrix is not None:
        (n_forward, ret_v), = em.run([problem.root])
        value = P.function("value", user, em.stmts[:n_forward] + [P.ret(ret_v)])
        (_, ret_m), = em.run([h.matrix])  # its own statements: no forward value it does not use
        funcs = [value, P.function(fn, user, em.stmts + [P.ret(em.matrix_result(ret_m))])]
    else:
        (n_forward, ret_v), = em.run([problem.root])
        value = P.function("value", user, em.stmts[:n_forward] + [P.ret(ret_v)])
        (_, ret_d), = em.run([h.dF])
        directional = P.function("_directional", user, em.stmts + [P.ret(ret_d)],
                                 positional=[em.params[dname]])
        x = em.params[h.wrt] if h.wrt in em.params else em.params[dname]
        arrays = P.dict_({p: P.name(p) for p in user})
        body = [P.ret(em.helper("_by_directions", P.name("_directional"), P.name(x), arrays))]
        funcs = [value, directional, P.function(fn, user, body)]
    head = em.head(problem.src, f"the {fn} with respect to {h.wrt}"
                   + (" (vec order: column stacking)" if h.x.cols != 1 else ""))
    return _module_text(head + funcs)
