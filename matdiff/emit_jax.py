"""The --format jax module: value / value_and_gradient / gradient in
jax.numpy (jit-compatible: no Python control flow on values, no in-place
update), and `function`, the value as a `jax.custom_vjp` whose backward pass
is matdiff's closed form, so that `jax.grad` of a larger model uses it.

Stable forms are JAX's own (jax.nn.sigmoid, log_softmax, logsumexp,
softplus as logaddexp); constant arrays take the inputs' dtype, so float32
inputs give float32 results (float64 needs `jax_enable_x64`).
"""

import ast

from . import pyast as P
from .backends import ArrayEmitter

_CUSTOM_VJP = '''def _custom_vjp(value, value_and_gradient, names, grads):
    # value(*arrays) in the order of `names`, as a jax.custom_vjp: the inputs
    # at positions `grads` (the gradients value_and_gradient returns, None for
    # an intermediate) get the closed form, any other input JAX's own vjp of value
    wrt = [i for i in grads if i is not None]

    def call(fn, args):
        return fn(**dict(zip(names, args)))

    @_jax.custom_vjp
    def f(*args):
        return call(value, args)

    def fwd(*primals):
        args = tuple(p.value for p in primals)
        if any(primals[i].perturbed for i in wrt):
            v, g = call(value_and_gradient, args)
            g = tuple(gi for gi, i in zip((g,) if len(grads) == 1 else g, grads) if i is not None)
        else:
            v, g = call(value, args), None
        rest = tuple(a if p.perturbed and i not in wrt else None
                     for i, (a, p) in enumerate(zip(args, primals)))
        return v, (g, args if any(r is not None for r in rest) else None, rest)

    def bwd(res, ct):
        g, args, rest = res
        out = [None] * len(names)
        if isinstance(ct, _jax.custom_derivatives.SymbolicZero):
            return tuple(out)
        if g is not None:
            for i, gi in zip(wrt, g):
                out[i] = ct * gi
        if args is not None:
            idx = [i for i, r in enumerate(rest) if r is not None]

            def part(*xs):
                full = list(args)
                for i, x in zip(idx, xs):
                    full[i] = x
                return call(value, full)
            _, pull = _jax.vjp(part, *[args[i] for i in idx])
            for i, c in zip(idx, pull(ct)):
                out[i] = c
        return tuple(out)

    f.defvjp(fwd, bwd, symbolic_zeros=True)

    def function(*args, **kwargs):
        args = args + tuple(kwargs.pop(n) for n in names[len(args):] if n in kwargs)
        if kwargs or len(args) != len(names):
            raise TypeError(f"function takes the arrays {', '.join(names)}")
        return f(*args)
    function.__doc__ = f"function({', '.join(names)}): value with the closed-form vjp"
    return function
'''

_BY_DIRECTIONS = '''def _by_directions(directional, x, arrays):
    # the columns of a Hessian / Jacobian: directional derivatives along each
    # basis direction of x, in vec order (column stacking), all at once (vmap)
    x = _jnp.asarray(x)
    basis = _jnp.eye(x.size, dtype=x.dtype)

    def column(e):
        col = directional(_jnp.reshape(e, x.shape, order='F'), **arrays)
        return _jnp.ravel(_jnp.asarray(col, dtype=x.dtype), order='F')
    return _jax.vmap(column)(basis).T
'''


_ADD_DIAGONAL = '''def _add_diagonal(a, v):
    # a + diag(v): an indexed update, which XLA does in place on a's buffer
    return a.at[_jnp.diag_indices(a.shape[0])].add(v)
'''


class JaxEmitter(ArrayEmitter):
    key = "jax"
    np = "_jnp"
    LIBRARY = "JAX (jax.numpy; jit-compatible; function() is a jax.custom_vjp)"
    IMPORTS = (("jax", "_jax"), ("jax.numpy", "_jnp"))
    OWN_HELPERS = {"_custom_vjp": _CUSTOM_VJP, "_by_directions": _BY_DIRECTIONS,
                   "_add_diagonal": _ADD_DIAGONAL}

    def dtype(self):
        return self.f("result_type", self.ref) if self.ref is not None else None

    def tensor(self, code):
        if self.ref is None:
            return self.f("asarray", code)
        return self.f("asarray", code, dtype=self.dtype())

    def broadcast(self, code, node):
        if isinstance(code, ast.Constant) or self.is_static(node):
            if self.ref is None:
                return self.f("full", self.shape_code(node), code)
            return self.f("full", self.shape_code(node), code, dtype=self.dtype())
        return self.f("broadcast_to", code, self.shape_code(node))

    def e_eye(self, n):
        if self.ref is None:
            return self.f("eye", self.dim(n.attr))
        return self.f("eye", self.dim(n.attr), dtype=self.dtype())

    def wrapper(self):
        # function = _custom_vjp(value, value_and_gradient, names, positions)
        return "_custom_vjp", P.store("function")
