"""NumPy code of the ops whose `numpy` template does not do: the functions an
entry names by `numpy_fn` (and `numpy_uses`), the emission rules of matmul
chains, and the helper kernels that templates call.

A named function takes the emitter and the IR node and returns a Python
`ast` expression (or `(expression, full)`, as `Emitter.lite`). It falls back
to the op's own template (`em.op_template`) where no special form applies,
so the entry's `numpy` (or `jax` / `torch`) column is what general cases
emit. The JAX and PyTorch emitters look every name up first in their own
module (matdiff/ops/jax_code.py, matdiff/ops/torch_code.py) and only then
here (`Emitter.code`): a backend overrides a function by defining one of the
same name, and the functions here reach the others through `em.code(name)`
so that such overrides apply inside them too.

Chain rules (`CHAIN_RULES`, tried in order for every matmul chain; each gets
the emitter and the chain's factors and returns code or None) are the
special forms that span several nodes, each keyed by the op it starts from:
the block sums of a Kronecker pullback, 𝟙ᵀG and G𝟙 as axis sums, the outer
product, and a single-use inverse as a solve. (diag(v)M and M diag(v) are
broadcasts before emission: the IR's lower phase, ops/rewrites.py.)
The last rule, `left_to_right`, always applies. Sum rules (`ADD_RULES`, tried
for every sum with the emitter, the node and its terms) are the same for the
IR's add: A + diag(v) adds v along the diagonal of A's fresh array.
"""

import ast
from fractions import Fraction

from .. import pyast as P
from . import registry

# The ops' kernels that templates call (`_softmax({X})`): fixed text written
# into the generated module when a template uses them (`Emitter.need_helpers`).
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
    "_add_diagonal": '''def _add_diagonal(a, v):
    # a + diag(v) for an array a of the kernel's own: v added in place along
    # the diagonal (every (n+1)-th entry in reading order), no n×n diag(v)
    a = a.astype(_np.result_type(a, v), copy=False)
    a.flat[::a.shape[1] + 1] += v
    return a
''',
}


# -- shapes of the generated arrays ---------------------------------------------

def rank(node):
    """0 for a scalar, 1 for a vector or a row (1-D arrays), 2 for a matrix."""
    r, c = node.shape
    if (r, c) == (1, 1):
        return 0
    return 1 if (c == 1 or r == 1) else 2


def sub_chain(args):
    """The product of consecutive factors of a chain (one factor: itself)."""
    from ..ir import matmul
    return args[0] if len(args) == 1 else matmul(*args)


def is_input(node):
    """A variable: its code is the caller's array (its leaf op is `var`, which
    is also the spelling of the variance: named here, in the registry package)."""
    return node.op == "var"


def is_callers_array(node):
    """The code of node is an input array itself (a variable, or a named
    intermediate that is one): a function returning it returns a copy."""
    return is_input(node) or (node.op == "let" and is_input(node.args[0]))


def _is_ones_row(node):
    return node.op == "T" and node.args[0].op == "ones"


def _single_use(em, node):
    """node is computed here only (not bound to a temporary, used once)."""
    return node not in em.done and em.uses.get(node, 0) < 2


# -- pow (the IR's powers X.^p) ---------------------------------------------------

def power(em, n):
    """X.^½ is sqrt(X), X.^2 is x * x (a name) or square(X), else X ** p."""
    base, e = n.args
    code, full = em.lite(base)
    if e.op == "const" and e.attr == Fraction(1, 2):
        return em.f("sqrt", code), full
    if e.op == "const" and e.attr == 2:
        if isinstance(code, ast.Name):
            return P.binop(code, "*", code), full
        return em.f("square", code), full
    return P.binop(code, "**", em.expr(e)), full


# -- one op each ------------------------------------------------------------------

def trace_product(em, n):
    """tr(A B) = sum(A ⊙ Bᵀ): no product matrix is formed (unless the product is
    shared, or holds an inverse that becomes a solve)."""
    x = n.args[0]
    if x.op == "matmul" and _single_use(em, x) \
            and not any(f.op == "inv" and em.uses.get(f, 0) < 2 for f in x.args):
        from ..ir import matmul, transpose
        a = x.args[0] if len(x.args) == 2 else matmul(*x.args[:-1])
        b = x.args[-1]
        if a.op == "T":
            return em.f("sum", P.binop(em.expr(a.args[0]), "*", em.expr(b)))
        return em.f("sum", P.binop(em.expr(a), "*", em.expr(transpose(b))))
    return em.op_template(n)


