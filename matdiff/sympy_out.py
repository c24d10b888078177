"""IR -> SymPy matrix expressions (imported lazily: only `Gradient.sympy` needs it).

Matrix and vector variables become MatrixSymbols (dimension names become
Symbols), scalar variables plain Symbols; the algebra maps onto MatAdd, MatMul,
HadamardProduct, HadamardPower, Transpose, Inverse, Trace, Determinant,
Identity, OneMatrix and ZeroMatrix. What SymPy has no class for (element-wise
functions, softmax, log_softmax, logsumexp, diag, sum, norm) gets a small class
here that prints by name and evaluates entry-wise: substitute explicit
matrices for the symbols, then `.doit()` gives numbers::

    e = g.sympy
    e.subs({X: ImmutableMatrix(...), W: ImmutableMatrix(...)}).doit()

A scalar node is a scalar SymPy expression, except that a whole 1×1 matrix
product (xᵀAx) stays a 1×1 MatMul; inside scalar arithmetic it is wrapped in
Trace (tr of a 1×1 matrix is its entry). logdet X is log|det X|.
"""

import sympy as sp
from sympy.core.symbol import Str
from sympy.matrices.expressions.hadamard import HadamardPower as _HadamardPower
from sympy.printing.pretty.stringpict import prettyForm

__all__ = ["to_sympy"]


def _explicit(x):
    return isinstance(x, sp.MatrixBase)


def _int_shape(shape):
    return all(isinstance(d, (int, sp.Integer)) for d in shape)


# ----------------------------------------------------------------------------
# Scalar element-wise functions


def _scalar_function(name, value):
    """A scalar Function `name` that evaluates on numbers with `value` (of the
    argument and the function's parameters, if any)."""
    def eval(cls, x, *params):
        if x.is_Number and all(p.is_Number for p in params):
            return value(x, *params)
    return type(name, (sp.Function,), {"eval": classmethod(eval)})


sigmoid = _scalar_function("sigmoid", lambda x: 1 / (1 + sp.exp(-x)))
relu = _scalar_function("relu", lambda x: sp.Max(0, x))
softplus = _scalar_function("softplus", lambda x: sp.log(1 + sp.exp(x)))
step = _scalar_function("step", lambda x: sp.Integer(1) if x > 0 else sp.Integer(0))

_SCALAR_FNS = {"exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos, "tanh": sp.tanh,
               "sqrt": sp.sqrt, "abs": sp.Abs, "sign": sp.sign, "sigmoid": sigmoid,
               "relu": relu, "softplus": softplus, "step": step}

_LATEX_NAMES = {"exp": r"\exp", "log": r"\log", "sin": r"\sin", "cos": r"\cos",
                "tanh": r"\tanh", "sigmoid": r"\sigma"}


def scalar_fn(name):
    """The SymPy scalar function for an element-wise function name (a data-defined
    function without a SymPy counterpart stays an undefined Function)."""
    f = _SCALAR_FNS.get(name)
    if f is None:
        f = _SCALAR_FNS[name] = _from_rule(name)
    return f


def _from_rule(name):
    """A function from the `sympy` entry of the rule table (our own data, not
    user text): a SymPy function's name, or the value in terms of x."""
    from .ops import registry
    text = registry.elementwise().get(name, {}).get("sympy")
    if text is None:
        return sp.Function(name)
    if text.isidentifier() and isinstance(getattr(sp, text, None), type):
        return getattr(sp, text)
    x = sp.Symbol("x")
    params = [sp.Symbol(p) for p in registry.params(name)]
    body = sp.sympify(text, locals={"x": x, **{str(p): p for p in params}})
    return _scalar_function(name, lambda v, *a: body.subs({x: v, **dict(zip(params, a))}))


def _latex_call(name, inner):
    if name == "sqrt":
        return r"\sqrt{%s}" % inner
    if name == "abs":
        return r"\left|%s\right|" % inner
    if name == "norm":
        return r"\left\|%s\right\|" % inner
    op = _LATEX_NAMES.get(name, r"\operatorname{%s}" % name.replace("_", r"\_"))
    return r"%s\left(%s\right)" % (op, inner)


