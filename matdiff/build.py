"""AST -> IR. Used for user input (after shape inference) and for rule templates.

Decisions (scaling or matrix product, broadcasting, matrix or element-wise
power, diag of a vector or of a matrix) are taken from the IR shapes, which
inference has already made consistent.
"""

from fractions import Fraction

from . import ir
from .dims import product
from .errors import NameError_, ShapeError, DerivativeError
from .ops import builders, registry, syntax
from .shapes import axis_reduction_axis, integer_exponent, shape_from_ir


class _Ones:
    """A template's 𝟙 whose length comes from its neighbour in a product."""

    def __init__(self, transposed=False):
        self.transposed = transposed


class Builder:
    def __init__(self, env, functions, src="", sized=None, kept=()):
        self.env = env  # name -> IR node
        self.functions = functions  # canonical element-wise names
        self.src = src
        self.sized = sized or {}  # ast -> resolved dim (user input)
        # ast of the N×1 results of axis reductions (shapes.Inference.kept):
        # they broadcast along their size-1 axis, not as vectors
        self.kept = kept

    def build(self, ast):
        out = self.node(ast)
        if isinstance(out, _Ones):
            raise ShapeError("cannot tell the length of 𝟙 here", self.src, ast.span)
        return out

    def node(self, ast):
        method = getattr(self, "b_" + ast.kind, None)
        # an op written as an operator (A ⊗ B, X⁻¹) is its own AST kind
        return method(ast) if method is not None else self.apply(ast, ast.kind)

    def b_paren(self, ast):
        return self.node(ast.args[0])

    def b_name(self, ast):
        try:
            return self.env[ast.value]
        except KeyError:
            raise NameError_(f"unknown name {ast.value!r}", self.src, ast.span) from None

    def b_num(self, ast):
        text = ast.value
        if text.isdigit():
            return ir.num(int(text))
        v = float(text)
        if v.is_integer():
            return ir.num(int(v))
        return ir.num(Fraction(text) if len(text) < 12 and "e" not in text.lower() else v)

    def b_ones(self, ast):
        d = self.sized.get(ast)
        if d is None:
            if ast.value is not None:
                return ir.ones(int(ast.value) if ast.value.isdigit() else ast.value)
            return _Ones()
        return ir.ones(d)

    def b_eye(self, ast):
        d = self.sized.get(ast)
        if d is None:
            if ast.value is None:
                raise ShapeError("cannot tell the size of I here", self.src, ast.span)
            d = int(ast.value) if ast.value.isdigit() else ast.value
        return ir.eye(d)

    def b_neg(self, ast):
        return ir.neg(self.build(ast.args[0]))

    def b_T(self, ast):
        x = self.node(ast.args[0])
        if isinstance(x, _Ones):
            return _Ones(not x.transposed)
        return ir.transpose(x)

    def b_prod(self, ast):
        a, b = self.node(ast.args[0]), self.node(ast.args[1])
        if isinstance(a, _Ones):
            a = ir.transpose(ir.ones(b.rows)) if a.transposed else None
            if a is None:
                raise ShapeError("cannot tell the length of 𝟙 here", self.src, ast.span)
        if isinstance(b, _Ones):
            b = ir.ones(a.cols) if not b.transposed else None
            if b is None:
                raise ShapeError("cannot tell the length of 𝟙ᵀ here", self.src, ast.span)
        if a.is_scalar or b.is_scalar:
            return ir.mul(a, b)
        return ir.matmul(a, b)

    def b_div(self, ast):
        a, b = self.build(ast.args[0]), self.build(ast.args[1])
        a, b = self.broadcast(a, b, ast)
        return ir.mul(a, ir.recip(b))

    def b_had(self, ast):
        a, b = self.broadcast(self.build(ast.args[0]), self.build(ast.args[1]), ast)
        return ir.mul(a, b)

    def b_ediv(self, ast):
        a, b = self.broadcast(self.build(ast.args[0]), self.build(ast.args[1]), ast)
        return ir.mul(a, ir.recip(b))

    def b_add(self, ast):
        a, b = self.broadcast(self.build(ast.args[0]), self.build(ast.args[1]), ast)
        return ir.add(a, b)

    def b_sub(self, ast):
        a, b = self.broadcast(self.build(ast.args[0]), self.build(ast.args[1]), ast)
        return ir.sub(a, b)

    def broadcast(self, a, b, ast=None):
        """NumPy broadcasting made explicit: a vector b against a matrix is 𝟙bᵀ;
        a kept N×1 m (an axis reduction's result) against N×D is m𝟙ᵀ, against
        a row r it is m𝟙ᵀ + 𝟙r."""
        if a.is_scalar or b.is_scalar:
            return a, b
        kept_a = ast is not None and ast.args[0] in self.kept
        kept_b = ast is not None and ast.args[1] in self.kept
        if kept_a or kept_b:
            return self._expand_kept(a, b, kept_a), self._expand_kept(b, a, kept_b)
        if a.shape == b.shape:
            return a, b
        return self._expand(a, b), self._expand(b, a)

    @staticmethod
    def _expand_kept(v, m, kept):
        """v against m where one of them is a kept N×1 (kept: v is)."""
        if kept:
            if m.cols == 1:
                return v  # against a column: element-wise
            return ir.matmul(v, ir.transpose(ir.ones(m.cols)))
        if v.rows == 1 and m.cols == 1:  # a row against the kept column
            return ir.matmul(ir.ones(m.rows), v)
        return v

    @staticmethod
    def _expand(v, m):
        if v.shape == m.shape or v.is_scalar:
            return v
        if v.cols == 1 and m.cols != 1 and m.rows != 1 and v.rows == m.cols:
            return ir.matmul(ir.ones(m.rows), ir.transpose(v))
        if v.rows == 1 and m.rows != 1 and m.cols != 1 and v.cols == m.cols:
            return ir.matmul(ir.ones(m.rows), v)
        return v  # the other operand is the one to expand (or a shape error follows)

    def b_pow(self, ast):
        base = self.build(ast.args[0])
        expo = self.build(ast.args[1])
        if base.is_scalar or base.cols == 1 or base.rows == 1:
            return ir.power(base, expo)
        k = integer_exponent(ast.args[1])
        if k is None:
            raise ShapeError("non-integer power of a matrix: use .^ for an element-wise power",
                             self.src, ast.op_span)
        if base.rows != base.cols:
            return ir.power(base, expo)  # known non-square: element-wise, as in NumPy
        if k == 0:
            return ir.eye(base.rows)
        factor = base if k > 0 else ir.inv(base)
        return ir.matmul(*([factor] * abs(k))) if abs(k) > 1 else factor

    def b_epow(self, ast):
        return ir.power(self.build(ast.args[0]), self.build(ast.args[1]))

    def size(self, ast):
        """A size written in the text (unvec's): from inference, or for a
        template its number / name / product."""
        d = self.sized.get(ast)
        if d is not None:
            return d
        while ast.kind == "paren":
            ast = ast.args[0]
        if ast.kind == "num":
            return int(ast.value)
        if ast.kind == "prod":
            return product(self.size(ast.args[0]), self.size(ast.args[1]))
        return ast.value

    def b_call(self, ast):
        fname, sub = ast.value if isinstance(ast.value, tuple) else (ast.value, None)
        if fname == "ones_like":
            return ir.ones_like(self.build(ast.args[0]).shape)
        if fname == "eye_like":
            return ir.eye(self.build(ast.args[0]).rows)
        if fname == "ones_rows":
            return ir.ones(self.build(ast.args[0]).rows)
        if fname == "unvec_like":
            g, like = self.build(ast.args[0]), self.build(ast.args[1])
            return ir.unvec(g, like.rows, like.cols)
        return self.apply(ast, fname, sub)

    def apply(self, ast, name, sub=None):
        """An op applied to the AST's arguments, made by its entry's named
        builder (matdiff/ops/builders.py)."""
        op = registry.op(name)
        if op is None:
            raise DerivativeError(f"unknown function {name!r}", self.src, ast.op_span)
        return builders.builder(op)(BuildCall(self, ast, op, sub))


class BuildCall:
    """An op applied in the text or a template, as its builder sees it (see
    matdiff/ops/builders.py)."""
    __slots__ = ("b", "ast", "op", "name", "sub", "count")

    def __init__(self, b, ast, op, sub=None):
        self.b, self.ast, self.op, self.name, self.sub = b, ast, op, op.name, sub
        self.count = len(ast.args)

    @property
    def word(self):
        return syntax.word(self.name)

    def arg(self, i):
        return self.b.build(self.ast.args[i])

    def size(self, i):
        return self.b.size(self.ast.args[i])

    def axis(self, i):
        return axis_reduction_axis(self.ast, self.b.src, self.word, i)

    def error(self, message):
        raise ShapeError(message, self.b.src, self.ast.span)

    def result_shape(self, args):
        """The node's shape: from inference (user input), else its shape rule
        applied to the built arguments `args` (a rule template)."""
        shape = self.b.sized.get(self.ast)
        if shape is not None:
            return shape
        return shape_from_ir(self.name, args, self.b.src)
