"""Loads the rule data in rules/ and instantiates its templates as IR.

The TOML files are read once, at first use; each template is parsed once.
"""

from functools import lru_cache
from pathlib import Path

from ..errors import DerivativeError

@lru_cache(maxsize=None)
def _rules_dir():
    """rules/ of the project: the package matdiff.rules (mapped onto the
    top-level rules/ folder by pyproject.toml), or the folder beside the
    package when running from a plain checkout."""
    try:
        import matdiff.rules as pkg
        return Path(pkg.__file__).parent
    except ImportError:
        return Path(__file__).resolve().parents[2] / "rules"  # matdiff/ops/ -> the project


def _load(name):
    """The parsed TOML file, through a marshal cache beside it (tomllib's import
    and parse cost the CLI's start-up a few milliseconds)."""
    import marshal
    import os
    path = _rules_dir() / name
    stat = os.stat(path)
    key = (stat.st_mtime_ns, stat.st_size)
    cache = path.parent / "__pycache__" / (name + ".marshal")
    try:
        with open(cache, "rb") as f:
            cached_key, data = marshal.load(f)
        if tuple(cached_key) == key:
            return data
    except (OSError, ValueError, EOFError, TypeError):
        pass
    import tomllib
    with open(path, "rb") as f:
        data = tomllib.load(f)
    try:
        cache.parent.mkdir(exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            marshal.dump((key, data), f)
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only install: parse each time
    return data


# Rule files registered at run time (register_file): {"ops": [...], "elementwise": [...]}
_EXTRA = {"ops": [], "elementwise": []}


@lru_cache(maxsize=None)
def ops():
    """The structural ops' entries by name (rules/ops.toml and registered files)."""
    out = dict(_load("ops.toml"))
    for data in _EXTRA["ops"]:
        out.update(data)
    return out


@lru_cache(maxsize=None)
def elementwise():
    """The element-wise functions' entries by canonical name."""
    out = dict(_load("elementwise.toml"))
    for data in _EXTRA["elementwise"]:
        out.update(data)
    return out


def register_file(path, table="ops"):
    """Add the entries of a rules file to the registry at run time (the
    extension point: README "Adding an op"). `table` is "ops" for structural
    ops (the layout of rules/ops.toml) or "elementwise" (rules/elementwise.toml)."""
    import tomllib
    if table not in _EXTRA:
        raise ValueError(f"table must be 'ops' or 'elementwise', not {table!r}")
    with open(path, "rb") as f:
        _EXTRA[table].append(tomllib.load(f))
    _clear()


def unregister_all():
    """Forget the files added by register_file (tests use it to clean up)."""
    for v in _EXTRA.values():
        v.clear()
    _clear()


# caches above the registry (matdiff.templates) that a new rules file invalidates
CLEAR_HOOKS = []


def _clear():
    for f in (ops, elementwise, functions, calls, spelled, op):
        f.cache_clear()
    for hook in CLEAR_HOOKS:
        hook()
    from .. import ir
    ir.clear_cache()


class Op:
    """One op's entry, looked up by every stage: `get(key)` reads any key of
    its TOML entry (text, latex, numpy, jax, torch, sympy, domain, shape, …)."""
    __slots__ = ("name", "entry", "elementwise")

    def __init__(self, name, entry, elementwise):
        self.name, self.entry, self.elementwise = name, entry, elementwise

    def get(self, key, default=None):
        return self.entry.get(key, default)

    def __repr__(self):
        return f"<Op {self.name}>"


@lru_cache(maxsize=None)
def op(name):
    """The Op of a structural op or element-wise function, by canonical name
    (None if there is none)."""
    entry = ops().get(name)
    if entry is not None:
        return Op(name, entry, False)
    entry = elementwise().get(name)
    if entry is not None:
        return Op(name, entry, True)
    return None


def node_op(node):
    """The Op of an IR node: its element-wise function for an `fn` node."""
    if node.op == "fn":  # the core's element-wise application: its function's entry
        return op(node.attr)
    return op(node.op)


@lru_cache(maxsize=None)
def calls():
    """Every spelling of a structural op callable by name, `spell` in its
    entry (tr, trace, …) -> its canonical name."""
    out = {}
    for name, entry in ops().items():
        for word in entry.get("spell", ()):
            out[word] = name
    return out


@lru_cache(maxsize=None)
def spelled(key):
    """The ops and element-wise functions whose entry has `key` (an operator
    spelling such as `infix`, `bars`, `power`), as {spelling: name}."""
    out = {}
    for table in (ops(), elementwise()):
        for name, entry in table.items():
            value = entry.get(key)
            if value is not None:
                for v in (value if isinstance(value, list) else [value]):
                    out[v] = name
    return out


@lru_cache(maxsize=None)
def functions():
    """Every spelling of an element-wise function -> its canonical name."""
    out = {}
    for name, entry in elementwise().items():
        out[name] = name
        for alias in entry.get("aliases", ()):
            out[alias] = name
    return out


def text_name(fname):
    """How an element-wise function prints (σ for sigmoid)."""
    return elementwise()[fname].get("text", fname)


def op_rule(node):
    """The rule entry of node's op, the vector/matrix variant chosen by its argument."""
    entry = ops().get(node.op)
    if entry is None:
        raise DerivativeError(f"no derivative rule for {node.op!r}")
    arg = node.args[0]
    # A 1×n row is a matrix with one row: the row-wise rules hold for it.
    variant = "vector" if arg.cols == 1 else "matrix"
    return entry.get(variant, entry), entry


def arg_names(node):
    """The rule names of node's arguments; an op with more arguments than
    names (an element-wise function's parameters) repeats the last name."""
    entry = ops()[node.op]
    names = entry["args"]
    if names == "*":
        return ["X"] * len(node.args)
    return list(names) + [names[-1]] * (len(node.args) - len(names))


def params(fname):
    """The names of an element-wise function's scalar parameters (elu: alpha)."""
    return tuple(elementwise()[fname].get("params", ()))
