"""The named rewrites of the registered ops, one rule per identity.

Each rule is registered with ir.rewrite(key, name, phase): the key says where
it applies (an op's constructor, a pair of adjacent matrix-product factors,
a transpose, an element-wise function), the name is the identity as a
textbook states it (ir.trace_rewrites and --steps report it), the phase
orders the rules of one key:
  canonicalize  a normal form: identities that remove an op (tr of a scalar,
                (Xᵀ)⁻¹ = (X⁻¹)ᵀ, scalars out of linear ops)
  collect       identities that combine ops (X⁻¹X = I, 𝟙ᵀdiag(v) = vᵀ,
                softmax rows sum to one)
  factor        common factors of sums (the core's, in ir.py)
  lower         forms for code only, applied by ir.lower() to a finished DAG
                (never by the constructors, never printed): diagonal
                scaling as broadcasting
A rule returns the rewritten node, or None when it does not apply. The core
grammar's own rules (sums of ones, row and column sums, common factors) are
in ir.py.
"""

from ..ir import rewrite, num, dim, ones, eye, zero, mul, add, matmul, transpose, fn, neg, recip
from ..ir import is_zero, is_ones_matrix, ones_like, _linear, _scalar_parts, raw
from ..dims import product
from . import algebra as A
from . import registry

C, K = "canonicalize", "collect"


def _is(x, op, arg=None):
    """x is op(…), and (arg given) its argument is an `arg` node."""
    return x.op == op and (arg is None or x.args[0].op == arg)


# ---------------------------------------------------------------- inverse

@rewrite("inv", "the inverse of a scalar is its reciprocal", C)
def _inv_scalar(x):
    return recip(x) if x.is_scalar else None


@rewrite("inv", "(X⁻¹)⁻¹ = X", C)
def _inv_inv(x):
    return x.args[0] if x.op == "inv" else None


@rewrite("inv", "I⁻¹ = I", C)
def _inv_eye(x):
    return x if x.op == "eye" else None


@rewrite("inv", "(Xᵀ)⁻¹ = (X⁻¹)ᵀ", C)
def _inv_t(x):
    return transpose(A.inv(x.args[0])) if x.op == "T" else None


@rewrite("inv", "diag(v)⁻¹ = diag(1 ⊘ v)", C)
def _inv_diag(x):
    return A.diag(recip(x.args[0])) if x.op == "diag" else None


@rewrite("inv", "(sX)⁻¹ = s⁻¹X⁻¹", C)
def _inv_scaled(x):
    sc, core = _scalar_parts(x)
    return mul(*[recip(s) for s in sc], A.inv(core)) if sc else None


@rewrite(("T", "inv"), "X⁻ᵀ is (X⁻¹)ᵀ: (Xᵀ)⁻¹ stays the inverse of X", C)
def _t_inv(x):
    return A.inv(x.args[0].args[0]) if x.args[0].op == "T" else None


@rewrite(("pair", "inv", "*"), "X⁻¹X = I")
def _inv_left(a, b):
    return eye(a.rows) if a.args[0] is b else None


@rewrite(("pair", "*", "inv"), "XX⁻¹ = I")
def _inv_right(a, b):
    return eye(a.rows) if b.args[0] is a else None


@rewrite(("pair", "T", "T"), "X⁻ᵀXᵀ = I")
def _inv_t_left(a, b):
    return eye(a.rows) if _is(a.args[0], "inv") and a.args[0].args[0] is b.args[0] else None


@rewrite(("pair", "T", "T"), "XᵀX⁻ᵀ = I")
def _inv_t_right(a, b):
    return eye(a.rows) if _is(b.args[0], "inv") and b.args[0].args[0] is a.args[0] else None


# ---------------------------------------------------------------- trace

@rewrite("tr", "the trace of a scalar is itself", C)
def _tr_scalar(x):
    return x if x.is_scalar else None


@rewrite("tr", "tr(Xᵀ) = tr(X)", C)
def _tr_t(x):
    return A.tr(x.args[0]) if x.op == "T" else None


@rewrite("tr", "tr(Iₙ) = n", C)
def _tr_eye(x):
    return dim(x.rows) if x.op == "eye" else None


@rewrite("tr", "tr(0) = 0", C)
def _tr_zero(x):
    return num(0) if x.op == "zero" else None


@rewrite("tr", "tr(sX) = s tr(X)", C)
def _tr_scaled(x):
    return _linear(x, A.tr)


