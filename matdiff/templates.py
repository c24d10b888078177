"""Rule templates: the differentials, pullbacks and derivatives of the rule
tables (written in the matdiff language) parsed once and instantiated as IR.
Above the parser and the builder, which the registry below them must not
import."""

from functools import lru_cache

from . import ir
from .build import Builder
from .errors import DerivativeError
from .ops import registry
from .ops.registry import elementwise, functions, params
from .parser import parse_template

PLACEHOLDERS = ("G", "Y", "X", "A", "B", "L", "R", "O", "D", "p", "x",
                "dX", "dp", "dx", "dA", "dB")


@lru_cache(maxsize=None)
def template(text, extra=()):
    """A rule template parsed once; `extra` names more placeholders (the
    parameters of an element-wise function)."""
    return parse_template(text, PLACEHOLDERS + tuple(extra), functions())


def instantiate(text, env, extra=()):
    return Builder({"pi": ir.pi(), **env}, functions()).build(template(text, tuple(extra)))


@lru_cache(maxsize=None)
def _derivative_text(fname, param=None):
    entry = elementwise().get(fname)
    if param is not None:
        text = (entry or {}).get("partial", {}).get(param)
        if text is None:
            raise DerivativeError(f"the function {fname!r} has no derivative with respect to "
                                  f"its parameter {param!r}")
        return text
    if entry is None or "derivative" not in entry:
        raise DerivativeError(f"the function {fname!r} has no derivative")
    return entry["derivative"]


def derivative(fname, x, args=(), wrt=0):
    """∂f/∂x (wrt 0) or ∂f/∂(parameter wrt) as IR, from the element-wise table,
    at x and the parameter values `args`."""
    names = params(fname)
    param = None if wrt == 0 else names[wrt - 1]
    env = {"x": x, **dict(zip(names, args))}
    return instantiate(_derivative_text(fname, param), env, names)


registry.CLEAR_HOOKS.extend([template.cache_clear, _derivative_text.cache_clear])
