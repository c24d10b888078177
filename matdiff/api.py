"""The Python API: Gradient objects and their outputs."""

from .deep import run_deep as _run_deep
from .engine import Problem, shape_of
from .printing import LatexPrinter, Printer, print_where, where_lines


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

    def source(self, backend="numpy", names=None):
        """The generated module for `backend` ("numpy", "jax" or "torch") and the
        gradients of `names` (default: all, in order)."""
        from .emit import source
        names = self.wrt if names is None else names
        grads = {n: self.nodes[n] for n in names}
        depth = max([self.problem.root.depth] + [g.depth for g in grads.values()])
        return run_deep(source, self.problem, grads, backend, depth=depth)

    def numpy_source(self, names=None):
        """The generated NumPy module for the gradients of `names` (default: all, in order)."""
        return self.source("numpy", names)

    def namespace(self, backend="numpy", names=None):
        """The module of `backend`, executed: {"value": ..., "value_and_gradient": ..., ...}."""
        key = (backend, tuple(self.wrt if names is None else names))
        if key not in self._ns:
            from .numpy_emit import compile_module
            self._ns[key] = compile_module(self.source(backend, key[1]))
        return self._ns[key]

    def numpy_namespace(self, names=None):
        return self.namespace("numpy", names)

    def variables_json(self):
        p = self.problem
        return {name: {"kind": node.attr[1], "shape": [str(d) if not isinstance(d, int) else d
                                                       for d in shape_of(node)]}
                for name, node in p.variables.items()}

    def namer(self):
        """δ / h names for a where block, from the adjoints of this derivation."""
        from .diff import topo_order
        from .printing import Namer
        p = self.problem
        return Namer(getattr(p, "adjoints", None), topo_order(p.root), self.reserved())

    def printout(self, latex=False, inline=False, names=None):
        """([body of each gradient], [(name, definition)]): all the gradients
        with one `where` block for the parts they share (none with inline)."""
        from .printing import LatexPrinter, Printer, print_depth, print_results, shared_parts
        p = self.problem
        names = self.wrt if names is None else names
        roots = [self.nodes[n] for n in names]
        printer = LatexPrinter(p.names) if latex else Printer(p.names, self.eye_name())
        # choosing the parts walks the DAG without recursion; printing recurses
        # only down to the named parts, so a deep network's block needs no
        # deep worker (a thread)
        namer = self.namer()
        shared = {} if inline else shared_parts(roots, p.names, namer)
        return run_deep(print_results, printer, roots, namer, inline, shared,
                        depth=print_depth(roots, {**shared, **p.names}))

    def sympy_printout(self, inline=False):
        """([SymPy expression of each gradient], [(symbol, expression)]): the
        where block's shared parts as pairs, the way sympy.cse returns them,
        with the program's intermediates that the text shows by name (H1)
        among them: the pairs stand alone, with no program before them."""
        from .printing import _topo, shared_parts
        from .sympy_out import to_sympy_shared
        roots = [self.nodes[n] for n in self.wrt]
        shared = {} if inline else shared_parts(roots, self.problem.names, self.namer(),
                                                   lets=True)
        depth = max((r.depth for r in roots), default=0)
        return run_deep(to_sympy_shared, roots, shared, _topo(roots), depth=depth)

    def steps(self, fname=None):
        """The --steps derivation: a steps.Derivation (.text(), .latex(),
        .steps with each step's cited rules and terms; shows as LaTeX in a
        notebook)."""
        from .steps import derive_steps
        return run_deep(derive_steps, self, fname or self.function_name(),
                        depth=self.problem.root.depth)

    def function_name(self):
        return function_name(self.problem)

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
        self._cache = {}  # latex? -> (body, where definitions)

    @property
    def expression(self):
        return self._result.problem.src

    @property
    def text(self):
        r = self._result
        return "\n".join([self.body] + where_lines(self.where))

    @property
    def where(self):
        """[(name, text)]: the shared parts the text names, in dependency order;
        `; `-joined before `body` they form a program that parses back."""
        from .printing import Printer, print_where
        r = self._result
        return self._printed(False)[1]

    def _printed(self, latex):
        r = self._result
        if latex not in self._cache:
            printer = LatexPrinter(r.problem.names) if latex else Printer(r.problem.names,
                                                                          r.eye_name())
            self._cache[latex] = run_deep(print_where, printer, self.node, namer=r.namer(),
                                          depth=self.node.depth)
        return self._cache[latex]

    @property
    def body(self):
        """The text of the gradient itself, in terms of the `where` names."""
        return self._printed(False)[0]

    @property
    def latex(self):
        body, defs = self._printed(True)
        return " \\quad ".join([body] + where_lines(defs, latex=True))

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

    def source(self, backend="numpy"):
        """The module `matdiff grad EXPR --wrt NAME --format BACKEND` prints
        (backend "numpy", "jax" or "torch")."""
        return self._result.source(backend, [self.name])

    def function(self, backend="numpy"):
        """The compiled `gradient(**arrays)` of `backend`."""
        return self._result.namespace(backend, [self.name])["gradient"]

    def _repr_latex_(self):
        from .printing import LatexPrinter
        lp = LatexPrinter()
        f, name = lp.name(self._result.function_name()), lp.name(self.name)
        return f"$\\frac{{\\partial {f}}}{{\\partial {name}}} = {self.latex}$"

    def __str__(self):
        return self.text

    def __repr__(self):
        return f"<Gradient ∂/∂{self.name} = {self.text}>"


def function_name(problem):
    """What the output calls the function: the name the program's last
    statement binds, else L."""
    for name, node in reversed(list(problem.intermediates.items())):
        if node is problem.root:
            return name
    return "L"


def derive_all(expr, wrt, vars=None):
    return Result(expr, wrt, vars)


def derive(expr, wrt, vars=None):
    r = Result(expr, wrt, vars)
    if isinstance(wrt, str):
        return r.gradient(wrt)
    return {w: r.gradient(w) for w in r.wrt}
