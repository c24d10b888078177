"""NumPy code emission: a self-contained module with value / gradient /
value_and_gradient, reading the same DAG as the printers.

Each node used more than once becomes a temporary, computed once; the
forward pass's temporaries are reused by the backward pass. Vectors are 1-D
arrays, scalars floats. Broadcast forms (𝟙bᵀ) stay broadcasts inside sums
and products, 𝟙ᵀG becomes a column sum, diag(v)M a row scaling.
"""

import keyword
import unicodedata
from .rational import Fraction

from . import ruletable
from .diff import topo_order
from .engine import shape_of

_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | {"None", "True", "False"}

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


class Emitter:
    def __init__(self, problem):
        self.problem = problem
        self.params = {name: py_name(name) for name in problem.variables}
        self.dims = {}
        for name, node in problem.variables.items():
            for axis, d in enumerate(shape_of(node)):  # declared numbers too: never baked in
                self.dims.setdefault(d, f"{self.params[name]}.shape[{axis}]")
        self.helpers = set()

    # -- expressions -------------------------------------------------------
    def dim(self, d):
        if d in self.dims:
            return self.dims[d]
        if isinstance(d, int):
            return str(d)
        if d not in self.dims:
            from .errors import ShapeError
            raise ShapeError(f"the size {d} cannot be read from any input array: give it, "
                             f"e.g. 1_N or I_N with N a dimension of a variable")
        return self.dims[d]

    def shape_code(self, node):
        dims = [self.dim(d) for d in shape_of(node)]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"

    def code(self, node, names):
        """Expression code for node, exactly of its shape. A node used more than
        once gets a temporary, emitted (after its own temporaries) on first use."""
        if node in names:
            return names[node]
        s = getattr(self, "e_" + node.op)(node, names)
        if self.uses.get(node, 0) >= 2 and node.op not in ("var", "const", "dim", "pi"):
            tmp = f"_t{len(self.lines)}"
            self.lines.append(f"    {tmp} = {s}")
            names[node] = tmp
            return tmp
        return s

    def operand(self, node, names):
        """Code for an operand of + or *, where a broadcast form is enough."""
        if node not in names and node.op == "matmul" and len(node.args) == 2:
            a, b = node.args
            if a.op == "ones" and _rank(node) == 2:  # 𝟙vᵀ: v along the last axis
                return self.atom(b.args[0] if b.op == "T" else b, names)
            if b.op == "T" and b.args[0].op == "ones" and _rank(node) == 2:  # v𝟙ᵀ
                return f"{self.atom(a, names)}[:, None]"
        return self.atom(node, names)

    def atom(self, node, names):
        s = self.code(node, names)
        if node in names or node.op in ("var", "dim", "fn", "let", "softmax", "log_softmax", "logsumexp",
                                        "inv", "tr", "det", "logdet", "sum", "norm", "diag",
                                        "diagvec", "ones", "eye", "zero", "T"):
            return s
        if node.op == "const" and node.attr >= 0:
            return s
        return f"({s})"

    def e_var(self, n, names):
        return self.params[n.attr[0]]

    def e_const(self, n, names):
        v = n.attr
        if isinstance(v, Fraction):
            return repr(float(v)) if v.denominator != 1 else f"{v.numerator}.0"
        return repr(float(v))

    def e_dim(self, n, names):
        return f"float({self.dim(n.attr)})"

    def e_pi(self, n, names):
        return "_np.pi"

    def e_ones(self, n, names):
        return f"_np.ones({self.dim(n.attr)})"

    def e_eye(self, n, names):
        return f"_np.eye({self.dim(n.attr)})"

    def e_zero(self, n, names):
        return f"_np.zeros({self.shape_code(n)})"

    def e_add(self, n, names):
        from .ir import split_coef, scale
        out = []
        for i, t in enumerate(n.args):
            c, core = split_coef(t)
            if c < 0 and i > 0:
                body = self.e_const_like(-c) if core is None else self.operand(scale(-c, core), names)
                out.append(f" - {body}")
            else:
                body = self.operand(t, names)
                out.append(body if i == 0 else f" + {body}")
        s = "".join(out)
        if not any(_full(a, n) for a in n.args):  # only broadcasts: make the full array
            s = f"_np.broadcast_to({s}, {self.shape_code(n)}).copy()"
        return s

    def e_const_like(self, v):
        return repr(float(v))

    def e_mul(self, n, names):
        from .ir import is_ones_matrix, mul
        if not n.is_scalar and all(f.is_scalar or is_ones_matrix(f) for f in n.args):
            # a scalar times 𝟙𝟙ᵀ (or 𝟙): one filled array
            s = self.code(mul(*[f for f in n.args if f.is_scalar]), names)
            return f"_np.full({self.shape_code(n)}, {s})"
        nums, dens = [], []
        for f in n.args:
            if f.op == "pow" and f.args[1].op == "const" and f.args[1].attr < 0:
                from .ir import power, num
                dens.append(power(f.args[0], num(-f.args[1].attr)))
            else:
                nums.append(f)
        if nums and nums[0].op == "const" and nums[0].attr == -1 and len(nums) > 1:
            s = "-" + " * ".join(self.operand(f, names) for f in nums[1:])
        else:
            s = " * ".join(self.operand(f, names) for f in nums) if nums else "1.0"
        for d in dens:
            s += f" / {self.operand(d, names)}"
        if not any(_full(f, n) for f in n.args):
            s = f"_np.broadcast_to({s}, {self.shape_code(n)}).copy()"
        return s

    def e_pow(self, n, names):
        base, e = n.args
        if e.op == "const" and e.attr == Fraction(1, 2):
            return f"_np.sqrt({self.code(base, names)})"
        if e.op == "const" and e.attr == 2:
            b = self.atom(base, names)
            return f"{b} * {b}" if base.op == "var" or base in names else f"_np.square({self.code(base, names)})"
        return f"{self.atom(base, names)} ** {self.atom(e, names)}"

    def e_matmul(self, n, names):
        args = list(n.args)
        # Reductions and scalings that need no matrix product.
        first, last = args[0], args[-1]
        if first.op == "T" and first.args[0].op == "ones" and len(args) >= 2:
            rest = _sub_chain(args[1:])
            axis_sum = f"_np.sum({self.code(rest, names)}, axis=0)" if _rank(rest) == 2 else \
                f"_np.sum({self.code(rest, names)})"
            return axis_sum
        if last.op == "ones" and len(args) >= 2:
            rest = _sub_chain(args[:-1])
            if rest.op == "T" and _rank(rest) == 2:  # Gᵀ𝟙: column sums of G, read in order
                return f"_np.sum({self.code(rest.args[0], names)}, axis=0)"
            return f"_np.sum({self.code(rest, names)}, axis=-1)" if _rank(rest) == 2 else \
                f"_np.sum({self.code(rest, names)})"
        if first.op == "diag" and len(args) >= 2:
            rest = _sub_chain(args[1:])
            v = self.atom(first.args[0], names)
            return f"{v}[:, None] * {self.atom(rest, names)}" if _rank(rest) == 2 else \
                f"{v} * {self.atom(rest, names)}"
        if last.op == "diag" and len(args) >= 2:
            rest = _sub_chain(args[:-1])
            return f"{self.atom(rest, names)} * {self.atom(last.args[0], names)}"
        if len(args) == 2 and args[0].cols == 1 and args[1].rows == 1:
            a, b = args
            if a.op == "ones":
                return f"_np.broadcast_to({self.code(b.args[0] if b.op == 'T' else b, names)}, " \
                       f"{self.shape_code(n)}).copy()"
            return f"_np.outer({self.code(a, names)}, {self.code(b, names)})"
        # L X⁻¹ R where the inverse is used only here: L @ solve(X, R), no inverse formed.
        for i, f in enumerate(args):
            if f.op == "inv" and f not in names and self.uses.get(f, 0) < 2:
                X = self.code(f.args[0], names)
                left, right = args[:i], args[i + 1:]
                if right:
                    solved = f"_np.linalg.solve({X}, {self.code(_sub_chain(right), names)})"
                    return f"{self.atom(_sub_chain(left), names)} @ {solved}" if left else solved
                lt = self.code(_transpose(_sub_chain(left)), names)
                return f"_np.linalg.solve({X}.T, {lt}).T"
        # Left to right; an outer product inside a longer chain is kept exact.
        acc = self.atom(args[0], names)
        acc_node = args[0]
        for f in args[1:]:
            if acc_node.shape == (1, 1):  # a scalar so far: scale
                acc = f"({acc}) * {self.atom(f, names)}"
            elif acc_node.cols == 1 and f.rows == 1:
                acc = f"_np.outer({acc}, {self.code(f, names)})"
            else:
                acc = f"{acc} @ {self.atom(f, names)}"
            acc_node = _Shape((acc_node.rows, f.cols))
        return acc

    def e_T(self, n, names):
        x = n.args[0]
        s = self.atom(x, names)
        return f"{s}.T" if _rank(x) == 2 else s

    def e_let(self, n, names):
        return self.code(n.args[0], names)

    def e_inv(self, n, names):
        return f"_np.linalg.inv({self.code(n.args[0], names)})"

    def e_tr(self, n, names):
        x = n.args[0]
        if x.op == "matmul" and x not in names and self.uses.get(x, 0) < 2 \
                and not any(f.op == "inv" and self.uses.get(f, 0) < 2 for f in x.args):
            # tr(A B) = sum(A ⊙ Bᵀ): no product matrix is formed
            from .ir import matmul, transpose
            a = x.args[0] if len(x.args) == 2 else matmul(*x.args[:-1])
            b = x.args[-1]
            if a.op == "T":
                return f"_np.sum({self.atom(a.args[0], names)} * {self.atom(b, names)})"
            return f"_np.sum({self.atom(a, names)} * {self.atom(transpose(b), names)})"
        return f"_np.trace({self.code(x, names)})"

    def __getattr__(self, name):
        """e_<op> for the one-argument ops: their `numpy` entry in rules/ops.toml."""
        if name.startswith("e_"):
            tpl = ruletable.ops().get(name[2:], {}).get("numpy")
            if tpl is not None and "{X}" in tpl:
                return lambda n, names: self._template(tpl, "{X}", self.code(n.args[0], names))
        raise AttributeError(name)

    def _template(self, tpl, slot, arg):
        for h in HELPERS:
            if h + "(" in tpl:
                self.helpers.add(h)
        return tpl.replace(slot, arg)

    def e_softmax(self, n, names):
        from .ir import log_softmax
        ls = log_softmax(n.args[0])
        if self.uses.get(ls, 0) >= 2:
            return f"_np.exp({self.code(ls, names)})"
        return self._template(ruletable.ops()["softmax"]["numpy"], "{X}", self.code(n.args[0], names))

    def e_fn(self, n, names):
        return self._template(ruletable.elementwise()[n.attr]["numpy"], "{x}", self.code(n.args[0], names))

    # -- statements --------------------------------------------------------
    def body(self, outputs):
        """Lines computing `outputs` (nodes) as temporaries; returns (lines, names)."""
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
        for n in order:
            if n.op == "softmax":
                from .ir import log_softmax
                ls = log_softmax(n.args[0])
                if ls in uses:
                    uses[ls] += 2
        for out in outputs:
            uses[out] = uses.get(out, 0) + 2
        self.uses, self.lines = uses, []
        names = {}
        for out in outputs:
            self.code(out, names)
        return self.lines, names

    def finish(self, node, names):
        s = self.code(node, names)
        if _rank(node) == 0:
            return f"float({s})"
        if node.op == "var":
            return f"_np.array({s}, dtype=float)"  # never hand back the caller's own array
        return s


