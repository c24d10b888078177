"""The --format torch module: value / value_and_gradient / gradient on
tensors, and `Function`, a torch.autograd.Function whose forward saves the
closed-form gradients (only when an input needs one) and whose backward
scales them by the incoming gradient; `function(*tensors)` applies it.

Every input is a tensor (a scalar a 0-d tensor); nothing is created on the
CPU or in float64 by itself: constant arrays take the dtype and device of an
input (`new_zeros`, `eye(..., dtype=, device=)`), so the same module runs on
CPU and CUDA tensors, float32 and float64. Axis keywords are `dim=`.
"""

import ast
import math

from . import pyast as P
from .backends import ArrayEmitter
from .ops import numpy_code, torch_code

_AUTOGRAD_FUNCTION = '''def _autograd_function(value, value_and_gradient, names, grads):
    # (Function, function): value(*tensors) in the order of `names` as a
    # torch.autograd.Function. The inputs at positions `grads` (the gradients
    # value_and_gradient returns, None for an intermediate) get the closed
    # form, saved by forward; any other input that needs a gradient gets
    # torch.autograd.grad of value, in backward.
    wrt = [i for i in grads if i is not None]

    def call(fn, args):
        return fn(**dict(zip(names, args)))

    class Function(_torch.autograd.Function):

        @staticmethod
        def forward(ctx, *args):
            need = ctx.needs_input_grad
            if any(need[i] for i in wrt):
                v, g = call(value_and_gradient, args)
                g = [gi for gi, i in zip((g,) if len(grads) == 1 else g, grads) if i is not None]
            else:
                v, g = call(value, args), []
            ctx.rest = [i for i in range(len(args)) if need[i] and i not in wrt]
            ctx.n_grads = len(g)
            ctx.save_for_backward(*g, *(args if ctx.rest else ()))
            return v

        @staticmethod
        @_torch.autograd.function.once_differentiable
        def backward(ctx, ct):
            saved = ctx.saved_tensors
            out = [None] * len(names)
            for i, gi in zip(wrt, saved[:ctx.n_grads]):
                out[i] = ct * gi
            if ctx.rest:
                args = list(saved[ctx.n_grads:])
                with _torch.enable_grad():
                    xs = [args[i].detach().requires_grad_() for i in ctx.rest]
                    for i, x in zip(ctx.rest, xs):
                        args[i] = x
                    cs = _torch.autograd.grad(call(value, args), xs, ct, allow_unused=True)
                for i, c in zip(ctx.rest, cs):
                    out[i] = c
            return tuple(out)

    def function(*args, **kwargs):
        args = args + tuple(kwargs.pop(n) for n in names[len(args):] if n in kwargs)
        if kwargs or len(args) != len(names):
            raise TypeError(f"function takes the tensors {', '.join(names)}")
        return Function.apply(*args)
    function.__doc__ = f"function({', '.join(names)}): value, differentiated by the closed form"
    return Function, function
'''

_BY_DIRECTIONS = '''def _by_directions(directional, x, arrays):
    # the columns of a Hessian / Jacobian: directional derivatives along each
    # basis direction of x, in vec order (column stacking)
    x = _torch.as_tensor(x)
    basis = _torch.eye(x.numel(), dtype=x.dtype, device=x.device)
    cols = []
    for k in range(x.numel()):
        e = basis[k].reshape(x.shape[::-1]).T if x.dim() == 2 else basis[k].reshape(x.shape)
        col = _torch.as_tensor(directional(e, **arrays), dtype=x.dtype, device=x.device)
        cols.append(col.T.reshape(-1) if col.dim() == 2 else col.reshape(-1))
    return _torch.stack(cols, dim=1)
'''

_RAVEL_F = '''def _ravel_f(x):
    # NumPy's ravel(x, order='F'): column stacking
    return x.T.reshape(-1) if x.dim() == 2 else x.reshape(-1)
'''

_RESHAPE_F = '''def _reshape_f(x, shape):
    # NumPy's reshape(x, shape, order='F'): the axes reversed, reshaped, reversed back
    x = x.permute(*reversed(range(x.dim()))).reshape(tuple(reversed(shape)))
    return x.permute(*reversed(range(x.dim())))
'''

class TorchEmitter(ArrayEmitter):
    key = "torch"
    np = "_torch"
    LIBRARY = "PyTorch (tensors on any device, any float dtype; Function is a torch.autograd.Function)"
    IMPORTS = (("torch", "_torch"),)
    OWN_HELPERS = {"_autograd_function": _AUTOGRAD_FUNCTION, "_by_directions": _BY_DIRECTIONS,
                   "_ravel_f": _RAVEL_F, "_reshape_f": _RESHAPE_F, **torch_code.HELPERS}
    RENAMES = {"max": "amax", "min": "amin", "repeat": "repeat_interleave"}
    KEYWORDS = {"axis": "dim", "keepdims": "keepdim"}
    ORDERS = {"ravel": "_ravel_f", "reshape": "_reshape_f"}  # torch has C order only
    CALLS = torch_code.CALLS
    CODE = (torch_code, numpy_code)  # named code functions: PyTorch's own first

    def tensor(self, code):
        if self.ref is None:
            return self.f("as_tensor", code)
        return self.f("as_tensor", code, dtype=P.attr(self.ref, "dtype"),
                      device=P.attr(self.ref, "device"))

    def copy(self, code):
        return P.call(P.attr(code, "clone"))

    def broadcast(self, code, node):
        # zeros of the inputs' dtype and device, plus code (a number, or a tensor
        # that broadcasts): a tensor of its own
        shape = self.shape_code(node)
        if self.ref is None:
            return P.binop(self.f("zeros", shape), "+", code)
        return P.binop(code, "+", P.call(P.attr(self.ref, "new_zeros"), shape))

    def e_eye(self, n):
        if self.ref is None:
            return self.f("eye", self.dim(n.attr))
        return self.f("eye", self.dim(n.attr), dtype=P.attr(self.ref, "dtype"),
                      device=P.attr(self.ref, "device"))

    def e_pi(self, n):
        return P.const(math.pi)  # a Python number, like every other constant

    ARITHMETIC = ("add", "mul", "matmul", "T", "let")

    def _integer_power_of_a_number(self, node):
        base, e = node.args
        return (self.is_static(base) and base.is_scalar and e.op == "const"
                and e.attr.denominator == 1)

    def lite(self, node):
        # torch functions take tensors, not Python numbers: a function of numbers
        # only (sqrt(2/π), σ(2𝟙)) gets its argument as a tensor of the inputs' kind
        # (a number: a constant, a size, or arithmetic of them; a function of
        # numbers is a tensor already)
        if node.args and node.op not in self.ARITHMETIC and node not in self.done and not (
                node.op == "pow" and self._integer_power_of_a_number(node)):
            arg = node.args[0]
            if self.is_static(arg) and arg not in self.done and (
                    arg.op in self.ARITHMETIC or not arg.args):
                code, full = self.lite(arg)
                self.done[arg] = (self.tensor(code), full)
        return super().lite(node)

    def e_pow(self, n):
        if self._integer_power_of_a_number(n):  # N², 1/N: Python arithmetic
            return P.binop(self.expr(n.args[0]), "**", P.const(float(n.args[1].attr)))
        return self.code("power")(self, n)

    def wrapper(self):
        # Function, function = _autograd_function(value, value_and_gradient, names, positions)
        target = ast.Tuple(elts=[P.store("Function"), P.store("function")], ctx=ast.Store())
        return "_autograd_function", target
