"""`--steps`: the derivation written as the seeds write it by hand.

Starting from dL = d(f), each step takes the outermost differential d(Z) of
the current form, expands it with Z's rule (d(Z) = its differential, citing
the rule's name) and moves the argument's d to the right with the trace
identity of the rule's pullback, until only d of the variable is left:
dL = tr(Gᵀ dX). Each new form cites the identities that produced it: the
rule's `moves` and the names of the rewrites that fired while the adjoint was
built (ir.trace_rewrites: one-hot rows, collecting terms, …). A named
intermediate of a program opens a block of its own, ∂L/∂Z = its adjoint,
walking backwards as backprop does.

Every form step keeps the terms it shows (node, G: dL = Σ tr(Gᵀ d node)), so
a test can check each step numerically (tests/test_steps.py).
"""

from . import ir
from . import templates
from .ops import registry
from .diff import topo_order, pullback, rule_env
from .printing import LatexPrinter, Printer

_MARK = "\u2062d"  # an invisible placeholder variable for d(arg)


class Step:
    """One line of a derivation. kind: "function" (L = …), "header" (with
    respect to X), "form" (dL = …, `terms` its (node, G) pairs), "rule" (an
    expansion d(Z) = …), "adjoint" (∂L/∂Z of a named intermediate, `terms`
    too), "result" (∂L/∂X = G). `rules`: the identities it cites."""
    __slots__ = ("kind", "text", "latex", "rules", "terms")

    def __init__(self, kind, text, latex, rules=(), terms=None):
        self.kind, self.text, self.latex = kind, text, latex
        self.rules, self.terms = tuple(rules), terms

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
            elif s.kind == "rule":
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
            elif s.kind == "rule":
                rows.append(f"&\\quad {s.latex}{cite}")
            else:
                rows.append(f"&{s.latex}{cite}")
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def _repr_latex_(self):
        return "$$" + self.latex() + "$$"

    def __str__(self):
        return self.text()


class _Style:
    """How one output language writes d, tr and the forms around the printer."""

    def __init__(self, printer, latex):
        self.pr, self.latex = printer, latex

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
            return f"{pr(ir.transpose(G))} {dz}"
        c, core = ir.split_coef(G)
        if core is not None and core.op == "eye":  # tr((cI)ᵀ dZ) = c tr(dZ)
            lead = {1: "", -1: self.minus()}.get(c, pr(ir.num(c)) + " ")
            return lead + self.tr(dz)
        return self.tr(f"{pr(ir.transpose(G))} {dz}")

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
        pr = self.pr
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
        cls = LatexPrinter if self.latex else Printer
        s = cls(self.pr.names, self.pr.eye_name)(out)
        darg = self.d(arg)
        if self.latex:
            s = s.replace(f"\\mathrm{{{_MARK}}}", darg)
        return s.replace(_MARK, darg)

    def expansion(self, node, live):
        """d(node) = the sum of its rule's differentials in the live arguments."""
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
    text = _Style(Printer(names, result.eye_name()), False)
    latex = _Style(LatexPrinter(names), True)
    steps = [Step("function", f"{fname} = {text.pr(root)}",
                  f"{latex.pr.name(fname)} = {latex.pr(root)}")]
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

    def form(rules=()):
        terms = [(m, g) for m, g in sorted(frontier.items(), key=lambda kv: -index[kv[0]])
                 if not ir.is_zero(g)]
        return Step("form", text.form(fname, terms), latex.form(fname, terms), rules, terms)

    out.append(form())
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
        with ir.trace_rewrites() as fired:
            for i in live:
                a = n.args[i]
                contrib = pullback(n, i, G)
                frontier[a] = ir.add(frontier[a], contrib) if a in frontier else contrib
        out.append(form(_moves(n, fired, {a for a in n.args if reach[a]})))
    # End at dL = tr(Gᵀ dX) with G the gradient itself, then read G off.
    G = result.nodes[w]
    final_t = text.gradient_form(fname, G, target)
    if final_t != out[-1].text:
        with ir.trace_rewrites() as fired:
            ir.transpose(G)
        out.append(Step("form", final_t, latex.gradient_form(fname, G, target),
                        ["the gradient's transpose: (AB)ᵀ = BᵀAᵀ"] if fired or G.op == "matmul"
                        else ["the gradient read as one factor"], [(target, G)]))
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


def _moves(node, fired, reach=None):
    """The trace identity of node's rule, then the rewrites that fired (once each)."""
    entry = registry.ops().get(node.op, {})
    live = [i for i, a in enumerate(node.args) if a in reach] if reach is not None else None
    moves = "linearity" if _cite(node, live) == "constant factor" else entry.get("moves")
    out = [moves] if moves else []
    if entry.get("moves_broadcast") and any(ir.is_ones_matrix(a) for a in node.args):
        out.append(entry["moves_broadcast"])
    for name in fired:
        if name not in out:
            out.append(name)
    return out


def _named(pr, node):
    return node.op in ("var", "let") or node in pr.names
