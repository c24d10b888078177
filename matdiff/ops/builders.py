"""Named IR builders: an op's entry says `build = "NAME"` and the builder
(matdiff.build) calls NAME(call) here to make its IR node. An op without
`build` gets `generic`: a node of its own, shaped by its shape rule.

`call` (build.BuildCall) is the op applied in the text or in a rule
template: `call.arg(i)` builds argument i, `call.size(i)` reads it as a size
(unvec's m, n), `call.axis(i)` as an axis, `call.sub` is its subscript,
`call.error(message)` points at the text.
"""

from .. import ir


def builder(op):
    """The function that builds op's nodes."""
    if op.elementwise:
        return elementwise
    name = op.get("build")
    if name is None:
        return generic
    fn = BUILDERS.get(name)
    if fn is None:
        raise KeyError(f"no builder {name!r} in matdiff/ops/builders.py (op {op.name!r})")
    return fn


def generic(call):
    """A node of the op on its arguments, shaped by its shape rule (through
    ir.apply, so any named rewrite of the op applies)."""
    args = [call.arg(i) for i in range(call.count)]
    return ir.apply(call.name, args, call.result_shape(args))


def elementwise(call):
    """f(X, p…) of an element-wise function: an `fn` node."""
    return ir.fn(call.name, *[call.arg(i) for i in range(call.count)])


def constructor(call):
    """The IR constructor of the op's own name (ir.tr, ir.softmax, …), which
    keeps its textbook rewrites (tr of a transpose, …)."""
    return getattr(ir, call.name)(call.arg(0))


def axis_sum(call):
    """sum(X): all entries; sum(X, axis): X𝟙 or 𝟙ᵀX."""
    x = call.arg(0)
    return ir.sum_(x) if call.count == 1 else ir.sum_axis(x, call.axis(1))


def mean(call):
    x = call.arg(0)
    return ir.mean(x) if call.count == 1 else ir.mean(x, call.axis(1))


def variance(call):
    x = call.arg(0)
    return ir.variance(x) if call.count == 1 else ir.variance(x, call.axis(1))


def inverse(call):
    """X⁻¹ of a matrix; of a vector (x^-1) the element-wise reciprocal."""
    x = call.arg(0)
    if x.cols == 1 or x.rows == 1:
        return ir.recip(x)
    return ir.inv(x)


def diag(call):
    """diag(v) of a vector is the diagonal matrix, diag(X) of a matrix its diagonal."""
    x = call.arg(0)
    if x.is_scalar or x.cols == 1:
        return ir.diag(x)
    return ir.diagvec(x)


def norm(call):
    x = call.arg(0)
    if call.sub == "2" and x.cols != 1 and x.rows != 1:
        call.error("the spectral norm ‖X‖_2 of a matrix is not supported")
    return ir.norm(x)


def unvec(call):
    return ir.unvec(call.arg(0), call.size(1), call.size(2))


def kron(call):
    return ir.kron(call.arg(0), call.arg(1))


BUILDERS = {f.__name__: f for f in (constructor, axis_sum, mean, variance, inverse, diag,
                                    norm, unvec, kron, generic)}
