"""SymPy forms of the ops that SymPy has no class for, and the functions an
entry names by `sympy_fn` where its `sympy` template does not do.

An op's `sympy` template (rules/ops.toml) is a Python expression over the
names of this module (its classes: Softmax, Diag, Vec, Sum of the entries,
Norm, …) and then SymPy's (Trace, Inverse, KroneckerProduct, log, …), with
the arguments in slots by their rule names ({X}, {A}, {B}) and {shape}, the
node's (rows, cols); `template` compiles it once. A `sympy_fn` function takes
the converter (matdiff.sympy_out) and the IR node.

The classes print by name (str, LaTeX, pretty) and evaluate entry-wise once
their arguments are explicit matrices (`.subs(...).doit()`).
"""

import re
from functools import lru_cache

import sympy as sp
from sympy.printing.pretty.stringpict import prettyForm

__all__ = ["Softmax", "LogSoftmax", "LogSumExp", "Diag", "DiagVec", "Vec", "Unvec",
           "Sum", "Norm", "LogSumExpScalar"]


def explicit(x):
    return isinstance(x, sp.MatrixBase)


def int_shape(shape):
    return all(isinstance(d, (int, sp.Integer)) for d in shape)


def latex_call(name, inner):
    r"""\operatorname{name}\left(inner\right), the LaTeX of a function by name."""
    return r"\operatorname{%s}\left(%s\right)" % (name.replace("_", r"\_"), inner)


class Named:
    """Prints as name(args...) in str, LaTeX and pretty form (`latex_form`:
    a LaTeX pattern of its own, %s the arguments)."""

    latex_form = None

    def _sympystr(self, printer):
        return "%s(%s)" % (self.fname, ", ".join(printer._print(a) for a in self.margs))

    def _latex(self, printer):
        inner = ", ".join(printer._print(a) for a in self.margs)
        return self.latex_form % inner if self.latex_form else latex_call(self.fname, inner)

    def _pretty(self, printer):
        inner = prettyForm(*printer._print(self.margs[0]).parens())
        return prettyForm(*inner.left(self.fname))


# ----------------------------------------------------------------------------
# Matrix-valued classes


class MatFn(Named, sp.MatrixExpr):
    """A one-argument matrix function; subclasses give fname, shape and _value."""

    def __new__(cls, arg):
        return sp.Basic.__new__(cls, arg)

    margs = property(lambda self: self.args)

    def doit(self, **hints):
        arg = self.args[0].doit(**hints) if hints.get("deep", True) else self.args[0]
        if explicit(arg):
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


class Softmax(MatFn):
    fname = "softmax"
    shape = property(lambda self: self.args[0].shape)

    def _value(self, m):
        return sp.Matrix(m.rows, m.cols, [sp.exp(v) for v in _rowwise_log_softmax(m)])


class LogSoftmax(MatFn):
    fname = "log_softmax"
    shape = property(lambda self: self.args[0].shape)

    def _value(self, m):
        return sp.Matrix(m.rows, m.cols, _rowwise_log_softmax(m))


class LogSumExp(MatFn):
    """Row-wise logsumexp of an N×C matrix: an N-vector (a vector's is scalar, below)."""
    fname = "logsumexp"
    shape = property(lambda self: (self.args[0].shape[0], sp.Integer(1)))

    def _value(self, m):
        return sp.Matrix([_lse([m[k] for k in g]) for g in _rows(m)])


class Diag(MatFn):
    """Vector -> diagonal matrix."""
    fname = "diag"
    shape = property(lambda self: (self.args[0].shape[0], self.args[0].shape[0]))

    def _value(self, m):
        return sp.diag(*list(m))


class DiagVec(MatFn):
    """Square matrix -> the vector of its diagonal (prints as diag, like the input language)."""
    fname = "diag"
    shape = property(lambda self: (self.args[0].shape[0], sp.Integer(1)))

    def _value(self, m):
        return sp.Matrix([m[i, i] for i in range(m.rows)])


class Vec(MatFn):
    """Column stacking: the m·n-vector of an m×n matrix."""
    fname = "vec"
    shape = property(lambda self: (self.args[0].shape[0] * self.args[0].shape[1], sp.Integer(1)))

    def _value(self, m):
        return sp.Matrix([m[i, j] for j in range(m.cols) for i in range(m.rows)])


class Unvec(Named, sp.MatrixExpr):
    """The inverse of vec: the m×n matrix whose columns are v's consecutive m-chunks."""
    fname = "unvec"

    def __new__(cls, arg, m, n):
        return sp.Basic.__new__(cls, arg, sp.sympify(m), sp.sympify(n))

    margs = property(lambda self: self.args)
    shape = property(lambda self: (self.args[1], self.args[2]))

    def doit(self, **hints):
        arg = self.args[0].doit(**hints) if hints.get("deep", True) else self.args[0]
        m, n = self.args[1:]
        if explicit(arg) and int_shape((m, n)):
            return sp.ImmutableMatrix(int(m), int(n), lambda i, j: arg[j * int(m) + i, 0])
        return self.func(arg, m, n)

    def _entry(self, i, j, **kw):
        return self.args[0][j * self.args[1] + i, 0]


# ----------------------------------------------------------------------------
# Scalar-valued classes of matrices


def matrix_function(name, value, latex_form=None):
    """A scalar Function of one matrix argument, evaluated once the argument is explicit."""
    def eval(cls, x):
        if explicit(x):
            return value(x)

    def _latex(self, printer, exp=None):  # exp: the printer asks for sum(X)^{2}
        inner = printer._print(self.args[0])
        out = latex_form % inner if latex_form else latex_call(name, inner)
        return out if exp is None else r"%s^{%s}" % (out, exp)

    return type(name, (sp.Function,), {
        "eval": classmethod(eval),
        "_eval_is_commutative": lambda self: True,  # a scalar, though its argument is a matrix
        "_latex": _latex,
    })


Sum = matrix_function("sum", lambda m: sum(m))
Norm = matrix_function("norm", lambda m: sp.sqrt(sum(v ** 2 for v in m)), r"\left\|%s\right\|")
LogSumExpScalar = matrix_function("logsumexp", lambda m: _lse(list(m)))


# ----------------------------------------------------------------------------
# Named functions (`sympy_fn`): (converter, node) -> SymPy expression


def softmax(conv, n):
    """softmax of a scalar is 1."""
    return sp.Integer(1) if n.is_scalar else Softmax(conv(n.args[0]))


def log_softmax(conv, n):
    """log_softmax of a scalar is 0."""
    return sp.Integer(0) if n.is_scalar else LogSoftmax(conv(n.args[0]))


def logsumexp(conv, n):
    """Of a scalar: itself; of a vector: a scalar; of a matrix: its rows'."""
    (a,) = n.args
    if a.is_scalar:
        return conv.scalar(a)
    if n.is_scalar:
        return LogSumExpScalar(conv(a))
    return LogSumExp(conv(a))


# ----------------------------------------------------------------------------
# Templates


@lru_cache(maxsize=None)
def template(text, slots):
    """The `sympy` template `text` (our rule data, never user text) compiled
    once into a function of its slots, in the order of `slots`."""
    body = re.sub(r"\{(\w+)\}", lambda m: "_slot_" + m[1], text)
    namespace = {**vars(sp), **{name: globals()[name] for name in __all__}}
    return eval(compile(f"lambda {', '.join('_slot_' + s for s in slots)}: {body}",
                        f"<sympy template {text!r}>", "eval"), namespace)
