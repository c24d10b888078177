"""`--steps`: the derivation written as the seeds write it by hand.

Starting from dL = d(f), each step takes the outermost differential d(Z) of
the current form, expands it with Z's rule (d(Z) = its differential as the
rule states it, citing the rule's name) and moves the argument's d to the
right with the trace identity of the rule's pullback (the rule's `moves`),
until only d of the variable is left: dL = tr(Gᵀ dX). The new form is shown
first as the pullback's template gives it (built with ir.without_rewrites),
then every named rewrite that fired while the adjoint was built, one step
each in the order they fired (ir.trace_rewrites records each firing's node
before and after: `Y𝟙 = 𝟙  [one-hot rows sum to one]`), then the form they
lead to. A named intermediate of a program opens a block of its own,
∂L/∂Z = its adjoint, walking backwards as backprop does.

In a differential, a scalar added to a vector or matrix is printed with its
broadcast (dz − 𝟙softmax(z)ᵀdz, not dz − softmax(z)ᵀdz); numbers stay bare
(1 − σ(z)), and the ∂L/∂X lines print as the gradients do.

Every form step keeps the terms it shows (node, G: dL = Σ tr(Gᵀ d node)) and
every rewrite step its two nodes, so a test can check each step numerically
(tests/test_steps.py).
"""

import contextlib

from . import ir
from . import templates
from .ops import registry
from .diff import topo_order, pullback, rule_env, symmetrize
from .printing import LatexPrinter, Printer, NEG, PROD

_MARK = "\u2062d"  # an invisible placeholder variable for d(arg)

# The identities the steps cite besides the rule table's (the ops' `name` and
# `moves`, ir.rules()): the method's own moves.
SYMMETRIC = "on symmetric dX, tr(Gᵀ dX) = tr(sym(G)ᵀ dX) with sym(G) = (G + Gᵀ)/2"
STEP_RULES = (
    "constant factor", "linearity", "the op's differential",
    "dL = tr(Gᵀ dX) reads off ∂L/∂X = G", "the gradient's transpose: (AB)ᵀ = BᵀAᵀ",
    "the gradient read as one factor", SYMMETRIC,
)


class Step:
    """One line of a derivation. kind: "function" (L = …), "header" (with
    respect to X), "form" (dL = …, `terms` its (node, G) pairs), "rule" (an
    expansion d(Z) = …), "rewrite" (a named rewrite, before = after, `nodes`
    the two), "adjoint" (∂L/∂Z of a named intermediate, `terms` too),
    "result" (∂L/∂X = G). `rules`: the identities it cites (a form reached
    by the rewrite steps just above it cites none of its own)."""
    __slots__ = ("kind", "text", "latex", "rules", "terms", "nodes")

    def __init__(self, kind, text, latex, rules=(), terms=None, nodes=None):
        self.kind, self.text, self.latex = kind, text, latex
        self.rules, self.terms, self.nodes = tuple(rules), terms, nodes

    def __repr__(self):
        return f"<Step {self.kind}: {self.text}>"


class Derivation:
    """The steps of the derivation of f's gradients, as text or LaTeX."""

    def __init__(self, steps, fname):
        self.steps, self.fname = steps, fname

    def text(self):
        out = []
        for s in self.steps:
            if s.kind == "header":
                out += ["", s.text]
            elif s.kind in ("rule", "rewrite"):
                out.append("    " + s.text + (f"    [{'; '.join(s.rules)}]" if s.rules else ""))
            elif s.kind in ("function", "result"):
                out.append(s.text)  # the result's rule is the same every time: not repeated
            else:
                out.append(s.text + (f"    [{'; '.join(s.rules)}]" if s.rules else ""))
        return "\n".join(out)

    def latex(self):
        """An aligned environment, one row per step, rules as \\text."""
        rows = []
        for s in self.steps:
            cite = f" && \\text{{({'; '.join(s.rules)})}}" if s.rules else ""
            if s.kind == "header":
                rows.append(f"&{s.latex}")
            elif s.kind in ("rule", "rewrite"):
                rows.append(f"&\\quad {s.latex}{cite}")
            else:
                rows.append(f"&{s.latex}{cite}")
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def _repr_latex_(self):
        return "$$" + self.latex() + "$$"

    def __str__(self):
        return self.text()


