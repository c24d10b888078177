"""The constructors of the registered ops: an argument check, the shape, and
ir.apply, which tries the op's named rewrites (matdiff/ops/rewrites.py)
before it makes the node. Each is registered as ir.<name>, so stages write
ir.tr(x) without ir naming the op.
"""

from .. import ir
from ..dims import product
from ..errors import ShapeError
from ..ir import constructor, _fmt
from . import registry


def _square(x, what):
    if x.rows != x.cols:
        raise ShapeError(f"{what} needs a square matrix, got {_fmt(x.shape)}")


def _scalar_valued(name, what=None):
    """A reduction to a scalar of a square (what given) or any matrix."""
    def build(x):
        if what is not None and not x.is_scalar:
            _square(x, what)
        return ir.apply(name, (x,), (1, 1))
    build.__name__ = name
    return build


tr = constructor(_scalar_valued("tr", "trace"))
det = constructor(_scalar_valued("det", "det"))
logdet = constructor(_scalar_valued("logdet", "logdet"))
norm = constructor(_scalar_valued("norm"))
sum_ = constructor(_scalar_valued("sum"), "sum_")


@constructor
def inv(x):
    if not x.is_scalar:
        _square(x, "inverse")
    return ir.apply("inv", (x,), x.shape)


@constructor
def softmax(x):
    return ir.apply("softmax", (x,), x.shape)


@constructor
def log_softmax(x):
    return ir.apply("log_softmax", (x,), x.shape)


@constructor
def logsumexp(x):
    shape = (1, 1) if x.cols == 1 or x.rows == 1 else (x.rows, 1)
    return ir.apply("logsumexp", (x,), shape)


@constructor
def diag(v):
    """Vector -> diagonal matrix."""
    if v.cols != 1 and not v.is_scalar:
        raise ShapeError(f"diag of a row vector {_fmt(v.shape)}")
    return ir.apply("diag", (v,), (v.rows, v.rows))


@constructor
def diagvec(x):
    """Matrix -> vector of its diagonal."""
    if not x.is_scalar:
        _square(x, "diag")
    return ir.apply("diagvec", (x,), (x.rows, 1))


@constructor
def vec(x):
    """The columns of x stacked: an (m·n)-vector for m×n x."""
    return ir.apply("vec", (x,), (product(x.rows, x.cols), 1))


@constructor
def unvec(g, m, n):
    """The m×n matrix whose columns are the consecutive m-chunks of the
    (m·n)-vector g: the inverse (and the adjoint) of vec."""
    if g.cols != 1 or g.rows != product(m, n):
        raise ShapeError(f"unvec of {_fmt(g.shape)} into {_fmt((m, n))}")
    # the target size is the node's own shape (no attr); the rules read it
    out = ir._rewrite("unvec", g, m, n, before=ir._trace is not None
                      and (lambda: ir._make("unvec", (g,), None, (m, n))))
    if out is not None:
        return out
    return ir._make("unvec", (g,), None, (m, n))


@constructor
def kron(a, b):
    """The Kronecker product a ⊗ b: (m·p)×(n·q) for m×n a and p×q b."""
    if a.is_scalar or b.is_scalar:
        return ir.mul(a, b)
    shape = (product(a.rows, b.rows), product(a.cols, b.cols))
    return ir.apply("kron", (a, b), shape)


# Language ops made of other nodes (they have no IR node of their own).

@constructor
def sum_axis(x, axis):
    """NumPy's sum(x, axis) with the axis kept: x𝟙 (N×1) for axis 1, 𝟙ᵀx (1×D)
    for axis 0."""
    if axis == 1:
        return ir.matmul(x, ir.ones(x.cols))
    return ir.matmul(ir.transpose(ir.ones(x.rows)), x)


@constructor
def mean(x, axis=None):
    """The mean of all entries (a scalar), or along an axis, kept: x𝟙/D, 𝟙ᵀx/N."""
    if axis is None:
        return ir.mul(sum_(x), ir.recip(ir.mul(ir.dim(x.rows), ir.dim(x.cols))))
    return ir.mul(sum_axis(x, axis), ir.recip(ir.dim(x.cols if axis == 1 else x.rows)))


@constructor
def variance(x, axis=None):
    """The population variance of all entries, or along an axis (kept):
    mean((x − mean(x, 1)𝟙ᵀ).^2, 1) for axis 1."""
    if axis is None:
        centred = ir.add(x, ir.neg(mean(x)))
    elif axis == 1:
        centred = ir.add(x, ir.neg(ir.matmul(mean(x, 1), ir.transpose(ir.ones(x.cols)))))
    else:
        centred = ir.add(x, ir.neg(ir.matmul(ir.ones(x.rows), mean(x, 0))))
    return mean(ir.power(centred, ir.num(2)), axis)


def _symmetry():
    """The `symmetric` key of each entry, for ir.is_symmetric."""
    for name, entry in registry.ops().items():
        if "symmetric" in entry:
            ir.SYMMETRY[name] = entry["symmetric"]


_symmetry()