# ----------------------------------------------------------------------------
# Matrix-valued classes


class _Named:
    """Prints as name(args...) in str, LaTeX and pretty form."""

    def _sympystr(self, printer):
        return "%s(%s)" % (self.fname, ", ".join(printer._print(a) for a in self.margs))

    def _latex(self, printer):
        return _latex_call(self.fname, ", ".join(printer._print(a) for a in self.margs))

    def _pretty(self, printer):
        inner = prettyForm(*printer._print(self.margs[0]).parens())
        return prettyForm(*inner.left(self.fname))


class Elementwise(_Named, sp.MatrixExpr):
    """f(X) (or f(X, α…) with scalar parameters) applied entry by entry."""

    def __new__(cls, name, arg, *params):
        return sp.Basic.__new__(cls, Str(name) if isinstance(name, str) else name, arg,
                                *map(sp.sympify, params))

    fname = property(lambda self: self.args[0].name)
    margs = property(lambda self: self.args[1:])
    shape = property(lambda self: self.args[1].shape)

    def _entry(self, i, j, **kw):
        return scalar_fn(self.fname)(self.args[1][i, j], *self.args[2:])

    def doit(self, **hints):
        arg = self.args[1].doit(**hints) if hints.get("deep", True) else self.args[1]
        params = self.args[2:]
        if _explicit(arg):
            f = scalar_fn(self.fname)
            return sp.ImmutableMatrix(arg.applyfunc(lambda v: f(v, *params)))
        return self.func(self.args[0], arg, *params)


class _MatFn(_Named, sp.MatrixExpr):
    """A one-argument matrix function; subclasses give fname, shape and _value."""

    def __new__(cls, arg):
        return sp.Basic.__new__(cls, arg)

    margs = property(lambda self: self.args)

    def doit(self, **hints):
        arg = self.args[0].doit(**hints) if hints.get("deep", True) else self.args[0]
        if _explicit(arg):
            return sp.ImmutableMatrix(self._value(sp.Matrix(arg)))
        return self.func(arg)

    def _entry(self, i, j, **kw):
        return self.func(self.args[0].as_explicit()).doit()[i, j]


def _rows(m):
    """Row-wise for a matrix, over all entries for a vector: a list of index groups."""
    r, c = m.shape
    if r == 1 or c == 1:
        return [list(range(r * c))]
    return [[i * c + j for j in range(c)] for i in range(r)]


def _lse(vals):
    return sp.log(sum(sp.exp(v) for v in vals))


def _rowwise_log_softmax(m):
    """log softmax of each row of an explicit matrix (each column vector: its entries)."""
    out = list(m)
    for g in _rows(m):
        lse = _lse([m[k] for k in g])
        for k in g:
            out[k] = m[k] - lse
    return out


class Softmax(_MatFn):
    fname = "softmax"
    shape = property(lambda self: self.args[0].shape)

    def _value(self, m):
        return sp.Matrix(m.rows, m.cols, [sp.exp(v) for v in _rowwise_log_softmax(m)])


class LogSoftmax(_MatFn):
    fname = "log_softmax"
    shape = property(lambda self: self.args[0].shape)

    def _value(self, m):
        return sp.Matrix(m.rows, m.cols, _rowwise_log_softmax(m))


class LogSumExp(_MatFn):
    """Row-wise logsumexp of an N×C matrix: an N-vector (a vector's is scalar, below)."""
    fname = "logsumexp"
    shape = property(lambda self: (self.args[0].shape[0], sp.Integer(1)))

    def _value(self, m):
        return sp.Matrix([_lse([m[k] for k in g]) for g in _rows(m)])


class Diag(_MatFn):
    """Vector -> diagonal matrix."""
    fname = "diag"
    shape = property(lambda self: (self.args[0].shape[0], self.args[0].shape[0]))

    def _value(self, m):
        return sp.diag(*list(m))


class DiagVec(_MatFn):
    """Square matrix -> the vector of its diagonal (prints as diag, like the input language)."""
    fname = "diag"
    shape = property(lambda self: (self.args[0].shape[0], sp.Integer(1)))

    def _value(self, m):
        return sp.Matrix([m[i, i] for i in range(m.rows)])


