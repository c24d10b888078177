"""`--steps`: the derivation written as the seeds write it by hand.

Starting from dL = d(f), each step takes the outermost differential d(Z) of
the current form, expands it with Z's rule (d(Z) = its differential) and
moves the argument's d to the right with the trace identity of the rule's
pullback, until only d of the variable is left: dL = tr(Gᵀ dX).
"""

from . import ir
from .ops import registry
from .diff import topo_order, pullback, rule_env
from .printing import Printer


def _term(pr, G, node):
    """tr(Gᵀ dZ), written the way a textbook would for its shape."""
    z = pr(node)
    dz = f"d{z}" if _named(pr, node) else f"d({z})"
    if node.is_scalar:
        if G.op == "const" and G.attr in (1, -1):
            return dz if G.attr == 1 else "−" + dz
        return f"{pr.wrap(G, 4)} {dz}"
    if node.rows == 1:  # a row: tr(Gᵀ dZ) = dZ Gᵀ
        return f"{dz} {pr.wrap(ir.transpose(G), 4)}"
    if node.cols == 1:
        gt = pr(ir.transpose(G))
        return f"{gt} {dz}"
    c, core = ir.split_coef(G)
    if core is not None and core.op == "eye":  # tr((cI)ᵀ dZ) = c tr(dZ)
        return {1: "", -1: "−"}.get(c, pr(ir.num(c)) + " ") + f"tr({dz})"
    gt = pr(ir.transpose(G))
    return f"tr({gt} {dz})"


def _differential(pr, node, i):
    """The rule's differential of node in its argument i, as text with d(arg)."""
    rule, _ = registry.op_rule(node)
    env, name = rule_env(node, i, None)
    text = rule.get("differential", {}).get(name)
    if text is None:
        return None
    dname = "d" + name
    arg = node.args[i]
    marker = ir.var("\u2062d", "matrix", arg.shape)  # an invisible placeholder for d(arg)
    env[dname] = marker
    try:
        out = registry.instantiate(text, env)
    except Exception:
        return None
    s = Printer(pr.names, pr.eye_name)(out)
    a = pr(arg)
    darg = f"d{a}" if _named(pr, arg) else f"d({a})"
    return s.replace("\u2062d", darg)


def derivation(result, fname="L"):
    problem = result.problem
    root = problem.root
    if root.op == "let":  # L = …: start from its definition
        root = root.args[0]
    names = {n: k for n, k in problem.names.items() if n is not root}
    pr = Printer(names, result.eye_name())
    lines = [f"{fname} = {Printer(names, result.eye_name())(root)}"]
    for w in result.wrt:
        target = problem.target(w)
        lines.append("")
        lines.append(f"— with respect to {w}:")
        order = topo_order(root)
        index = {n: k for k, n in enumerate(order)}
        reach = {}
        for n in order:
            reach[n] = n is target or any(reach[a] for a in n.args)
        frontier = {root: ir.num(1)}
        shown = f"d{fname} = {_term(pr, ir.num(1), root)}"
        lines.append(shown)
        while True:
            inner = [n for n in frontier if n is not target]
            if not inner:
                break
            n = max(inner, key=index.get)
            G = frontier.pop(n)
            if n.op == "let":  # a named intermediate: d(name) is d(its definition)
                a = n.args[0]
                frontier[a] = ir.add(frontier[a], G) if a in frontier else G
                continue
            for i, a in enumerate(n.args):
                if not reach[a]:
                    continue
                d = _differential(pr, n, i)
                if d is not None and (len([x for x in n.args if reach[x]]) == 1):
                    step = f"    d{pr(n)} = {d}" if _named(pr, n) else f"    d({pr(n)}) = {d}"
                    lines.append(step + _cite(n))
                contrib = pullback(n, i, G)
                frontier[a] = ir.add(frontier[a], contrib) if a in frontier else contrib
            terms = [_term(pr, g, m) for m, g in sorted(frontier.items(), key=lambda kv: -index[kv[0]])
                     if not _is_zero(g)]
            lines.append(f"d{fname} = " + (" + ".join(terms) if terms else "0"))
        # End at dL = tr(Gᵀ dX) with G the gradient itself, then read G off.
        G = result.nodes[w]
        final = f"d{fname} = {_gradient_form(pr, G, target)}"
        if final != lines[-1]:
            lines.append(final)
        lines.append(f"∂{fname}/∂{w} = {pr(G)}")
    return "\n".join(lines)


def _gradient_form(pr, G, x):
    """tr(Gᵀ dX) (Gᵀ dx for a vector, G dx for a scalar) with G as printed."""
    g, prec = pr.p(G)
    dx = f"d{pr(x)}"
    if x.is_scalar:
        return f"{pr.paren(g) if prec < 4 else g} {dx}"
    gt = f"{pr.paren(g) if prec < 6 else g}ᵀ"
    return f"{gt} {dx}" if x.cols == 1 else f"tr({gt} {dx})"


def _cite(node):
    """The identity a step uses, named by the op's rule entry."""
    name = registry.ops().get(node.op, {}).get("name")
    if name is None:
        return ""
    if node.op == "fn":
        name = name.replace("{f}", registry.text_name(node.attr))
    elif node.op == "mul" and sum(not a.is_scalar or a.op != "const" for a in node.args) == 1:
        name = "constant factor"
    return f"    [{name}]"


def _named(pr, node):
    return node.op in ("var", "let") or node in pr.names


def _is_zero(x):
    return ir.is_zero(x)