class _Shape:
    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = shape

    @property
    def rows(self):
        return self.shape[0]

    @property
    def cols(self):
        return self.shape[1]


def _is_broadcast(node):
    """𝟙vᵀ or v𝟙ᵀ: emitted inside sums and products as the bare vector."""
    if node.op != "matmul" or len(node.args) != 2 or _rank(node) != 2:
        return False
    a, b = node.args
    return a.op == "ones" or (b.op == "T" and b.args[0].op == "ones")


def _full(operand, node):
    """Is operand emitted as an array of node's full shape?"""
    return operand.shape == node.shape and not _is_broadcast(operand)


def _transpose(x):
    from .ir import transpose
    return transpose(x)


def _sub_chain(args):
    from .ir import matmul
    return args[0] if len(args) == 1 else matmul(*args)


def module_source(problem, grads, header=None):
    """The --format numpy module for problem and {name: gradient node}."""
    em = Emitter(problem)
    params = ", ".join(em.params[v] for v in problem.variables)
    sig = f"*, {params}" if params else ""
    wrt = list(grads)
    v_lines, v_names = em.body([problem.root])
    v_ret = em.finish(problem.root, v_names)
    g_nodes = [grads[w] for w in wrt]
    all_lines, all_names = em.body([problem.root] + g_nodes)
    ret_v = em.finish(problem.root, all_names)
    rets = [em.finish(g, all_names) for g in g_nodes]
    g_ret = rets[0] if len(rets) == 1 else "(" + ", ".join(rets) + ("," if len(rets) == 1 else "") + ")"
    out = _head(problem, em, f"the gradient with respect to {', '.join(wrt)}" if wrt else "")
    out.append(f"def value({sig}):")
    out.extend(v_lines)
    out.append(f"    return {v_ret}")
    out.append("")
    out.append("")
    out.append(f"def value_and_gradient({sig}):")
    out.append('    """The backprop kernel: value and gradient, sharing the forward pass."""')
    out.extend(all_lines)
    out.append(f"    return {ret_v}, {g_ret}")
    out.append("")
    out.append("")
    out.append("_value_and_gradient = value_and_gradient  # for gradient(): a variable may shadow the name")
    out.append("")
    out.append("")
    out.append(f"def gradient({sig}):")
    out.append(f"    return _value_and_gradient({', '.join(f'{p}={p}' for p in em.params.values())})[1]")
    out.append("")
    return "\n".join(out)


