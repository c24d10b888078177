"""IR -> SymPy matrix expressions (imported lazily: only `Gradient.sympy` needs it).

Matrix and vector variables become MatrixSymbols (dimension names become
Symbols), scalar variables plain Symbols; the algebra maps onto MatAdd, MatMul,
HadamardProduct, HadamardPower, Transpose, Inverse, Trace, Determinant,
Identity, OneMatrix and ZeroMatrix. Every other op is its entry's: the
`sympy` template of rules/ops.toml, or the function its `sympy_fn` names, in
matdiff/ops/sympy_code.py, which holds the small classes for what SymPy has
none for (softmax, log_softmax, logsumexp, diag, sum, norm, vec, unvec).
Element-wise functions are `Elementwise` here, their scalar values from the
`sympy` entry of rules/elementwise.toml. The classes print by name and
evaluate entry-wise: substitute explicit matrices for the symbols, then
`.doit()` gives numbers::

    e = g.sympy
    e.subs({X: ImmutableMatrix(...), W: ImmutableMatrix(...)}).doit()

A scalar node is a scalar SymPy expression, except that a whole 1×1 matrix
product (xᵀAx) stays a 1×1 MatMul; inside scalar arithmetic it is wrapped in
Trace (tr of a 1×1 matrix is its entry). logdet X is log|det X|.
"""

import re

import sympy as sp
from sympy.core.symbol import Str
from sympy.matrices.expressions.hadamard import HadamardPower as _HadamardPower

from .ops import registry, sympy_code
from .ops.sympy_code import Named, explicit as _explicit, int_shape as _int_shape
# the ops' classes, importable from here as before
from .ops.sympy_code import (Softmax, LogSoftmax, LogSumExp, Diag, DiagVec, Vec,  # noqa: F401
                             Unvec, Sum, Norm, LogSumExpScalar)
from .errors import MatdiffError

__all__ = ["to_sympy"]


# ----------------------------------------------------------------------------
# Scalar element-wise functions


def _scalar_function(name, value):
    """A scalar Function `name` that evaluates on numbers with `value` (of the
    argument and the function's parameters, if any)."""
    def eval(cls, x, *params):
        if x.is_Number and all(p.is_Number for p in params):
            return value(x, *params)
    return type(name, (sp.Function,), {"eval": classmethod(eval)})


_SCALAR_FNS = {}  # (name, its sympy entry) -> the SymPy function


def scalar_fn(name):
    """The SymPy scalar function of an element-wise function, from its `sympy`
    entry (a data-defined function without one stays an undefined Function)."""
    text = registry.elementwise().get(name, {}).get("sympy")
    f = _SCALAR_FNS.get((name, text))
    if f is None:
        f = _SCALAR_FNS[(name, text)] = _from_rule(name, text)
    return f


def _from_rule(name, text):
    """A function from the `sympy` entry of the rule table (our own data, not
    user text): a SymPy function's name, or the value in terms of x."""
    if text is None:
        return sp.Function(name)
    if text.isidentifier() and callable(getattr(sp, text, None)):
        return getattr(sp, text)
    x = sp.Symbol("x")
    params = [sp.Symbol(p) for p in registry.params(name)]
    body = sp.sympify(text, locals={"x": x, **{str(p): p for p in params}})
    return _scalar_function(name, lambda v, *a: body.subs({x: v, **dict(zip(params, a))}))


# ----------------------------------------------------------------------------
# Matrix-valued classes