@rewrite("tr", "tr(A + B) = tr(A) + tr(B)", C)
def _tr_sum(x):
    if x.op != "add":
        return None
    # keep scalars out of the trace: a broadcast scalar s has trace n·s
    return add(*[A.tr(a) if not a.is_scalar else mul(a, dim(x.rows)) for a in x.args])


@rewrite("tr", "cyclic trace: tr(… a) with a column a is the scalar (…)a moved round", K)
def _tr_cyclic(x):
    if x.op != "matmul":
        return None
    ch = x.args
    for i, f in enumerate(ch):
        if f.cols == 1:
            return matmul(*(ch[i + 1:] + ch[:i + 1]))
    return None


# ---------------------------------------------------------------- determinants

@rewrite("det", "the determinant of a scalar is itself", C)
def _det_scalar(x):
    return x if x.is_scalar else None


@rewrite("det", "det(Xᵀ) = det(X)", C)
def _det_t(x):
    return A.det(x.args[0]) if x.op == "T" else None


@rewrite("det", "det(X⁻¹) = 1/det(X)", C)
def _det_inv(x):
    return recip(A.det(x.args[0])) if x.op == "inv" else None


@rewrite("det", "det(I) = 1", C)
def _det_eye(x):
    return num(1) if x.op == "eye" else None


@rewrite("logdet", "log|det| of a scalar is log|x|", C)
def _logdet_scalar(x):
    return fn("log", fn("abs", x)) if x.is_scalar else None


@rewrite("logdet", "log|det Xᵀ| = log|det X|", C)
def _logdet_t(x):
    return A.logdet(x.args[0]) if x.op == "T" else None


@rewrite("logdet", "log|det X⁻¹| = −log|det X|", C)
def _logdet_inv(x):
    return neg(A.logdet(x.args[0])) if x.op == "inv" else None


@rewrite("logdet", "log det I = 0", C)
def _logdet_eye(x):
    return num(0) if x.op == "eye" else None


# ---------------------------------------------------------------- sums and norms

@rewrite("sum", "the sum of a scalar is itself", C)
def _sum_scalar(x):
    return x if x.is_scalar else None


@rewrite("sum", "sum(sX) = s sum(X)", C)
def _sum_scaled(x):
    return _linear(x, A.sum_)


@rewrite("sum", "sum(Xᵀ) = sum(X)", C)
def _sum_t(x):
    return A.sum_(x.args[0]) if x.op == "T" else None


@rewrite("sum", "sum(0) = 0", C)
def _sum_zero(x):
    return num(0) if x.op == "zero" else None


@rewrite("sum", "the sum of 𝟙𝟙ᵀ is its number of entries", C)
def _sum_ones(x):
    return mul(dim(x.rows), dim(x.cols)) if is_ones_matrix(x) else None


@rewrite("sum", "a broadcast scalar counts once per entry: sum(X − s) = sum(X) − mn s", K)
def _sum_broadcast(x):
    if x.op != "add" or not any(t.is_scalar for t in x.args):
        return None
    return add(*[mul(t, dim(x.rows), dim(x.cols)) if t.is_scalar else A.sum_(t) for t in x.args])


@rewrite("norm", "the norm of a scalar is |x|", C)
def _norm_scalar(x):
    return fn("abs", x) if x.is_scalar else None


@rewrite("norm", "‖Xᵀ‖ = ‖X‖", C)
def _norm_t(x):
    return A.norm(x.args[0]) if x.op == "T" else None


# ---------------------------------------------------------------- diagonals

@rewrite("diag", "diag of a scalar is itself", C)
def _diag_scalar(v):
    return v if v.is_scalar else None


@rewrite("diag", "diag(𝟙) = I", C)
def _diag_ones(v):
    return eye(v.rows) if v.op == "ones" else None


@rewrite("diag", "diag(0) = 0", C)
def _diag_zero(v):
    return zero((v.rows, v.rows)) if v.op == "zero" else None


@rewrite("diag", "diag(sv) = s diag(v)", C)
def _diag_scaled(v):
    return _linear(v, A.diag)


@rewrite("diagvec", "the diagonal of a scalar is itself", C)
def _diagvec_scalar(x):
    return x if x.is_scalar else None


@rewrite("diagvec", "the diagonal of I is 𝟙", C)
def _diagvec_eye(x):
    return ones(x.rows) if x.op == "eye" else None


@rewrite("diagvec", "the diagonal of diag(v) is v", C)
def _diagvec_diag(x):
    return x.args[0] if x.op == "diag" else None


