"""Numeric value of an IR node: the tests' evaluator of IR.

    evaluate(node, {"X": array, "x": vector, "s": 1.5})

Arrays follow the NumPy conventions of the generated code: matrices 2-D,
vectors (and row vectors) 1-D, scalars floats. The node is translated by
numpy_emit.Emitter -- the same code path as `--format numpy` -- into one
function of its variables; named dimensions (sizes of 𝟙, I, `N` used as a
scalar) are read from the arrays' shapes (Emitter.dims). A node whose own
variables do not show a dimension it needs (tr's pullback G·I has only the
scalar G) takes `context`: further variable nodes whose arrays fix the
dimensions, e.g. the variables of the expression the rule belongs to.
Compiled functions are cached per node, so evaluating one node at many
points (finite differences) compiles it once.
"""

from functools import lru_cache

from . import pyast as P
from .diff import topo_order
from .numpy_emit import Emitter, compile_module, _head, _module_text


def source(node, context=()):
    """(Python source defining `_evaluate(**params)`, {var name: param name})."""
    variables = {}
    for n in list(topo_order(node)) + list(context):
        if n.op == "var":
            variables.setdefault(n.attr[0], n)
    em = Emitter(variables)
    (_, ret), = em.run([node])  # shared subexpressions become temporaries
    params = list(em.params.values())
    func = P.function("_evaluate", params, em.stmts + [P.ret(ret)])
    return _module_text(_head("", em, "") + [func]), dict(em.params)


@lru_cache(maxsize=None)
def compile_node(node, context=()):
    """A function arrays -> value of node (arrays keyed by variable name)."""
    src, params = source(node, tuple(context))
    f = compile_module(src)["_evaluate"]

    def value(arrays):
        missing = [name for name in params if name not in arrays]
        if missing:
            raise KeyError(f"no value for the variable(s) {', '.join(missing)}")
        return f(**{py: arrays[name] for name, py in params.items()})

    value.source = src
    return value


def evaluate(node, arrays, context=()):
    """The numeric value of node given {variable name: array}.

    context: extra variable nodes (their arrays must be given) from whose
    shapes named dimensions the node alone does not determine are read.
    """
    return compile_node(node, tuple(context))(arrays)
