"""The pipeline: source -> AST -> shapes -> IR -> gradients."""

import sys

from . import ir, ruletable
from .build import Builder
from .deep import in_deep, run_deep
from .diff import gradients, symmetrize
from .errors import NameError_, DerivativeError, MatdiffError
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
    """vars: {'Y': 'onehot', 'X': 'matrix(N,D)'} or ['Y:onehot', ...]."""
    out = {}
    if not vars:
        return out
    items = vars.items() if isinstance(vars, dict) else (_split_decl(v) for v in vars)
    for name, decl in items:
        if not isinstance(name, str) or not name.isidentifier():
            raise NameError_(f"bad variable name {name!r} in a declaration")
        if isinstance(decl, (tuple, list)):
            kind, dims = decl[0], list(decl[1:])
            decl = f"{kind}({','.join(str(d) for d in dims)})" if dims else kind
        out[name] = parse_decl(str(decl), name)
    return out


def _split_decl(text):
    if ":" not in text:
        raise NameError_(f"bad declaration {text!r}: expected NAME:KIND or NAME:KIND(DIMS)")
    name, decl = text.split(":", 1)
    return name.strip(), decl.strip()


class Problem:
    """A parsed, shape-checked program and its IR."""

    def __init__(self, src, vars=None):
        if not isinstance(src, str) or not src.strip():
            raise MatdiffError("empty expression")
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
        stmts = parse_program(src, ruletable.functions(), declared=self.decls.keys())
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
        for name in inf.constants:
            env[name] = ir.pi()
        sized = {k: resolved(d) for k, d in inf.sized.items()}
        builder = Builder(env, ruletable.functions(), src, sized)
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
        raise NameError_(f"variable {name!r} is not in the expression (its variables: {known})")

    def gradients(self, wrt):
        if wrt and not self.root.is_scalar:
            start = len(self.src) - len(self.src.lstrip())
            raise DerivativeError(
                f"the function is not scalar (its shape is {'×'.join(map(str, self.root.shape))}): "
                f"a gradient needs a scalar function; wrap it in tr(), sum() or a norm",
                self.src, (start, len(self.src.rstrip())))
        targets = [self.target(w) for w in wrt]
        grads = gradients(self.root, targets)
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