@rewrite("diagvec", "the diagonal of Xᵀ is that of X", C)
def _diagvec_t(x):
    return A.diagvec(x.args[0]) if x.op == "T" else None


@rewrite("diagvec", "diag(u rᵀ) = u ⊙ r", K)
def _diagvec_outer(x):
    if x.op == "matmul" and x.args[0].cols == 1:
        return mul(x.args[0], transpose(matmul(*x.args[1:])))
    return None


@rewrite("diagvec", "the diagonal of 0 is 0", C)
def _diagvec_zero(x):
    return zero((x.rows, 1)) if x.op == "zero" else None


@rewrite("diagvec", "diag(sX) = s diag(X)", C)
def _diagvec_scaled(x):
    return _linear(x, A.diagvec)


@rewrite(("pair", "diag", "diag"), "diag(u) diag(v) = diag(u ⊙ v)")
def _diag_diag(a, b):
    return A.diag(mul(a.args[0], b.args[0]))


@rewrite(("pair", "T", "diag"), "𝟙ᵀdiag(v) = vᵀ")
def _ones_diag(a, b):
    return transpose(b.args[0]) if a.args[0].op == "ones" else None


@rewrite(("pair", "diag", "ones"), "diag(v)𝟙 = v")
def _diag_ones_right(a, b):
    return a.args[0]


# The lower phase (ir.lower, run by the code emitters only): a diagonal
# factor of a product is a broadcast, so that no backend forms the n×n diag(v).

def _rows_scaled(v, g):
    """diag(v) g as v𝟙ᵀ ⊙ g (v ⊙ g for a column g)."""
    if g.cols == 1:
        return v if g.op == "ones" else raw("mul", (v, g), g.shape)
    rows = raw("matmul", (v, raw("T", (ones(g.cols),), (1, g.cols))), g.shape)
    return raw("mul", (rows, g), g.shape)


def _cols_scaled(g, v):
    """g diag(v) as g ⊙ 𝟙vᵀ (g ⊙ vᵀ for a row g)."""
    vt = transpose(v)
    if g.rows == 1:
        return raw("mul", (g, vt), g.shape)
    return raw("mul", (g, raw("matmul", (ones(g.rows), vt), g.shape)), g.shape)


@rewrite("matmul", "diagonal scaling is broadcasting: diag(v)M = v𝟙ᵀ ⊙ M, "
         "M diag(v) = M ⊙ 𝟙vᵀ", "lower")
def _diag_scaling(n):
    if not any(f.op == "diag" for f in n.args):
        return None
    out, args, i = [], n.args, 0
    while i < len(args):
        f = args[i]
        if f.op == "diag" and i + 1 < len(args):
            out.append(_rows_scaled(f.args[0], args[i + 1]))
            i += 2
        elif f.op == "diag" and out:
            out.append(_cols_scaled(out.pop(), f.args[0]))
            i += 1
        else:
            out.append(f)
            i += 1
    return out[0] if len(out) == 1 else raw("matmul", out, n.shape)


# ---------------------------------------------------------------- softmax

@rewrite(("pair", "T", "softmax"), "softmax sums to one: 𝟙ᵀsoftmax(x) = 1")
def _softmax_sum(a, b):
    return num(1) if a.args[0].op == "ones" and b.cols == 1 else None


@rewrite(("pair", "T", "ones"), "softmax sums to one: softmax(x)ᵀ𝟙 = 1")
def _softmax_sum_t(a, b):
    return num(1) if _is(a.args[0], "softmax") and a.rows == 1 else None


@rewrite(("pair", "softmax", "ones"), "softmax rows sum to one: softmax(Z)𝟙 = 𝟙")
def _softmax_rows(a, b):
    return ones(a.rows) if a.cols != 1 else None


# ---------------------------------------------------------------- element-wise functions

@rewrite(("fn", "log"), "log exp x = x", C)
def _log_exp(x):
    return x.args[0] if x.op == "fn" and x.attr == "exp" else None


@rewrite(("fn", "log"), "log softmax is log_softmax (the stable form)", K)
def _log_softmax(x):
    return A.log_softmax(x.args[0]) if x.op == "softmax" else None


@rewrite(("fn", "log"), "log(1 + exp x) = softplus(x)", K)
def _softplus(x):
    if x.op == "add" and len(x.args) == 2:
        for a, b in (x.args, x.args[::-1]):  # the terms in either order
            if a.op == "const" and a.attr == 1 and b.op == "fn" and b.attr == "exp":
                return fn("softplus", b.args[0])
    return None


