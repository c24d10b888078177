"""What the lexer and the parser read from the op entries: operator spellings
(`infix`, `bars`, `power`), call words (`spell`), argument counts (`arity`,
`usage`) and norm-style subscripts. The front end names no op: it asks here.
"""

from . import registry

_COUNTS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}

# The last operator table built, with the registry tables it was built from:
# rebuilt when register_file replaces them (held by reference, not by id()).
_operators = (None, None, {})


def operators():
    """{spelling: (token kind, op name)} for the spellings the lexer takes from
    the registry: "INFIX" (A ⊗ B) and "BAR" (‖X‖, |x|)."""
    global _operators
    infix, bars = registry.spelled("infix"), registry.spelled("bars")
    if _operators[0] is not infix or _operators[1] is not bars:
        table = {s: ("INFIX", name) for s, name in infix.items()}
        table.update({s: ("BAR", name) for s, name in bars.items()})
        _operators = (infix, bars, table)
    return _operators[2]


def powers():
    """{integer k: op name}: X^k that is an op of its own (X^-1 is the inverse)."""
    return registry.spelled("power")


def word(name):
    """How messages name an op: its first spelling (var for the variance)."""
    op = registry.op(name)
    spell = op.get("spell") if op is not None else None
    return spell[0] if spell else name


def bar_text(name):
    """The first spelling of an op's bars (the closing one a message asks for)."""
    bars = registry.op(name).get("bars")
    return bars[0] if isinstance(bars, list) else bars


def is_infix(name):
    op = registry.op(name)
    return op is not None and op.get("infix") is not None


def subscripts(name):
    """The subscripts allowed after the op (‖X‖_F), () if none."""
    op = registry.op(name)
    return tuple(op.get("subscripts", ())) if op is not None else ()


def subscript_error(name, sub):
    """The message for an unknown subscript, or None if `sub` is allowed."""
    allowed = subscripts(name)
    if sub in allowed:
        return None
    shown = [f"_{s}" for s in allowed]
    use = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
    return f"unknown {word(name)} subscript _{sub} (use {use})"


def arity(name):
    """(fewest, most) arguments of a structural op: `arity` = n or [min, max]."""
    value = registry.op(name).get("arity", 1)
    return tuple(value) if isinstance(value, list) else (value, value)


def arity_error(name, count):
    """The message when the op is called with `count` arguments, or None if it
    takes that many: 'unvec takes three arguments, unvec(v, ROWS, COLS), got 2'."""
    low, high = arity(name)
    if low <= count <= high:
        return None
    many = _COUNTS.get(low, str(low)) if low == high else \
        f"{_COUNTS.get(low, str(low))} or {_COUNTS.get(high, str(high))}"
    noun = "argument" if (low, high) == (1, 1) else "arguments"
    usage = registry.op(name).get("usage")
    return f"{word(name)} takes {many} {noun}" + (f", {usage}" if usage else "") + f", got {count}"
