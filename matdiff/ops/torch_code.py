"""PyTorch code that differs from the NumPy code of matdiff/ops/numpy_code.py:
functions of the same name override those (`Emitter.code`), `HELPERS` are
PyTorch kernels of the ops' helpers, and `CALLS` replaces a NumPy function
wherever it appears (a template or a named function) with a helper.
"""

from .. import pyast as P
from . import numpy_code
from .numpy_code import rank, sub_chain

HELPERS = {
    "_elu": '''def _elu(x, alpha):
    # x for x > 0, alpha (e^x - 1) otherwise (expm1 of min(x, 0): no overflow)
    return _torch.where(x > 0, x, alpha * _torch.expm1(_torch.clamp(x, max=0.0)))
''',
    "_leaky_relu": '''def _leaky_relu(x, alpha):
    return _torch.where(x > 0, x, alpha * x)
''',
    "_add_diagonal": '''def _add_diagonal(a, v):
    # a + diag(v) for a tensor a of the kernel's own: v added in place along
    # its diagonal (a view), no n×n diag(v)
    a.diagonal().add_(v)
    return a
''',
    "_kron": '''def _kron(a, b):
    # torch.kron of a non-contiguous tensor (a transpose) can fail: contiguous first
    return _torch.kron(a.contiguous(), b.contiguous())
''',
}

# numpy function -> the helper that replaces it (a library bug worked around)
CALLS = {"kron": "_kron"}


def inverse_solve(em, args):
    """(inv) l X⁻¹ at the end of a chain with a vector l on the left:
    solve(Xᵀ, l) is already that vector (no .T of a 1-D tensor, which PyTorch
    deprecates); otherwise NumPy's solve forms."""
    for i, f in enumerate(args):
        if f.op == "inv" and f not in em.done and em.uses.get(f, 0) < 2:
            if i == len(args) - 1 and rank(sub_chain(args[:i])) < 2 and not (
                    args[0].op == "T" and args[0].args[0].op == "ones"):
                from ..ir import transpose
                lt = em.expr(transpose(sub_chain(args[:i])))
                return em.f("linalg.solve", P.attr(em.expr(f.args[0]), "T"), lt)
            break
    return numpy_code.inverse_solve(em, args)