@rewrite(("fn", "exp"), "exp log x = x", C)
def _exp_log(x):
    return x.args[0] if x.op == "fn" and x.attr == "log" else None


@rewrite(("fn", "exp"), "exp log_softmax is softmax", K)
def _exp_log_softmax(x):
    return A.softmax(x.args[0]) if x.op == "log_softmax" else None


@rewrite(("fn", "log1p"), "log1p(exp x) = softplus(x)", K)
def _log1p_exp(x):
    return fn("softplus", x.args[0]) if x.op == "fn" and x.attr == "exp" else None


@rewrite(("fn", "*"), "f(0) = 0 for a function that keeps zero", C)
def _keeps_zero(name, x, *params):
    if is_zero(x) and registry.elementwise().get(name, {}).get("keeps_zero"):
        return x
    return None


# ---------------------------------------------------------------- vec, unvec, kron

@rewrite("vec", "vec of a column is itself", C)
def _vec_column(x):
    return x if x.cols == 1 else None


@rewrite("vec", "vec(vᵀ) = v", C)
def _vec_row(x):
    return transpose(x) if x.rows == 1 else None


@rewrite("vec", "vec(0) = 0", C)
def _vec_zero(x):
    return zero((product(x.rows, x.cols), 1)) if x.op == "zero" else None


@rewrite("vec", "vec(𝟙𝟙ᵀ) = 𝟙", C)
def _vec_ones(x):
    return ones(product(x.rows, x.cols)) if is_ones_matrix(x) else None


@rewrite("vec", "vec(unvec(v)) = v", C)
def _vec_unvec(x):
    return x.args[0] if x.op == "unvec" else None


@rewrite("vec", "vec(sX) = s vec(X)", C)
def _vec_scaled(x):
    return _linear(x, A.vec)


@rewrite("unvec", "unvec into one column is the identity", C)
def _unvec_column(g, m, n):
    return g if n == 1 else None


@rewrite("unvec", "unvec into one row is the transpose", C)
def _unvec_row(g, m, n):
    return transpose(g) if m == 1 else None


@rewrite("unvec", "unvec(0) = 0", C)
def _unvec_zero(g, m, n):
    return zero((m, n)) if g.op == "zero" else None


@rewrite("unvec", "unvec(𝟙) = 𝟙𝟙ᵀ", C)
def _unvec_ones(g, m, n):
    return ones_like((m, n)) if g.op == "ones" else None


@rewrite("unvec", "unvec(vec(X)) = X", C)
def _unvec_vec(g, m, n):
    return g.args[0] if g.op == "vec" and g.args[0].shape == (m, n) else None


@rewrite("unvec", "unvec(sv) = s unvec(v)", C)
def _unvec_scaled(g, m, n):
    return _linear(g, lambda v: A.unvec(v, m, n))


def _kron_shape(a, b):
    return (product(a.rows, b.rows), product(a.cols, b.cols))


@rewrite("kron", "A ⊗ 0 = 0", C)
def _kron_zero(a, b):
    return zero(_kron_shape(a, b)) if is_zero(a) or is_zero(b) else None


@rewrite("kron", "scalars come out of a Kronecker product: sA ⊗ tB = st(A ⊗ B)", C)
def _kron_scaled(a, b):
    sa, ca = _scalar_parts(a)
    sb, cb = _scalar_parts(b)
    return mul(*sa, *sb, A.kron(ca, cb)) if sa or sb else None


@rewrite("kron", "I ⊗ I = I", C)
def _kron_eye(a, b):
    return eye(_kron_shape(a, b)[0]) if a.op == "eye" and b.op == "eye" else None


@rewrite("kron", "𝟙𝟙ᵀ ⊗ 𝟙𝟙ᵀ = 𝟙𝟙ᵀ", C)
def _kron_ones(a, b):
    return ones_like(_kron_shape(a, b)) if is_ones_matrix(a) and is_ones_matrix(b) else None


@rewrite(("T", "kron"), "(A ⊗ B)ᵀ = Aᵀ ⊗ Bᵀ", C)
def _t_kron(x):
    return A.kron(transpose(x.args[0]), transpose(x.args[1]))


@rewrite(("pair", "kron", "kron"), "mixed product: (A ⊗ B)(C ⊗ D) = AC ⊗ BD")
def _kron_mixed(a, b):
    if a.args[0].cols == b.args[0].rows and a.args[1].cols == b.args[1].rows:
        return A.kron(matmul(a.args[0], b.args[0]), matmul(a.args[1], b.args[1]))
    return None