class _Broadcasts:
    """A printer mixin for differentials: a scalar term of a vector or matrix
    sum shows its broadcast, 𝟙s for a column, s𝟙ᵀ for a row, 𝟙s𝟙ᵀ for a
    matrix, as a textbook writes dz − 𝟙softmax(z)ᵀdz (a product uᵀv joins the
    chain: 𝟙uᵀv; any other scalar s reads s𝟙 as the printer writes scalings).
    A term without variables (1 − σ(z)) stays bare."""

    def p_add(self, n):
        if n.is_scalar or not any(t.is_scalar and _varies(t) for t in n.args):
            return super().p_add(n)
        terms = tuple(_broadcast(t, n.shape) if t.is_scalar and _varies(t) else t for t in n.args)
        return super().p_add(ir._make("add", terms, None, n.shape))


class _TextPrinter(_Broadcasts, Printer):
    pass


class _LatexPrinter(_Broadcasts, LatexPrinter):
    pass


def _varies(x):
    """x depends on a variable (or a differential): not a number or a size."""
    return any(n.op in ("var", "let") for n in topo_order(x))


def _broadcast(t, shape):
    """The scalar term t spread over shape, for display: c·𝟙uᵀv𝟙ᵀ or c·s𝟙𝟙ᵀ."""
    c, core = ir.split_coef(t)
    rows, cols = shape
    left = (ir.ones(rows),) if rows != 1 else ()
    right = (ir.transpose(ir.ones(cols)),) if cols != 1 else ()
    if core.op == "matmul":
        spread = ir._make("matmul", left + core.args + right, None, shape)
    else:
        spread = ir._make("mul", (core, ir.ones_like(shape)), None, shape)
    return ir.scale(c, spread)


class _Style:
    """How one output language writes d, tr and the forms around the printer
    (`pr`, with the broadcasts of differentials; `plain` prints as the
    gradients do)."""

    def __init__(self, printer, plain, latex):
        self.pr, self.plain, self.latex = printer, plain, latex

    def d(self, node):
        z = self.pr(node)
        dee = "\\mathrm{d}" if self.latex else "d"
        if _named(self.pr, node):
            return f"{dee}{z}" if not self.latex else f"{dee} {z}"
        return f"{dee}{self.pr.paren(z)}"

    def tr(self, s):
        return f"\\operatorname{{tr}}\\left({s}\\right)" if self.latex else f"tr({s})"

    def minus(self):
        return "-" if self.latex else "−"

    def term(self, G, node):
        """tr(Gᵀ dZ), written the way a textbook would for its shape."""
        pr, dz = self.pr, self.d(node)
        if node.is_scalar:
            if G.op == "const" and G.attr in (1, -1):
                return dz if G.attr == 1 else self.minus() + dz
            return f"{pr.wrap(G, 4)} {dz}"
        if node.rows == 1:  # a row: tr(Gᵀ dZ) = dZ Gᵀ
            return f"{dz} {pr.wrap(ir.transpose(G), 4)}"
        if node.cols == 1:
            return f"{self.factor(ir.transpose(G))} {dz}"
        c, core = ir.split_coef(G)
        if core is not None and core.op == "eye":  # tr((cI)ᵀ dZ) = c tr(dZ)
            lead = {1: "", -1: self.minus()}.get(c, pr(ir.num(c)) + " ")
            return lead + self.tr(dz)
        return self.tr(f"{self.factor(ir.transpose(G))} {dz}")

    def factor(self, node):
        """node as the left factor of a product (Gᵀ dZ): a sum or a Hadamard
        product in parentheses, a negation bare."""
        s, prec = self.pr.p(node)
        return self.pr.paren(s) if prec < PROD and prec != NEG else s

    def form(self, fname, terms):
        lhs = ("\\mathrm{d}" + self.pr.name(fname)) if self.latex else "d" + fname
        body = " + ".join(self.term(g, m) for m, g in terms) if terms else "0"
        return f"{lhs} = {body}"

    def gradient_form(self, fname, G, x):
        """dL = tr(Gᵀ dX) (Gᵀ dx for a vector, G dx for a scalar), G as printed."""
        pr = self.pr
        g, prec = pr.p(G)
        dx = self.d(x)
        lhs = ("\\mathrm{d}" + pr.name(fname)) if self.latex else "d" + fname
        t = "^{\\top}" if self.latex else "ᵀ"
        if x.is_scalar:
            return f"{lhs} = {pr.paren(g) if prec < 4 else g} {dx}"
        gt = f"{pr.paren(g) if prec < 6 else g}{t}"
        return f"{lhs} = {gt} {dx}" if x.cols == 1 else f"{lhs} = {self.tr(gt + ' ' + dx)}"

    def partial(self, fname, w, G):
        pr = self.plain
        if self.latex:
            return f"\\frac{{\\partial {pr.name(fname)}}}{{\\partial {pr.name(w)}}} = {pr(G)}"
        return f"∂{fname}/∂{w} = {pr(G)}"

    def differential(self, node, i):
        """The rule's differential of node in its argument i, with d(arg)."""
        rule, _ = registry.op_rule(node)
        env, name = rule_env(node, i, None)
        text = rule.get("differential", {}).get(name)
        if text is None:
            return None
        arg = node.args[i]
        env["d" + name] = ir.var(_MARK, "matrix", arg.shape)
        try:
            out = templates.instantiate(text, env)
        except Exception:  # a rule whose differential needs more than the template says
            return None
        cls = _LatexPrinter if self.latex else _TextPrinter
        s = cls(self.pr.names, self.pr.eye_name)(out)
        darg = self.d(arg)
        if self.latex:
            s = s.replace(f"\\mathrm{{{_MARK}}}", darg)
        return s.replace(_MARK, darg)

    def expansion(self, node, live):
        """d(node) = the sum of its rule's differentials in the live arguments,
        as the rule states them (no rewrite applied)."""
        with ir.without_rewrites():
            parts = [self.differential(node, i) for i in live]
        if any(p is None for p in parts):
            return None
        return f"{self.d(node)} = {' + '.join(parts)}"


