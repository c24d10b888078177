"""The Python API: Gradient objects and their outputs."""

from .deep import run_deep as _run_deep
from .engine import Problem, shape_of
from .printing import to_text, to_latex


# Below this IR depth every stage fits the ordinary stack: a deep worker
# (a thread, ~1 ms to start) is used only for inputs deeper than that.
_SHALLOW = 300


def run_deep(fn, *args, depth=None, **kwargs):
    if depth is not None and depth < _SHALLOW:
        return fn(*args, **kwargs)
    return _run_deep(fn, *args, **kwargs)


class Result:
    """A problem and its gradients for several variables, derived in one pass."""

    def __init__(self, expr, wrt, vars=None):
        if isinstance(wrt, str):
            wrt = [wrt]
        self.wrt = list(dict.fromkeys(wrt))
        # Every stage recurses once per nesting level: run in a deep worker.
        self.problem = Problem(expr, vars)  # goes deep by itself for long sources
        self.nodes = run_deep(self.problem.gradients, self.wrt, depth=self.problem.root.depth)
        self._ns = {}

    def gradient(self, name):
        return Gradient(self, name)

    def numpy_source(self, names=None):
        """The generated module for the gradients of `names` (default: all, in order)."""
        from .numpy_emit import module_source
        names = self.wrt if names is None else names
        grads = {n: self.nodes[n] for n in names}
        depth = max([self.problem.root.depth] + [g.depth for g in grads.values()])
        return run_deep(module_source, self.problem, grads, depth=depth)

    def numpy_namespace(self, names=None):
        key = tuple(self.wrt if names is None else names)
        if key not in self._ns:
            from .numpy_emit import compile_module
            self._ns[key] = compile_module(self.numpy_source(key))
        return self._ns[key]

    def variables_json(self):
        p = self.problem
        return {name: {"kind": node.attr[1], "shape": [str(d) if not isinstance(d, int) else d
                                                       for d in shape_of(node)]}
                for name, node in p.variables.items()}

    def reserved(self):
        """Names a `where` block must not take."""
        return set(self.problem.variables) | set(self.problem.intermediates)

    def eye_name(self):
        return "eye" if "I" in self.problem.variables else "I"


class Gradient:
    """∂f/∂name in closed form."""

    def __init__(self, result, name):
        self._result = result
        self.name = name
        self.node = result.nodes[name]

    @property
    def expression(self):
        return self._result.problem.src

    @property
    def text(self):
        r = self._result
        return run_deep(to_text, self.node, r.problem.names, r.eye_name(), r.reserved(),
                        depth=self.node.depth)

    @property
    def where(self):
        """[(name, text)]: the shared parts the text names, in dependency order;
        `; `-joined before `body` they form a program that parses back."""
        from .printing import Printer, print_where
        r = self._result
        return run_deep(lambda: print_where(Printer(r.problem.names, r.eye_name()), self.node,
                                            r.reserved())[1], depth=self.node.depth)

    @property
    def body(self):
        """The text of the gradient itself, in terms of the `where` names."""
        return self.text.split("\n", 1)[0]

    @property
    def latex(self):
        r = self._result
        return run_deep(to_latex, self.node, r.problem.names, r.reserved(), depth=self.node.depth)

    @property
    def sympy(self):
        from .sympy_out import to_sympy
        return run_deep(to_sympy, self.node, depth=self.node.depth)

    @property
    def shape(self):
        return tuple(shape_of(self._result.problem.target(self.name)))

    def numpy_source(self):
        """The module `matdiff grad EXPR --wrt NAME --format numpy` prints."""
        return self._result.numpy_source([self.name])

    def numpy_function(self):
        """The compiled `gradient(**arrays)` callable."""
        return self._result.numpy_namespace([self.name])["gradient"]

    def _repr_latex_(self):
        from .printing import LatexPrinter
        name = LatexPrinter().name(self.name)
        return f"$\\frac{{\\partial f}}{{\\partial {name}}} = {self.latex}$"

    def __str__(self):
        return self.text

    def __repr__(self):
        return f"<Gradient ∂/∂{self.name} = {self.text}>"


def derive_all(expr, wrt, vars=None):
    return Result(expr, wrt, vars)


def derive(expr, wrt, vars=None):
    r = Result(expr, wrt, vars)
    if isinstance(wrt, str):
        return r.gradient(wrt)
    return {w: r.gradient(w) for w in r.wrt}
