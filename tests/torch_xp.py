"""The part of the NumPy API that matdiff/reference.py calls, on torch tensors,
so that the reference interpreter runs in PyTorch and torch.autograd
differentiates it: an independent PyTorch implementation of any program,
against which the generated torch kernels are checked.

    from matdiff import reference
    import torch_xp
    v = reference.evaluate(src, tensors, xp=torch_xp)   # a 0-d tensor
"""

import torch

DTYPE = torch.float64


def _t(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=DTYPE)


def _unary(f):
    return lambda x: f(_t(x))


abs = _unary(torch.abs)  # noqa: A001
cos = _unary(torch.cos)
cosh = _unary(torch.cosh)
exp = _unary(torch.exp)
expm1 = _unary(torch.expm1)
log = _unary(torch.log)
log1p = _unary(torch.log1p)
sign = _unary(torch.sign)
sin = _unary(torch.sin)
sinh = _unary(torch.sinh)
sqrt = _unary(torch.sqrt)
tanh = _unary(torch.tanh)
linalg = torch.linalg


def array(x, dtype=None):
    return _t(x)


def reshape(x, shape):
    return torch.reshape(_t(x), shape)


def dot(a, b):
    return _t(a) @ _t(b)


def eye(n):
    return torch.eye(n, dtype=DTYPE)


def full(shape, v):
    return torch.full(shape, v, dtype=DTYPE)


def where(c, a, b):
    a, b = _t(a), _t(b)
    return torch.where(_t(c), a, b)


def logaddexp(a, b):
    a, b = _t(a), _t(b)
    return torch.logaddexp(*torch.broadcast_tensors(a, b))


def _reduce(f):
    def reduce(x, axis=None, keepdims=False):
        x = _t(x)
        if axis is None:
            out = f(x)
            return out.reshape([1] * x.dim()) if keepdims else out
        return f(x, dim=axis, keepdim=keepdims)
    return reduce


sum = _reduce(torch.sum)  # noqa: A001
mean = _reduce(torch.mean)
max = _reduce(torch.amax)  # noqa: A001


class special:
    """scipy.special for the reference's erf."""
    erf = staticmethod(_unary(torch.special.erf))