def diagonal_of_product(em, n):
    """diag(L R) = the row sums of L ⊙ Rᵀ, no product matrix formed; split where
    L is a column if the chain has one (diag(u vᵀ) = u ⊙ v)."""
    x = n.args[0]
    if x.op == "matmul" and _single_use(em, x) and not any(
            f.op in ("inv", "ones") or _is_ones_row(f) for f in x.args):
        from ..ir import transpose
        k = next((i for i in range(1, len(x.args)) if x.args[i - 1].cols == 1), len(x.args) - 1)
        left, right = sub_chain(x.args[:k]), sub_chain(x.args[k:])
        if left.op != "diag" and right.op != "diag":
            prod = P.binop(em.expr(left), "*", em.expr(transpose(right)))
            return prod if left.cols == 1 else em.f("sum", prod, axis=P.const(-1))
    return em.op_template(n)


def softmax(em, n):
    """softmax(z) next to log_softmax(z): exp of the log, computed once."""
    from ..ir import log_softmax
    ls = log_softmax(n.args[0])
    if em.uses.get(ls, 0) >= 2:
        return em.f("exp", em.expr(ls))
    return em.op_template(n)


def softmax_uses(uses, n):
    """(numpy_uses) softmax(z) reads log_softmax(z) when the program has it:
    count it twice more, so that it is bound to a temporary."""
    from ..ir import log_softmax
    ls = log_softmax(n.args[0])
    if ls in uses:
        uses[ls] += 2


def kron(em, n):
    """A ⊗ B of 2-D operands (vectors are 1-D: a column x[:, None], a row
    x[None, :]); 𝟙𝟙ᵀ ⊗ B is B tiled; a vector result is raveled."""
    from ..ir import is_ones_matrix

    def as_2d(x):
        code = em.expr(x)
        if rank(x) == 2:
            return code
        index = (P.full_slice(), P.none()) if x.cols == 1 else (P.none(), P.full_slice())
        return P.subscript(code, P.tuple_(*index))
    a, b = n.args
    if is_ones_matrix(a):
        code = em.f("tile", as_2d(b), P.tuple_(em.dim(a.rows), em.dim(a.cols)))
    else:
        code = em.f("kron", as_2d(a), as_2d(b))
    return code if rank(n) == 2 else em.f("ravel", code)


# -- matmul chains ----------------------------------------------------------------

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


def block_sums(em, args):
    """(kron) (I_m ⊗ 𝟙_pᵀ) M (I_n ⊗ 𝟙_q) and friends (kron's pullbacks): sums of
    M's p×q blocks, or of its block grid, by a reshape: no Kronecker factor formed."""
    rows, cols = _block_sum(args[0], "left"), _block_sum(args[-1], "right")
    if rows is None or cols is None or len(args) <= 2:
        return None
    (m, p, ra), (n, q, ca) = rows, cols
    four = P.tuple_(*[em.dim(d) for d in (m, p, n, q)])
    blocks = P.call(P.attr(em.expr(sub_chain(args[1:-1])), "reshape"), four)
    return em.f("sum", blocks, axis=P.tuple_(P.const(ra), P.const(ca)))


def column_sums(em, args):
    """(𝟙ᵀ) 𝟙ᵀG: the column sums of G (a vector's sum)."""
    if not _is_ones_row(args[0]):
        return None
    rest = sub_chain(args[1:])
    if rank(rest) == 2:
        return em.f("sum", em.expr(rest), axis=P.const(0))
    return em.f("sum", em.expr(rest))


def row_sums(em, args):
    """(𝟙) G𝟙: the row sums of G; Gᵀ𝟙 the column sums of G, read in order."""
    if args[-1].op != "ones":
        return None
    rest = sub_chain(args[:-1])
    if rest.op == "T" and rank(rest) == 2:
        return em.f("sum", em.expr(rest.args[0]), axis=P.const(0))
    if rank(rest) == 2:
        return em.f("sum", em.expr(rest), axis=P.const(-1))
    return em.f("sum", em.expr(rest))


