"""matdiff: closed-form gradients of scalar functions of matrices.

    >>> import matdiff
    >>> g = matdiff.grad("-tr(Y^T log softmax(XW+b))", wrt="W", vars={"Y": "onehot"})
    >>> g.text
    'Xᵀ(softmax(XW + 𝟙bᵀ) − Y)'
"""

from .errors import MatdiffError, ParseError, ShapeError, DerivativeError
from .errors import NameError_ as UnknownNameError
# The op constructors and their named rewrites register with the IR here, so
# that ir.tr(x) & co. exist wherever matdiff is imported.
from .ops import algebra as _algebra, rewrites as _rewrites  # noqa: F401

__version__ = "0.1.0"

__all__ = ["grad", "kernel", "Gradient", "MatdiffError", "ParseError", "ShapeError",
           "DerivativeError", "UnknownNameError", "__version__"]


def grad(expr, wrt, vars=None):
    """The gradient of the scalar `expr` with respect to `wrt`.

    wrt: a name (returns a Gradient) or a list of names (returns {name: Gradient}).
    vars: declarations, {"Y": "onehot", "X": "matrix(N,D)"}.
    """
    from .api import derive
    return derive(expr, wrt, vars)


def kernel(expr, wrt, vars=None, backend="numpy"):
    """The compiled value_and_gradient(**arrays) backprop kernel of `backend`
    ("numpy", "jax": jax.numpy, jit-compatible, or "torch")."""
    from .api import derive_all
    return derive_all(expr, wrt, vars).namespace(backend)["value_and_gradient"]


def __getattr__(name):
    if name == "Gradient":
        from .api import Gradient
        return Gradient
    raise AttributeError(name)
