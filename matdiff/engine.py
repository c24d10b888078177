"""The pipeline: source -> AST -> shapes -> IR -> gradients."""

import sys

from . import ir
from .ops import registry
from .build import Builder
from .deep import in_deep, run_deep
from .diff import gradients, symmetrize
from .errors import NameError_, DerivativeError, MatdiffError, ParseError
from .parser import parse_program
from .shapes import Inference, parse_decl, resolved

# Long sums and deep nesting recurse deeply; Python-to-Python calls use no C
# stack since 3.11, so a higher limit is safe. Set once, at import.
if sys.getrecursionlimit() < 20000:
    sys.setrecursionlimit(20000)

# A level of nesting takes at least one character and at most about ten
# frames of parsing, inference and building: this many characters fit the limit.
_INLINE_CHARS = 1500


def normalize_decls(vars):
    """vars: {'Y': 'onehot', 'X': 'matrix(N,D)'} or ['Y:onehot', 'X:N×D', ...].

    A list holds the --var texts of the command line: errors show them as
    typed (`--var X:matrx(N,D)` with a caret); a dict's entries are shown as
    NAME:DECL."""
    out = {}
    if not vars:
        return out
    if isinstance(vars, dict):
        items = []
        for name, decl in vars.items():
            if isinstance(decl, (tuple, list)):
                kind, dims = decl[0], list(decl[1:])
                decl = f"{kind}({','.join(str(d) for d in dims)})" if dims else kind
            items.append((f"{name}:{decl}", None))
    else:
        items = [(str(v), "--var") for v in vars]
    first = {}
    for text, option in items:
        name, decl, at = _split_decl(text, option)
        parsed = parse_decl(decl, text, at, option)
        if name in out and out[name] != parsed:
            raise NameError_(f"{name} is declared twice, differently (first as {first[name]!r})",
                             text, (0, len(text)), option)
        out[name] = parsed
        first.setdefault(name, text.strip())
    return out


def _split_decl(text, option):
    """'X:matrix(N,D)' -> ('X', 'matrix(N,D)', offset of the declaration)."""
    if ":" not in text:
        raise NameError_(f"bad declaration {text!r}: expected NAME:KIND, NAME:KIND(DIMS) "
                         f"or NAME:ROWS×COLS", text, (len(text), len(text) + 1), option)
    name, decl = text.split(":", 1)
    start = len(name) - len(name.lstrip())
    if not name.strip().isidentifier():
        shown = name.strip()
        raise NameError_(f"bad variable name {shown!r} in a declaration", text,
                         (start, start + max(1, len(shown))), option)
    return name.strip(), decl, len(name) + 1


class Problem:
    """A parsed, shape-checked program and its IR."""

    def __init__(self, src, vars=None):
        if not isinstance(src, str):
            raise MatdiffError(f"the expression must be a string, not {type(src).__name__}")
        if not src.strip():
            raise ParseError("empty expression", src, (0, max(1, len(src))))
        # Each stage recurses once per nesting level; short inputs cannot nest
        # past the limit set above, long ones get a deep worker (matdiff.deep).
        if len(src) > _INLINE_CHARS and not in_deep():
            run_deep(self._setup, src, vars)
        else:
            self._setup(src, vars)

    def _setup(self, src, vars):
        try:
            self._build(src, vars)
        except RecursionError:
            raise MatdiffError("the expression is too large or too deeply nested", src,
                               (0, max(1, len(src)))) from None

    def _build(self, src, vars):
        self.src = src
        self.decls = normalize_decls(vars)
        self.dimensions = set()
        stmts = parse_program(src, registry.functions(), declared=self.decls.keys())
        inf = Inference(src, self.decls)
        inf.program(stmts)
        env = {}
        self.variables = {}
        for name, (kind, shape) in inf.vars.items():
            dims = tuple(resolved(d) for d in shape)
            node = ir.var(name, kind, dims)
            env[name] = node
            self.variables[name] = node
        for name in inf.dim_scalars:
            env[name] = ir.dim(resolved(inf.named_dims[name]))
            self.dimensions.add(name)
        for name in inf.constants:
            env[name] = ir.pi()
        # a size (𝟙, I, unvec's m, n), or the shape of an op built generically
        sized = {k: tuple(map(resolved, d)) if isinstance(d, tuple) else resolved(d)
                 for k, d in inf.sized.items()}
        builder = Builder(env, registry.functions(), src, sized, inf.kept)
        self.intermediates = {}
        node = None
        for name, ast in stmts:
            node = builder.build(ast)
            if name is not None:
                node = ir.let(name, node)
                env[name] = node
                self.intermediates[name] = node
        self.root = node
        # Where a rule rebuilds an intermediate's definition, print its name.
        self.names = {n.args[0]: k for k, n in self.intermediates.items()
                      if n.args[0].op not in ("var", "const", "dim")}

    def target(self, name):
        if name in self.variables:
            return self.variables[name]
        if name in self.intermediates:
            return self.intermediates[name]
        known = ", ".join(list(self.variables) + list(self.intermediates)) or "none"
        what = (f"{name!r} is a dimension (a size), not a variable" if name in self.dimensions
                else f"{name!r} is the constant π" if name in ("pi", "π")
                else f"variable {name!r} is not in the expression")
        raise NameError_(f"{what} (its variables: {known})", name, (0, max(1, len(name))),
                         "--wrt")

    def gradients(self, wrt):
        if wrt and not self.root.is_scalar:
            start = len(self.src) - len(self.src.lstrip())
            raise DerivativeError(
                f"the function is not scalar (its shape is {'×'.join(map(str, self.root.shape))}): "
                f"a gradient needs a scalar function; wrap it in tr(), sum() or a norm",
                self.src, (start, len(self.src.rstrip())))
        targets = [self.target(w) for w in wrt]
        self.adjoints = {}  # node -> its adjoint: names the δ's of a where block
        grads = gradients(self.root, targets, self.adjoints)
        out = {}
        for name, t in zip(wrt, targets):
            g = grads[t]
            if t.op == "var" and t.attr[1] in ("symmetric", "spd"):
                g = symmetrize(g)
            out[name] = g
        return out

    def kind(self, name):
        node = self.target(name)
        if node.op == "var":
            return node.attr[1]
        return "scalar" if node.is_scalar else "vector" if node.cols == 1 else "matrix"


def shape_of(node):
    """The user-facing shape: () scalar, (n,) vector, (m, n) matrix."""
    r, c = node.shape
    if (r, c) == (1, 1):
        return ()
    if c == 1:
        return (r,)
    if r == 1:
        return (c,)
    return (r, c)
