"""Gradients by reverse accumulation over the DAG, each node visited once.

For each node, in reverse topological order, the adjoint G (the sum of the
contributions of its users) is pushed to its arguments through the op's
pullback rule: tr(Gᵀ dF) = Σ tr(pullback_iᵀ dX_i). Several targets share
one pass.
"""

from . import ir
from . import templates
from .ops import registry


def topo_order(root, *more):
    """Nodes reachable from root (and from each of `more`), every argument
    before its users; one traversal for all the roots."""
    order, seen = [], set()
    for start in (root, *more):
        stack = [(start, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if node in seen:
                continue
            seen.add(node)
            stack.append((node, True))
            stack.extend((a, False) for a in reversed(node.args) if a not in seen)
    return order


def rule_env(node, i, G=None):
    """Placeholder bindings for argument i of node."""
    arg = node.args[i]
    env = {"Y": node, "G": G}
    names = registry.arg_names(node)
    if node.op in ("add", "mul", "matmul"):
        env["X"] = arg
        others = node.args[:i] + node.args[i + 1:]
        if node.op == "matmul":
            left, right = node.args[:i], node.args[i + 1:]
            env["L"] = ir.matmul(*left) if left else ir.eye(arg.rows)
            env["R"] = ir.matmul(*right) if right else ir.eye(arg.cols)
        elif node.op == "mul":
            env["O"] = ir.mul(*others) if others else ir.num(1)
    else:
        env.update(zip(names, node.args))
    if node.op == "fn":  # f′ for the argument, ∂f/∂p for a parameter
        env["D"] = templates.derivative(node.attr, node.args[0], node.args[1:], i)
    return env, names[i]


def pullback(node, i, G):
    """The contribution of node's adjoint G to the adjoint of its argument i."""
    rule, _ = registry.op_rule(node)
    env, name = rule_env(node, i, G)
    out = templates.instantiate(rule["pullback"][name], env)
    arg = node.args[i]
    if arg.is_scalar and not out.is_scalar:
        out = ir.sum_(out)  # a broadcast scalar collects the whole adjoint
    return out


def gradients(root, targets, adjoints=None):
    """{target: ∂root/∂target} for scalar root; a zero node where it does not depend.
    adjoints, if given, receives {node: its adjoint} for every node reached."""
    order = topo_order(root)
    targets = list(targets)
    tset = set(targets)
    reach = {}
    for n in order:
        reach[n] = n in tset or any(reach[a] for a in n.args)
    contribs = {root: [ir.num(1)]}
    result = {}
    for n in reversed(order):
        parts = contribs.pop(n, None)
        if parts is None:
            continue
        G = parts[0] if len(parts) == 1 else ir.add(*parts)
        if adjoints is not None:
            adjoints[n] = G
        if n in tset:
            result[n] = G
        for i, a in enumerate(n.args):
            if reach[a]:
                contribs.setdefault(a, []).append(pullback(n, i, G))
    return {t: result.get(t, ir.zero(t.shape)) for t in targets}


def symmetrize(G):
    """Gradient in the space of symmetric matrices: (G + Gᵀ)/2."""
    return ir.mul(ir.num(ir.Fraction(1, 2)), ir.add(G, ir.transpose(G)))