def _head(problem, em, what):
    """Docstring, imports and helpers. The user's text enters only as a repr()."""
    out = ['"""Generated by matdiff: value(**arrays)' + (f" and {what}" if what else "") + '."""',
           "import numpy as _np", "", f"_EXPRESSION = {problem.src.strip()!r}", ""]
    for name in sorted(em.helpers):
        out.append("")
        out.append(HELPERS[name])
    out.append("")
    return out


def compile_module(source):
    """Execute generated (never user-written) code in a fresh namespace."""
    namespace = {"__name__": "matdiff_generated"}
    exec(compile(source, "<matdiff-generated>", "exec"), namespace)
    return namespace


def higher_module_source(h):
    """The --format numpy module of a Hessian / Jacobian (higher.Higher)."""
    from types import SimpleNamespace
    problem = h.problem
    dname = h.direction.attr[0]
    ext = SimpleNamespace(variables={**problem.variables, dname: h.direction}, root=problem.root)
    em = Emitter(ext)
    user = [em.params[v] for v in problem.variables]
    sig = f"*, {', '.join(user)}" if user else ""
    call = ", ".join(f"{p}={p}" for p in user)
    v_lines, v_names = em.body([problem.root])
    v_ret = em.finish(problem.root, v_names)
    fn = h.kind
    body = []
    if h.matrix is not None:
        lines, names = em.body([h.matrix])
        body.append(f"def {fn}({sig}):")
        body.extend(lines)
        body.append(f"    return _np.atleast_2d(_np.asarray({em.finish(h.matrix, names)}, dtype=float))")
    else:
        d_lines, d_names = em.body([h.dF])
        x = em.params[h.wrt] if h.wrt in em.params else em.params[dname]
        body.append(f"def _directional({em.params[dname]}, {sig}):")
        body.extend(d_lines)
        body.append(f"    return {em.finish(h.dF, d_names)}")
        body.append("")
        body.append("")
        body.append(f"def {fn}({sig}):")
        body.append(f"    _shape = _np.shape({x})")
        body.append("    _size = int(_np.prod(_shape))")
        body.append("    _cols = []")
        body.append("    for _k in range(_size):")
        body.append("        _e = _np.zeros(_size)")
        body.append("        _e[_k] = 1.0")
        body.append(f"        _col = _directional(_e.reshape(_shape, order='F'), {call})")
        body.append("        _cols.append(_np.ravel(_np.asarray(_col, dtype=float), order='F'))")
        body.append("    return _np.stack(_cols, axis=1)")
    out = _head(problem, em, f"the {fn} with respect to {h.wrt}"
                + (" (vec order: column stacking)" if h.x.cols != 1 else ""))
    out.append(f"def value({sig}):")
    out.extend(v_lines)
    out.append(f"    return {v_ret}")
    out.append("")
    out.append("")
    out.extend(body)
    out.append("")
    return "\n".join(out)
