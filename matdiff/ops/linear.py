"""Matrix forms of linear ops for forward.linear_matrix: M with vec(E) = M v
for E = op(…) linear in the vector v, given `lin` (the same for an argument).
None where the op has no handled form."""

from .. import ir


def _size(node):
    r, c = node.shape
    return r if c == 1 else c


def _sum(E, v, lin):
    a = E.args[0]
    if a.cols == 1 or a.rows == 1:  # sum(a) = 𝟙ᵀa
        MF = lin(a)
        return None if MF is None else ir.matmul(ir.transpose(ir.ones(_size(a))), MF)
    return None


def _of_scalar(E, v, lin):
    # tr and the diagonal of a scalar are the scalar itself
    return lin(E.args[0]) if E.args[0].is_scalar else None


_FORMS = {"sum": _sum, "tr": _of_scalar, "diagvec": _of_scalar}


def op_matrix(E, v, lin):
    form = _FORMS.get(E.op)
    return form(E, v, lin) if form is not None else None


def scaling_factor(F, B, v, lin):
    """A chain … F B with B a column: diag(w) B = diag(B) w, so the matrix of
    w's dependence on v gives F B's: diag(B) M_w. None unless F is diag(w)."""
    if F.op == "diag" and B is not None and B.cols == 1:
        MF = lin(F.args[0])
        return None if MF is None else ir.matmul(ir.diag(B), MF)
    return None