def outer_product(em, args):
    """u vᵀ of two vectors: outer(u, v)."""
    if len(args) == 2 and args[0].cols == 1 and args[1].rows == 1:
        return em.f("outer", em.expr(args[0]), em.expr(args[1]))
    return None


def inverse_solve(em, args):
    """(inv) L X⁻¹ R where the inverse is used only here: L @ solve(X, R), or
    solve(Xᵀ, Lᵀ)ᵀ at the end of the chain; no inverse formed."""
    for i, f in enumerate(args):
        if f.op == "inv" and _single_use(em, f):
            X = em.expr(f.args[0])
            left, right = args[:i], args[i + 1:]
            if right:
                solved = em.f("linalg.solve", X, em.expr(sub_chain(right)))
                return P.binop(em.expr(sub_chain(left)), "@", solved) if left else solved
            from ..ir import transpose
            lt = em.expr(transpose(sub_chain(left)))
            return P.attr(em.f("linalg.solve", P.attr(X, "T"), lt), "T")
    return None


def left_to_right(em, args):
    """The product in order: @, a 1×1 partial product scales, a column times a
    row is an outer product (exact inside a longer chain). (A diag(v) factor
    is a broadcast by now: the lower phase's diagonal scaling, ir.lower.)"""
    acc, rows, cols = em.expr(args[0]), args[0].rows, args[0].cols
    for f in args[1:]:
        code = em.expr(f)
        if (rows, cols) == (1, 1):
            acc = P.binop(acc, "*", code)
        elif cols == 1 and f.rows == 1:
            acc = em.f("outer", acc, code)
        else:
            acc = P.binop(acc, "@", code)
        cols = f.cols
    return acc


# -- sums (the IR's add) ------------------------------------------------------------

def diagonal_of(t):
    """The term t as diag(u): u (a vector, or a scalar added to every diagonal
    entry) for t = diag(v), I, or either times scalars; None otherwise."""
    from ..ir import mul, num
    factors = list(t.args) if t.op == "mul" else [t]
    square = [f for f in factors if not f.is_scalar]
    if len(square) != 1 or square[0].op not in ("diag", "eye"):
        return None
    d = square[0]
    u = [f for f in factors if f is not d] + ([d.args[0]] if d.op == "diag" else [])
    if not u:
        return num(1)
    return u[0] if len(u) == 1 else mul(*u)


def add_to_diagonal(em, n, terms):
    """(diag) A + diag(v), A + sI: the other terms summed into an array of the
    kernel's own, v (or s) then added along its diagonal in place
    (`_add_diagonal`): neither the n×n diag(v) nor I is formed, and the sum is
    one pass over n² entries, not two. Only where the other terms make a full
    matrix (s𝟙𝟙ᵀ + diag(v) is the general path's)."""
    if rank(n) != 2:
        return None
    from ..ir import add, scale, split_coef
    diagonal, rest = [], []
    for t in terms:
        c, core = split_coef(t)
        u = diagonal_of(core) if core is not None else None
        if u is None:
            rest.append(t)
        else:
            diagonal.append(scale(c, u))
    if not diagonal or not rest:
        return None
    code, full = em.sum_code(rest, n.shape)
    if not full:
        return None
    u = diagonal[0] if len(diagonal) == 1 else add(*diagonal)
    return em.helper("_add_diagonal", em.owned(code), em.expr(u)), True


ADD_RULES = ("add_to_diagonal",)


CHAIN_RULES = ("block_sums", "column_sums", "row_sums", "outer_product", "inverse_solve", "left_to_right")


# -- the generic path: an op's template -------------------------------------------

def slots(em, n, tree):
    """{slot: code} for an op's template `tree`: each argument by its rule name
    ({X}, or {A} and {B}: `args` of the entry); {shape}, the node's shape as
    the array has it (a tuple of sizes: () for a scalar, (n,) for a vector), and
    {rows} / {cols}, its two sizes (as in the text / LaTeX templates) — sizes
    are read from the inputs only when the template uses them."""
    out = {name: em.expr(a) for name, a in zip(registry.arg_names(n), n.args)}
    used = {t.id for t in ast.walk(tree) if isinstance(t, ast.Name)}
    if "_slot_shape" in used:
        out["shape"] = em.shape_code(n)
    if "_slot_rows" in used:
        out["rows"] = em.dim(n.rows)
    if "_slot_cols" in used:
        out["cols"] = em.dim(n.cols)
    return out
