"""Named shape rules: an op's entry says `shape = "NAME"` and shape inference
calls NAME(call) here, after checking the argument count (`arity`).

`call` (shapes.ShapeCall) is the op applied in the text: `call.shape(i)`
infers argument i (a pair of union-find Dims), `call.word` is how messages
name the op, `call.sub` its subscript (‖X‖_2). Its helpers unify sizes and
raise errors that point at the text: `square`, `unify`, `product`, `size`,
`axis`, `error`, `text`, `klass` ("scalar", "col", "row" or "mat"). A rule
returns the result's shape: `call.scalar`, `call.ONE` for a size 1, and
`call.KEPT` for an axis kept by a reduction (N×KEPT broadcasts as NumPy's
N×1, not as a vector).
"""


def rule(name):
    """The shape rule called `name`."""
    fn = RULES.get(name)
    if fn is None:
        raise KeyError(f"no shape rule {name!r} in matdiff/ops/shape_rules.py")
    return fn


def same(call):
    """The argument's shape (softmax, log_softmax)."""
    return call.shape(0)


def scalar(call):
    """A scalar of anything."""
    call.shape(0)
    return call.scalar


def square_to_scalar(call):
    """A scalar of a square matrix (tr, det, logdet)."""
    call.square(call.shape(0), call.word)
    return call.scalar


def same_pair(call):
    """Two arguments of one shape (a binary element-wise op): that shape."""
    sa, sb = call.shape(0), call.shape(1)

    def message():
        return (f"{call.word} needs arguments of one shape, but {call.text(0)} is "
                f"{call.shape_text(sa)} and {call.text(1)} is {call.shape_text(sb)}")
    call.unify(sa[0], sb[0], message)
    call.unify(sa[1], sb[1], message)
    return sa


def elementwise(call):
    """f(X, p…): X's shape, each parameter (elu's α) a scalar."""
    s = call.shape(0)
    for i, pname in enumerate(call.params, start=1):
        if call.klass(call.shape(i)) != "scalar":
            call.error(f"the parameter {pname} of {call.word} must be a scalar, but "
                       f"{call.text(i)} is {call.shape_text(call.shape(i))}", call.span(i))
    return s


def axis_reduce(call):
    """(X): a scalar; (X, 1): N×1 within each row; (X, 0): 1×D down each column.
    The reduced axis is kept (KEPT: it broadcasts NumPy's way)."""
    s = call.shape(0)
    if call.count == 1:
        return call.scalar
    axis = call.axis(1)
    call.shape(1)
    return (s[0], call.KEPT) if axis == 1 else (call.KEPT, s[1])


def rowwise_reduce(call):
    """Of an N×C matrix the N-vector of its rows' values; of a vector a scalar
    (logsumexp)."""
    s = call.shape(0)
    return (s[0], call.ONE) if call.klass(s) == "mat" else call.scalar


def norm(call):
    """A scalar; the spectral norm (_2) of a matrix is refused."""
    s = call.shape(0)
    if call.sub == "2" and call.klass(s) == "mat":
        call.error(f"the spectral norm ‖{call.text(0)}‖_2 of a matrix is not supported "
                   f"(use ‖·‖ or ‖·‖_F, the Frobenius norm)")
    return call.scalar


def inverse(call):
    """A square matrix's shape; of a vector (x^-1) element-wise."""
    s = call.shape(0)
    if call.klass(s) != "mat":
        return s
    return call.square(s, "the inverse")


def diag(call):
    """A vector -> the diagonal matrix; a square matrix -> its diagonal."""
    s = call.shape(0)
    k = call.klass(s)
    if k == "scalar":
        return s
    if k == "col":
        return (s[0], s[0])
    if k == "row":
        call.error("diag of a row vector: write diag(x) with x a column vector")
    call.square(s, "diag")
    return (s[0], call.ONE)


def vec(call):
    """Column stacking: the m·n-vector of an m×n matrix."""
    s = call.shape(0)
    return (call.product(s[0], s[1]), call.ONE)


def kron(call):
    """A ⊗ B: (m·p)×(n·q) for m×n A and p×q B."""
    sa, sb = call.shape(0), call.shape(1)
    return (call.product(sa[0], sb[0]), call.product(sa[1], sb[1]))


def unvec(call):
    """unvec(v, m, n): the m×n matrix whose columns are v's consecutive
    m-chunks (the inverse of vec); m and n are sizes written in the text:
    numbers, dimension names or their products (m_A·m_B)."""
    s = call.shape(0)
    m, n = call.size(1), call.size(2)
    if call.klass(s) not in ("col", "scalar"):
        call.error(f"{call.word} needs a vector, but {call.text(0)} is {call.shape_text(s)}",
                   call.span(0))
    mn = call.product(m, n)
    call.unify(s[0], mn, lambda: (
        f"{call.word}({call.text(0)}, …) needs a vector of {call.shape_text((m, n))} = "
        f"{call.resolved(mn)} entries, but it has {call.shape_text(s[:1])}"))
    return (m, n)


RULES = {f.__name__: f for f in (same, scalar, square_to_scalar, same_pair, elementwise, axis_reduce,
                                 rowwise_reduce, norm, inverse, diag, vec, kron, unvec)}
