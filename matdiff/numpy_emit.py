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

from . import present
from . import pyast as P
from .ops import registry, numpy_code
from .dims import Prod, product
from .errors import MatdiffError
from .diff import topo_order
from .engine import shape_of

_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | {"None", "True", "False"}

# Tall expressions are bound to temporaries: Python's parser allows about 200
# nested parentheses, and short lines read better anyway.
MAX_HEIGHT = 24

# The ops' kernels (matdiff/ops/numpy_code.py) and the module's own helpers.
HELPERS = {
    **numpy_code.HELPERS,
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


_rank = numpy_code.rank
_sub_chain = numpy_code.sub_chain


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
        self._emitters = {}  # op name -> its emitting function (_emitter_of)

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

    def copy(self, code):
        return P.call(P.attr(code, "copy"))

    def owned(self, code):
        """code as an array of its own, which the kernel may update in place:
        an operator's result is one already, anything else (an input, a named
        temporary, a view) is copied (`copy`: none in JAX, whose arrays are
        immutable)."""
        if isinstance(code, (ast.BinOp, ast.UnaryOp)):
            return code
        return self.copy(code)

    def helper(self, hname, *args):
        self.helpers.add(hname)
        return P.call(hname, *args)

    # -- an op's code template ------------------------------------------------
    def op_tree(self, op):
        """The tree of the op's code template for this backend (its `numpy`
        entry), the helpers it calls noted."""
        text = op.get("numpy")
        if text is None:
            raise MatdiffError(f"the op {op.name!r} has no NumPy code: give its entry "
                               f"a `numpy` template or a `numpy_fn`")
        self.need_helpers(text)
        return _template(text)

    def fill(self, tree, slots):
        """tree with each {name} slot replaced by slots[name] (a code tree)."""
        return P.substitute(tree, {"_slot_" + k: v for k, v in slots.items()})

    def op_template(self, n, op=None):
        """n's code from its op's template, any one- or two-argument op: the
        arguments in the slots of their rule names, {shape} the node's shape."""
        op = op or registry.op(n.op)
        tree = self.op_tree(op)
        return self.fill(tree, numpy_code.slots(self, n, tree))

    # -- named code functions (matdiff/ops/numpy_code.py) ----------------------
    key = "numpy"         # the column of the rule table this emitter reads
    CODE = (numpy_code,)  # modules of named code functions, searched in order

    def code(self, name):
        """The named code function `name`: a backend's own first (CODE)."""
        for module in self.CODE:
            f = getattr(module, name, None)
            if f is not None:
                return f
        raise MatdiffError(f"rules name the code function {name!r}, which "
                           f"{' / '.join(m.__name__ for m in self.CODE)} do not define")

    def _emitter_of(self, op_name):
        """How nodes of op_name are emitted: a method e_<op> (leaves, the IR's
        grammar, a backend's per-node override), else the op's entry: the
        function it names (`<backend>_fn`, else `numpy_fn`) or its template."""
        method = getattr(self, "e_" + op_name, None)
        if method is not None:
            return method
        op = registry.op(op_name)
        if op is None:
            raise MatdiffError(f"no code for the op {op_name!r}: it has no entry in the rules")
        fname = op.get(self.key + "_fn") or op.get("numpy_fn")
        if fname is not None:
            f = self.code(fname)
            return lambda n: f(self, n)
        return lambda n: self.op_template(n, op)

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
        emit = self._emitters.get(node.op)
        if emit is None:
            emit = self._emitters[node.op] = self._emitter_of(node.op)
        out = emit(node)
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
        # The special forms of sums (a diagonal added in place), then the terms
        # in reading order: numpy_code.ADD_RULES.
        terms = present.terms(n)
        for rule in numpy_code.ADD_RULES:
            out = self.code(rule)(self, n, terms)
            if out is not None:
                return out
        return self.sum_code(terms, n.shape)

    def sum_code(self, terms, shape):
        """(code, full) of the sum of terms, a node of the given shape: a
        negative coefficient is a subtraction."""
        from .ir import split_coef, scale
        acc, full = None, False
        for t in terms:
            c, core = split_coef(t)
            minus = c < 0 and acc is not None
            if minus:
                code, f = (self.number(-c), False) if core is None else self.lite(scale(-c, core))
            else:
                code, f = self.lite(t)
            full |= f and t.shape == shape
            acc = code if acc is None else P.binop(acc, "-" if minus else "+", code)
        return acc, full

    def e_mul(self, n):
        from .ir import power, num
        nums, dens = [], []
        for f in present.factors(n):
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

    def e_matmul(self, n):
        args = list(n.args)
        # Broadcasts: 𝟙vᵀ is v along the last axis, v𝟙ᵀ is v[:, None].
        if len(args) == 2 and _rank(n) == 2:
            a, b = args
            if a.op == "ones":
                return self.expr(b.args[0] if b.op == "T" else b), False
            if b.op == "T" and b.args[0].op == "ones":
                return P.subscript(self.expr(a), P.tuple_(P.full_slice(), P.none())), False
        # The special forms of chains (axis sums, scalings, solves, ...), then
        # the product left to right: numpy_code.CHAIN_RULES.
        for rule in numpy_code.CHAIN_RULES:
            out = self.code(rule)(self, args)
            if out is not None:
                return out
        raise AssertionError("left_to_right applies to every chain")

    def e_T(self, n):
        x = n.args[0]
        code = self.expr(x)
        return P.attr(code, "T") if _rank(x) == 2 else code

    def e_fn(self, n):
        op = registry.op(n.attr)  # the element-wise function's entry
        fname = op.get(self.key + "_fn") or op.get("numpy_fn")
        if fname is not None:
            return self.code(fname)(self, n)
        code, full = self.lite(n.args[0])
        params = {p: self.expr(a) for p, a in zip(registry.params(n.attr), n.args[1:])}
        return self.fill(self.op_tree(op), {"X": code, **params}), full

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
        # An op's code that reads other nodes counts them (`numpy_uses`: softmax
        # next to log_softmax takes the exp of the log, computed once).
        hooks = {name: self.code(entry["numpy_uses"]) for name, entry in registry.ops().items()
                 if "numpy_uses" in entry}
        if hooks:
            for n in order:
                hook = hooks.get(n.op)
                if hook is not None:
                    hook(uses, n)
        for out in outputs:
            uses[out] = uses.get(out, 0) + 2
        self.uses = uses

    def finish(self, node):
        """The returned value of node: a float, or an array of its own."""
        code = self.expr(node)
        if _rank(node) == 0:
            return P.call("_float", code)
        if numpy_code.is_callers_array(node):
            return self.f("array", code, dtype=P.name("_float"))  # never the caller's array
        return code

    def run(self, outputs):
        """Statements computing outputs in order; returns the list of
        (statements so far, return expression) after each output. The code is
        that of the lowered outputs (ir.lower: the rewrites of the lower
        phase, such as diagonal scaling as broadcasting)."""
        from .ir import lower
        outputs = lower(outputs)
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

    def matrix_result(self, code, node):
        """A Hessian / Jacobian matrix (the IR node, its code) as returned:
        always 2-D."""
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
        funcs = [value, P.function(fn, user, em.stmts + [P.ret(em.matrix_result(ret_m, h.matrix))])]
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