class Vec(_MatFn):
    """Column stacking: the m·n-vector of an m×n matrix."""
    fname = "vec"
    shape = property(lambda self: (self.args[0].shape[0] * self.args[0].shape[1], sp.Integer(1)))

    def _value(self, m):
        return sp.Matrix([m[i, j] for j in range(m.cols) for i in range(m.rows)])


class Unvec(_Named, sp.MatrixExpr):
    """The inverse of vec: the m×n matrix whose columns are v's consecutive m-chunks."""
    fname = "unvec"

    def __new__(cls, arg, m, n):
        return sp.Basic.__new__(cls, arg, sp.sympify(m), sp.sympify(n))

    margs = property(lambda self: self.args)
    shape = property(lambda self: (self.args[1], self.args[2]))

    def doit(self, **hints):
        arg = self.args[0].doit(**hints) if hints.get("deep", True) else self.args[0]
        m, n = self.args[1:]
        if _explicit(arg) and _int_shape((m, n)):
            return sp.ImmutableMatrix(int(m), int(n), lambda i, j: arg[j * int(m) + i, 0])
        return self.func(arg, m, n)

    def _entry(self, i, j, **kw):
        return self.args[0][j * self.args[1] + i, 0]


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
# Scalar-valued classes of matrices


def _matrix_function(name, value):
    """A scalar Function of one matrix argument, evaluated once the argument is explicit."""
    def eval(cls, x):
        if _explicit(x):
            return value(x)

    def _latex(self, printer, exp=None):  # exp: the printer asks for sum(X)^{2}
        out = _latex_call(name, printer._print(self.args[0]))
        return out if exp is None else r"%s^{%s}" % (out, exp)

    return type(name, (sp.Function,), {
        "eval": classmethod(eval),
        "_eval_is_commutative": lambda self: True,  # a scalar, though its argument is a matrix
        "_latex": _latex,
    })


Sum = _matrix_function("sum", lambda m: sum(m))
Norm = _matrix_function("norm", lambda m: sp.sqrt(sum(v ** 2 for v in m)))
LogSumExpScalar = _matrix_function("logsumexp", lambda m: _lse(list(m)))


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

    def __call__(self, node):
        out = self.memo.get(id(node))
        if out is None:
            out = self.memo[id(node)] = getattr(self, "op_" + node.op)(node)
        return out

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

    def op_inv(self, n):
        return sp.Inverse(self(n.args[0]))

    def op_tr(self, n):
        return sp.Trace(self(n.args[0]))

    def op_det(self, n):
        return sp.Determinant(self(n.args[0]))

    def op_logdet(self, n):
        return sp.log(sp.Abs(sp.Determinant(self(n.args[0]))))

    def op_sum(self, n):
        return Sum(self(n.args[0]))

    def op_norm(self, n):
        return Norm(self(n.args[0]))

    def op_diag(self, n):
        return Diag(self(n.args[0]))

    def op_diagvec(self, n):
        return DiagVec(self(n.args[0]))

    def op_fn(self, n):
        a, *params = n.args
        params = [self.scalar(p) for p in params]
        if a.is_scalar:
            return scalar_fn(n.attr)(self.scalar(a), *params)
        return Elementwise(n.attr, self(a), *params)

    def op_let(self, n):
        return self(n.args[0])  # a named intermediate: its definition

    def op_vec(self, n):
        return Vec(self(n.args[0]))

    def op_unvec(self, n):
        return Unvec(self(n.args[0]), *self.shape(n))

    def op_kron(self, n):
        return sp.KroneckerProduct(*[self(a) for a in n.args])

    def op_softmax(self, n):
        return sp.Integer(1) if n.is_scalar else Softmax(self(n.args[0]))

    def op_log_softmax(self, n):
        return sp.Integer(0) if n.is_scalar else LogSoftmax(self(n.args[0]))

    def op_logsumexp(self, n):
        (a,) = n.args
        if a.is_scalar:
            return self.scalar(a)
        if n.is_scalar:
            return LogSumExpScalar(self(a))
        return LogSumExp(self(a))


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