class Elementwise(Named, sp.MatrixExpr):
    """f(X) (or f(X, α…) with scalar parameters) applied entry by entry; LaTeX
    from the function's `latex` entry ({x} its argument, {alpha} a parameter)."""

    def __new__(cls, name, arg, *params):
        return sp.Basic.__new__(cls, Str(name) if isinstance(name, str) else name, arg,
                                *map(sp.sympify, params))

    fname = property(lambda self: self.args[0].name)
    margs = property(lambda self: self.args[1:])
    shape = property(lambda self: self.args[1].shape)

    def _latex(self, printer):
        entry = registry.elementwise().get(self.fname, {})
        form = entry.get("latex")
        if form is None:
            return super()._latex(printer)
        slots = {"x": printer._print(self.args[1])}
        slots.update(zip(registry.params(self.fname), map(printer._print, self.args[2:])))
        return re.sub(r"\{(\w+)\}", lambda m: slots.get(m[1], m[0]), form)

    def _entry(self, i, j, **kw):
        return scalar_fn(self.fname)(self.args[1][i, j], *self.args[2:])

    def doit(self, **hints):
        arg = self.args[1].doit(**hints) if hints.get("deep", True) else self.args[1]
        params = self.args[2:]
        if _explicit(arg):
            f = scalar_fn(self.fname)
            return sp.ImmutableMatrix(arg.applyfunc(lambda v: f(v, *params)))
        return self.func(self.args[0], arg, *params)


# SymPy's own classes, made to turn explicit on doit() once their shape is numeric
# (plain doit leaves `M + I`, `M + 1` and HadamardPower(M, 2) unevaluated).


class Ones(sp.OneMatrix):
    def doit(self, **hints):
        return sp.ImmutableMatrix.ones(*self.shape) if _int_shape(self.shape) else self

    def _eval_transpose(self):
        return Ones(self.cols, self.rows)


class Eye(sp.Identity):
    def doit(self, **hints):
        return sp.ImmutableMatrix.eye(self.rows) if _int_shape(self.shape) else self


class Zero(sp.ZeroMatrix):
    def doit(self, **hints):
        return sp.ImmutableMatrix.zeros(*self.shape) if _int_shape(self.shape) else self

    def _eval_transpose(self):
        return Zero(self.cols, self.rows)


class HadamardPower(_HadamardPower):
    def doit(self, **hints):
        base, e = (a.doit(**hints) for a in self.args) if hints.get("deep", True) else self.args
        if _explicit(base) and not isinstance(e, sp.MatrixBase):
            return sp.ImmutableMatrix(base.applyfunc(lambda v: v ** e))
        return self.func(base, e)


# ----------------------------------------------------------------------------
# The conversion


def _dim(d):
    from .dims import factors
    if isinstance(d, int):
        return sp.Integer(d)
    return sp.Mul(*[sp.Integer(f) if isinstance(f, int) else sp.Symbol(str(f))
                    for f in factors(d)])  # m·n: a product of symbols


def _const(v):
    return sp.Float(v) if isinstance(v, float) else sp.Rational(v.numerator, v.denominator)


