"""Code for other array libraries: the NumPy emitter, overridden per node and
per template (the pattern of SymPy's JaxPrinter(NumPyPrinter)).

An `ArrayEmitter` subclass (matdiff.emit_jax, matdiff.emit_torch) names its
array module (`np`), its column of the rule table (`key`: a `jax` / `torch`
entry next to `numpy` where the spelling differs) and the few helpers it
writes differently. Every other template is the `numpy` one, translated as a
tree: `_np.<path>` becomes `<np>.<path>` (renamed where the library's name
differs) and keyword arguments are renamed (`axis=` is `dim=` in PyTorch).
The DAG walk, the CSE, the broadcasting forms and the rewrites (diag scaling
as broadcasting, solves for single-use inverses, tr(AB) as a sum) are the
NumPy emitter's, inherited.

Nothing here imports JAX or PyTorch: it only writes code. `source(...)`
gives the module of a backend by name.
"""

import ast
from . import pyast as P
from .ops import numpy_code
from .numpy_emit import HELPERS, Emitter, _template, _rank

class _Translate(ast.NodeTransformer):
    """`_np.a.b(...)` -> `<root>.<renamed a.b>(...)`, keywords renamed; a call
    with order='F' that the library lacks -> its helper (orders)."""

    def __init__(self, root, renames, keywords, orders=None, calls=None):
        self.root, self.renames, self.keywords = root, renames, keywords
        self.orders, self.calls = orders or {}, calls or {}

    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                and f.value.id == self.root and f.attr in self.calls:
            return ast.copy_location(P.call(self.calls[f.attr], *node.args, **{
                k.arg: k.value for k in node.keywords}), node)
        fortran = [k for k in node.keywords if k.arg == "order"
                   and isinstance(k.value, ast.Constant) and k.value.value == "F"]
        if fortran and isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                and f.value.id == self.root and f.attr in self.orders:
            keywords = [k for k in node.keywords if k.arg != "order"]
            return ast.copy_location(P.call(self.orders[f.attr], *node.args,
                                            **{k.arg: k.value for k in keywords}), node)
        return node

    def visit_Attribute(self, node):
        path, base = [], node
        while isinstance(base, ast.Attribute):
            path.append(base.attr)
            base = base.value
        if isinstance(base, ast.Name) and base.id == "_np":
            dotted = ".".join(reversed(path))
            new = P.attr(self.root, *self.renames.get(dotted, dotted).split("."))
            return ast.copy_location(new, node)
        self.generic_visit(node)
        return node

    def visit_keyword(self, node):
        self.generic_visit(node)
        if node.arg in self.keywords:
            node.arg = self.keywords[node.arg]
        return node


