"""The op registry is the one place that names an op.

An op's name or spelling (every key of rules/*.toml and its `spell` /
`aliases`, but for the `core` grammar of the IR: add, mul, matmul, pow, T,
fn, let) may appear as a string in Python only inside matdiff/ops/ (the
registry and its named rewrites) and in matdiff/reference.py, the
independent interpreter that checks the rest and so must not trust the
registry's entries. DEBT lists what is left to move, per module: a module may
lose names, never gain them, and a module whose count drops must lower its
entry here (so the list stays the exact record of what is left).
"""

import ast
from pathlib import Path

from matdiff.ops import registry

PKG = Path(registry.__file__).resolve().parent.parent
EXEMPT = {"reference.py"}
# The IR's leaf node kinds, which are no ops: "var" is a variable node, not
# the variance (whose spelling is var).
LEAVES = {"var", "const", "dim", "ones", "eye", "zero", "pi"}

# module -> the number of op-name strings it still holds (to reach 0)
DEBT = {
}


def op_names():
    names = set()
    for table in (registry.ops(), registry.elementwise()):
        for name, entry in table.items():
            if entry.get("core"):
                continue  # the IR's grammar: sums, products, transposes, …
            names.add(name)
            names.update(entry.get("spell", ()))
            names.update(entry.get("aliases", ()))
    return names - LEAVES


def named_ops(path, names):
    hits = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
            hits.append((node.lineno, node.value))
    return hits


def modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "ops" or str(rel) in EXEMPT:
            continue
        yield str(rel), path


def test_no_op_name_outside_the_registry():
    names = op_names()
    over, under = [], []
    for rel, path in modules():
        hits = named_ops(path, names)
        allowed = DEBT.get(rel, 0)
        if len(hits) > allowed:
            over.append(f"{rel}: {len(hits)} op names (allowed {allowed}): {hits}")
        elif len(hits) < allowed:
            under.append(f"{rel}: {len(hits)} < {allowed}: lower DEBT")
    assert not over, "\n".join(over)
    assert not under, "\n".join(under)


def test_debt_names_real_modules():
    rels = {rel for rel, _ in modules()}
    assert set(DEBT) <= rels


def test_node_op_is_the_function_of_an_elementwise_node():
    from matdiff import ir
    x = ir.var("x", "vector", ("n", 1))
    assert registry.node_op(ir.fn("tanh", x)).name == "tanh"
    assert registry.node_op(ir.fn("tanh", x)).elementwise
    assert registry.node_op(ir.softmax(x)).name == "softmax"