class _Converter:
    def __init__(self):
        self.memo = {}
        self.converters = {}  # op name -> its converting function

    def __call__(self, node):
        out = self.memo.get(id(node))
        if out is None:
            convert = self.converters.get(node.op)
            if convert is None:
                convert = self.converters[node.op] = self._converter_of(node.op)
            out = self.memo[id(node)] = convert(node)
        return out

    def _converter_of(self, op_name):
        """op_<op> for leaves and the IR's grammar; any other op by its entry:
        the function `sympy_fn` names, or its `sympy` template."""
        method = getattr(self, "op_" + op_name, None)
        if method is not None:
            return method
        op = registry.op(op_name)
        if op is None:
            raise MatdiffError(f"no SymPy form for the op {op_name!r}: "
                               f"it has no entry in the rules")
        fname = op.get("sympy_fn")
        if fname is not None:
            f = getattr(sympy_code, fname, None)
            if f is None:
                raise MatdiffError(f"rules name the SymPy function {fname!r}, which "
                                   f"matdiff/ops/sympy_code.py does not define")
            return lambda n: f(self, n)
        text = op.get("sympy")
        if text is None:
            raise MatdiffError(f"the op {op_name!r} has no SymPy form: give its entry a "
                               f"`sympy` template or a `sympy_fn`")
        return lambda n: self.template(text, n)

    def template(self, text, n):
        """n from its op's `sympy` template: the arguments by their rule names,
        {shape} n's (rows, cols), {rows} and {cols} its sizes."""
        names = registry.arg_names(n)[:len(n.args)]
        f = sympy_code.template(text, tuple(names) + ("shape", "rows", "cols"))
        shape = self.shape(n)
        return f(*[self(a) for a in n.args], shape, *shape)

    def scalar(self, node):
        """node (a scalar) as a scalar SymPy expression."""
        out = self(node)
        return sp.Trace(out) if isinstance(out, sp.MatrixExpr) else out

    def shape(self, node):
        return tuple(_dim(d) for d in node.shape)

    # leaves
    def op_var(self, n):
        name = n.attr[0]
        if n.is_scalar:
            return sp.Symbol(name)
        return sp.MatrixSymbol(name, *self.shape(n))

    def op_const(self, n):
        return _const(n.attr)

    def op_dim(self, n):
        return sp.Symbol(str(n.attr))

    def op_pi(self, n):
        return sp.pi

    def op_ones(self, n):
        return Ones(_dim(n.attr), 1)

    def op_eye(self, n):
        return Eye(_dim(n.attr))

    def op_zero(self, n):
        return Zero(*self.shape(n))

    # algebra
    def op_add(self, n):
        if n.is_scalar:
            return sp.Add(*[self.scalar(a) for a in n.args])
        terms = []
        for a in n.args:
            if a.is_scalar:  # a scalar term broadcasts over the sum's shape
                s = self.scalar(a)
                ones = Ones(*self.shape(n))
                terms.append(ones if s == 1 else sp.MatMul(s, ones))
            else:
                terms.append(self(a))
        return sp.MatAdd(*terms)

    def op_mul(self, n):
        scalars = [self.scalar(a) for a in n.args if a.is_scalar]
        mats = [self(a) for a in n.args if not a.is_scalar]
        coef = sp.Mul(*scalars)
        if n.is_scalar:
            return coef
        core = mats[0] if len(mats) == 1 else sp.HadamardProduct(*mats)
        if coef == 1:
            return core
        if isinstance(core, sp.MatMul) and not coef.could_extract_minus_sign():
            return sp.MatMul(coef, *core.args)  # 2*X.T*Y; SymPy's LaTeX drops parentheses
        return sp.MatMul(coef, core)            # in a flat -X.T*(A + B), so that one nests

    def op_pow(self, n):
        base, e = n.args
        if base.is_scalar:
            return sp.Pow(self.scalar(base), self.scalar(e))
        return HadamardPower(self(base), self.scalar(e))

    def op_matmul(self, n):
        return sp.MatMul(*[self(a) for a in n.args])

    def op_T(self, n):
        return sp.Transpose(self(n.args[0]))

    def op_fn(self, n):
        a, *params = n.args
        params = [self.scalar(p) for p in params]
        if a.is_scalar:
            return scalar_fn(n.attr)(self.scalar(a), *params)
        return Elementwise(n.attr, self(a), *params)

    def op_let(self, n):
        return self(n.args[0])  # a named intermediate: its definition


def to_sympy(node):
    """The SymPy expression of an IR node."""
    return _Converter()(node)


def to_sympy_shared(roots, shared, order):
    """([SymPy expression of each root], [(symbol, expression)]) in the manner
    of sympy.cse: each node of `shared` ({node: name}, in dependency `order`)
    becomes a symbol of its shape (a MatrixSymbol, or a Symbol for a scalar),
    defined once and used by name in the later definitions and the roots."""
    conv = _Converter()
    pairs = []
    for n in order:
        if n in shared:
            expr = conv(n)
            r, c = n.shape
            sym = sp.Symbol(shared[n]) if (r, c) == (1, 1) else \
                sp.MatrixSymbol(shared[n], _dim(r), _dim(c))
            pairs.append((sym, expr))
            conv.memo[id(n)] = sym
    return [conv(r) for r in roots], pairs