class ArrayEmitter(Emitter):
    key = None        # the rule-table column of this backend
    IMPORTS = ()      # (module, alias) pairs of the generated module
    OWN_HELPERS = {}  # helper name -> its text for this backend (else numpy's, translated)
    RENAMES = {}      # numpy path -> this library's path, where they differ
    KEYWORDS = {}     # numpy keyword -> this library's
    ORDERS = {}       # function -> the helper doing it with order='F', where the library can't
    CALLS = {}        # function -> the helper that replaces it (a library bug worked around)
    LIBRARY = ""      # for the docstring

    def __init__(self, variables):
        super().__init__(variables)
        arrays = [name for name, node in variables.items() if node.shape != (1, 1)]
        first = arrays[0] if arrays else next(iter(variables), None)
        # the input whose dtype and device every constant array follows
        self.ref = P.name(self.params[first]) if first is not None else None
        self._static = {}

    # -- translation ---------------------------------------------------------
    def _translator(self):
        return _Translate(self.np, self.RENAMES, self.KEYWORDS, self.ORDERS, self.CALLS)

    def translate(self, tree):
        return self._translator().visit(P.substitute(tree, {}))

    def f(self, path, *args, **kw):
        order = kw.get("order")
        if path in self.ORDERS and isinstance(order, ast.Constant) and order.value == "F":
            del kw["order"]
            return self.helper(self.ORDERS[path], *args, **kw)
        if path in self.CALLS:
            return self.helper(self.CALLS[path], *args, **kw)
        path = self.RENAMES.get(path, path)
        return P.call(f"{self.np}.{path}", *args,
                      **{self.KEYWORDS.get(k, k): v for k, v in kw.items()})

    def helper(self, hname, *args, **kw):
        self.need_helpers(hname + "(")
        return P.call(hname, *args, **kw)

    def op_tree(self, op):
        """The op's own template in this backend's column (`jax` / `torch`),
        else its `numpy` one translated."""
        own = op.get(self.key)
        if own is not None:
            self.need_helpers(own)
            return _template(own)
        text = op.get("numpy")
        if text is None:
            return super().op_tree(op)  # the error
        tree = self._translated(text)
        self.need_helpers(self._translated_text(text))
        return tree

    def fill(self, tree, slots):
        slots = dict(slots)
        for slot, value in list(slots.items()):
            used = sum(isinstance(t, ast.Name) and t.id == "_slot_" + slot for t in ast.walk(tree))
            if used > 1 and not isinstance(value, (ast.Name, ast.Constant)):
                tmp = f"_t{len(self.stmts)}"  # a slot used twice is computed once
                self.stmts.append(P.assign(tmp, value))
                slots[slot] = P.name(tmp)
        return super().fill(tree, slots)

    def _translated(self, text):
        cache = self.__class__.__dict__.get("_tcache")
        if cache is None:
            cache = self.__class__._tcache = {}
        if text not in cache:
            tree = self.translate(_template(text))
            cache[text] = (tree, ast.unparse(tree))
        return cache[text][0]

    def _translated_text(self, text):
        self._translated(text)
        return self.__class__._tcache[text][1]

    def helper_text(self, name):
        if name in self.OWN_HELPERS:
            return self.OWN_HELPERS[name]
        return ast.unparse(self._translator().visit(ast.parse(HELPERS[name]))) + "\n"

    def need_helpers(self, text):
        for h in {**HELPERS, **self.OWN_HELPERS}:
            if h + "(" in text and h not in self.helpers:
                self.helpers.add(h)
                self.need_helpers(self.helper_text(h))

    # -- values that follow the inputs' dtype (and device) -------------------
    def is_static(self, node):
        """No variable beneath: the code is a Python number (or a constant array)."""
        hit = self._static.get(node)
        if hit is None:
            hit = not numpy_code.is_input(node) and all(self.is_static(a) for a in node.args)
            self._static[node] = hit
        return hit

    def dtype(self):
        raise NotImplementedError

    def tensor(self, code):
        """code (a Python number or an array) as an array of the inputs' dtype."""
        raise NotImplementedError

    def finish(self, node):
        code = self.expr(node)
        if numpy_code.is_callers_array(node):
            return self.copy(code)  # never the caller's array
        if _rank(node) == 0 and self.is_static(node):
            return self.tensor(code)
        return code

    def copy(self, code):
        return code  # JAX arrays are immutable: nothing to copy (PyTorch clones)

    def matrix_result(self, code, node):
        if _rank(node) == 2 and not self.is_static(node):
            return code  # an array of the inputs' kind already, of its own (finish)
        return self.f("atleast_2d", self.tensor(code))

    # -- module assembly -----------------------------------------------------
    def head(self, src, what):
        doc = (f"Generated by matdiff: value(**arrays)" + (f" and {what}" if what else "")
               + f", in {self.LIBRARY}.")
        imports = [ast.Import(names=[ast.alias(name=m, asname=a)]) for m, a in self.IMPORTS]
        texts = [self.helper_text(h) for h in sorted(self.helpers)]
        if any("_math." in t for t in texts):
            imports.append(ast.Import(names=[ast.alias(name="math", asname="_math")]))
        return ([ast.Expr(value=ast.Constant(value=doc))] + imports
                + [P.assign("_EXPRESSION", P.const(src.strip())), P.assign("_float", P.name("float"))]
                + texts)

    def wrapper(self, params, wrt):
        """(helper name, comment) of the autodiff wrapper this backend defines."""
        raise NotImplementedError

    def extra_functions(self, params, wrt):
        # The inputs' positions of the gradients (None: an intermediate, not an input).
        inputs = {p: i for i, p in enumerate(params)}
        positions = [inputs.get(self.params.get(w)) for w in wrt]
        helper, target = self.wrapper()
        self.need_helpers(helper + "(")
        call = P.call(helper, P.name("value"), P.name("value_and_gradient"),
                      P.tuple_(*[P.const(p) for p in params]),
                      P.tuple_(*[P.const(i) for i in positions]))
        stmt = ast.Assign(targets=[target], value=call, lineno=0)
        return [stmt]