def derive_steps(result, fname="L"):
    """The Derivation of result's gradients (every --wrt variable)."""
    problem = result.problem
    root = problem.root
    if root.op == "let":  # L = …: start from its definition
        root = root.args[0]
    names = {n: k for n, k in problem.names.items() if n is not root}
    text = _Style(_TextPrinter(names, result.eye_name()), Printer(names, result.eye_name()), False)
    latex = _Style(_LatexPrinter(names), LatexPrinter(names), True)
    steps = [Step("function", f"{fname} = {text.plain(root)}",
                  f"{latex.pr.name(fname)} = {latex.plain(root)}")]
    for style in (text, latex):  # sizes shown where the function's text needs them
        style.pr.sized = style.plain.sized
    for w in result.wrt:
        steps += _steps_for(result, root, w, fname, text, latex)
    return Derivation(steps, fname)


def derivation(result, fname="L", latex=False):
    """The --steps text (or its LaTeX)."""
    d = derive_steps(result, fname)
    return d.latex() if latex else d.text()


def _steps_for(result, root, w, fname, text, latex):
    problem = result.problem
    target = problem.target(w)
    out = [Step("header", f"— with respect to {w}:", f"\\text{{with respect to }} {latex.pr.name(w)}")]
    order = topo_order(root)
    index = {n: k for k, n in enumerate(order)}
    reach = {}
    for n in order:
        reach[n] = n is target or any(reach[a] for a in n.args)
    frontier = {root: ir.num(1)}

    def terms_of(front):
        return [(m, g) for m, g in sorted(front.items(), key=lambda kv: -index[kv[0]])
                if not ir.is_zero(g)]

    def form(terms, rules=(), raw=False):
        # an unrewritten form is printed as built: its transposes without rewrites too
        with ir.without_rewrites() if raw else contextlib.nullcontext():
            return Step("form", text.form(fname, terms), latex.form(fname, terms), rules, terms)

    def push(front, n, live, G):
        for i in live:
            a = n.args[i]
            contrib = pullback(n, i, G)
            front[a] = ir.add(front[a], contrib) if a in front else contrib

    out.append(form(terms_of(frontier)))
    while True:
        inner = [n for n in frontier if n is not target]
        if not inner:
            break
        n = max(inner, key=index.get)
        G = frontier.pop(n)
        if n.op == "let":  # a named intermediate: its block starts with its adjoint
            name = n.attr
            out.append(Step("adjoint", text.partial(fname, name, G), latex.partial(fname, name, G),
                            ("backprop: the adjoint of the intermediate " + name,),
                            [(n, G)]))
            a = n.args[0]
            frontier[a] = ir.add(frontier[a], G) if a in frontier else G
            continue
        live = [i for i, a in enumerate(n.args) if reach[a]]
        dt = text.expansion(n, live)
        if dt is not None:
            out.append(Step("rule", dt, latex.expansion(n, live), (_cite(n, live),)))
        moves = _moves(n, {a for a in n.args if reach[a]})
        unrewritten = dict(frontier)
        with ir.trace_rewrites() as fired:
            push(frontier, n, live, G)
        terms = terms_of(frontier)
        if fired:  # the form as the template gives it, then each rewrite, then the result
            try:
                with ir.without_rewrites():
                    push(unrewritten, n, live, G)
                raw = terms_of(unrewritten)
            except Exception:  # noqa: BLE001 (a rule that cannot be built without its rewrites)
                raw = None
            if raw != terms:
                if raw is not None:
                    out.append(form(raw, moves, raw=True))
                out += _rewrite_steps(fired, text, latex)
                out.append(form(terms, () if raw is not None else moves))
                continue
        out.append(form(terms, moves))
    # End at dL = tr(Gᵀ dX) with G the gradient itself, then read G off.
    G = result.nodes[w]
    last = frontier.get(target)
    cite = None
    if target.op == "var" and target.attr[1] in ("symmetric", "spd") and last is not None \
            and G is not last:  # the gradient among symmetric matrices: sym(G)
        cite = [SYMMETRIC]
        with ir.trace_rewrites() as fired:
            symmetrize(last)
        with ir.without_rewrites():
            raw = symmetrize(last)
        if fired and raw is not G:
            with ir.without_rewrites():
                out.append(Step("form", text.gradient_form(fname, raw, target),
                                latex.gradient_form(fname, raw, target), cite, [(target, raw)]))
            out += _rewrite_steps(fired, text, latex)
            cite = []
    final_t = text.gradient_form(fname, G, target)
    if final_t != out[-1].text:
        if cite is None:
            with ir.trace_rewrites() as fired:
                ir.transpose(G)
            cite = ["the gradient's transpose: (AB)ᵀ = BᵀAᵀ" if fired or G.op == "matmul"
                    else "the gradient read as one factor"]
        out.append(Step("form", final_t, latex.gradient_form(fname, G, target), cite,
                        [(target, G)]))
    out.append(Step("result", text.partial(fname, w, G), latex.partial(fname, w, G),
                    ("dL = tr(Gᵀ dX) reads off ∂L/∂X = G",)))
    return out


def _cite(node, live=None):
    """The identity a step uses, named by the op's rule entry; a product in
    which one factor varies and the others are scalars that do not is a
    constant factor (d(λM) = λ dM), not the product rule."""
    name = registry.ops().get(node.op, {}).get("name")
    if name is None:
        return "the op's differential"
    if node.op == "fn":
        name = name.replace("{f}", registry.text_name(node.attr))
    elif node.op == "mul":
        if live is not None and len(live) == 1 and all(
                a.is_scalar for i, a in enumerate(node.args) if i != live[0]):
            name = "constant factor"
        elif sum(not a.is_scalar or a.op != "const" for a in node.args) == 1:
            name = "constant factor"
    return name


def _moves(node, reach=None):
    """The trace identity of node's rule (and of its broadcast, 𝟙bᵀ)."""
    entry = registry.ops().get(node.op, {})
    live = [i for i, a in enumerate(node.args) if a in reach] if reach is not None else None
    moves = "linearity" if _cite(node, live) == "constant factor" else entry.get("moves")
    out = [moves] if moves else []
    if entry.get("moves_broadcast") and any(ir.is_ones_matrix(a) for a in node.args):
        out.append(entry["moves_broadcast"])
    return out


def _rewrite_steps(fired, text, latex):
    """One step per distinct change the firings made (before = after, citing
    the rule), in the order they fired: a rule that fired many times on the
    same node shows once."""
    out, seen = [], set()
    with ir.without_rewrites():  # printed as built
        for f in fired:
            if f.before is f.after:
                continue
            t = f"{text.pr(f.before)} = {text.pr(f.after)}"
            if (f.name, t) in seen:
                continue
            seen.add((f.name, t))
            out.append(Step("rewrite", t, f"{latex.pr(f.before)} = {latex.pr(f.after)}",
                            (f.name,), nodes=(f.before, f.after)))
    return out


def _named(pr, node):
    return node.op in ("var", "let") or node in pr.names
