"""Tokenizer for the matdiff expression language.

Tokens are (kind, value, start, end). Kinds: NUM, NAME, ONES (value: dim or
None), OP (value: canonical operator), SUP (superscript: an int power, or
"-T" for ⁻ᵀ, the power -1 transposed), SUB (a `_x` subscript after a bar, `1`
or `𝟙`), SEP (`;` or a newline outside brackets), INFIX and BAR (value: the
op whose `infix` / `bars` spelling it is, from the registry: ⊗, ‖, |), END.
"""

from .errors import ParseError
from .ops import syntax

# The language's own operator spellings -> canonical operator. The spellings
# of ops (⊗, ‖ … ‖, | … |) come from their entries (ops.syntax.operators).
_OPS = [
    (".*", "had"), ("./", "ediv"), (".^", "epow"),
    ("⊙", "had"), ("∘", "had"), ("⊘", "ediv"),
    ("+", "+"), ("-", "-"), ("−", "-"), ("*", "*"), ("·", "*"), ("@", "*"),
    ("/", "/"), ("^", "^"), ("'", "'"), ("ᵀ", "'"), ("(", "("), (")", ")"),
    ("{", "{"), ("}", "}"), (",", ","), ("=", "="), (":", ":"),
]


def _by_char(pairs):
    """Spellings by first character, longest first (".*" before "."), so each
    character tries only its own few operators."""
    table = {}
    for spelling, token in pairs:
        table.setdefault(spelling[0], []).append((spelling, token))
    for entries in table.values():
        entries.sort(key=lambda so: -len(so[0]))
    return table


# (the registry's operator table it was made from, the spellings by character)
_table = (None, None)


def _operators_by_char():
    global _table
    ops = syntax.operators()
    if _table[0] is not ops:
        pairs = [(s, ("OP", op)) for s, op in _OPS] + list(ops.items())
        _table = (ops, _by_char(pairs))
    return _table[1]

_SUPERSCRIPT_DIGITS = {"⁰": 0, "¹": 1, "²": 2, "³": 3, "⁴": 4, "⁵": 5,
                       "⁶": 6, "⁷": 7, "⁸": 8, "⁹": 9}
ONE_GLYPH = "𝟙"


def _digit(ch):
    return "0" <= ch <= "9"


def _is_name_start(ch):
    # ᵀ and superscripts are operators, never part of a name.
    return ch.isalpha() and ch != "ᵀ" and ch not in _SUPERSCRIPT_DIGITS


def _is_name_char(ch):
    return _is_name_start(ch) or ch == "_" or ("0" <= ch <= "9")


def tokenize(src):
    tokens = []
    i, n = 0, len(src)
    depth = 0  # bracket depth: newlines inside brackets are whitespace
    by_char = _operators_by_char()

    def add(kind, value, start, end):
        tokens.append((kind, value, start, end))

    while i < n:
        ch = src[i]
        if ch == "\n":
            if depth == 0:
                add("SEP", "\n", i, i + 1)
            i += 1
            continue
        if ch.isspace():
            i += 1
            continue
        if ch == "#":  # comment to end of line
            while i < n and src[i] != "\n":
                i += 1
            continue
        if ch == ";":
            add("SEP", ";", i, i + 1)
            i += 1
            continue
        if ch == ONE_GLYPH or (ch == "1" and i + 1 < n and src[i + 1] == "_"
                                and i + 2 < n and _is_name_char(src[i + 2])):
            start = i
            i += 1
            dim = None
            if i < n and src[i] == "_":
                j = i + 1
                while j < n and _is_name_char(src[j]):
                    j += 1
                dim = src[i + 1:j]
                if not dim:
                    raise ParseError("a subscript needs a dimension after '_'", src, (i, i + 1))
                i = j
            add("ONES", dim, start, i)
            continue
        if _digit(ch) or (ch == "." and i + 1 < n and _digit(src[i + 1])):
            start = i
            while i < n and _digit(src[i]):
                i += 1
            if i < n and src[i] == "." and i + 1 < n and _digit(src[i + 1]):
                i += 1
                while i < n and _digit(src[i]):
                    i += 1
            elif i < n and src[i] == "." and not (i + 1 < n and src[i + 1] in "*/^"):
                i += 1  # "2." is a number
            if i < n and src[i] in "eE":
                j = i + 1
                if j < n and src[j] in "+-":
                    j += 1
                if j < n and _digit(src[j]):
                    while j < n and _digit(src[j]):
                        j += 1
                    i = j
            add("NUM", src[start:i], start, i)
            continue
        if _is_name_start(ch):
            start = i
            while i < n and _is_name_char(src[i]):
                i += 1
            add("NAME", src[start:i], start, i)
            continue
        if ch == "_":
            start = i
            j = i + 1
            while j < n and _is_name_char(src[j]):
                j += 1
            if j == i + 1:
                raise ParseError("a subscript needs a name or number after '_'", src, (i, i + 1))
            add("SUB", src[i + 1:j], start, j)
            i = j
            continue
        if ch == "⁻" or ch in _SUPERSCRIPT_DIGITS:
            start = i
            neg = ch == "⁻"
            if neg:
                i += 1
            if neg and i < n and src[i] == "ᵀ":
                add("SUP", "-T", start, i + 1)  # X⁻ᵀ = (X⁻¹)ᵀ
                i += 1
                continue
            if i < n and src[i] in _SUPERSCRIPT_DIGITS:
                k = 0
                while i < n and src[i] in _SUPERSCRIPT_DIGITS:
                    k = 10 * k + _SUPERSCRIPT_DIGITS[src[i]]
                    i += 1
                add("SUP", -k if neg else k, start, i)
                continue
            raise ParseError("'⁻' must be followed by a superscript number or ᵀ", src, (start, i))
        for spelling, (kind, op) in by_char.get(ch, ()):
            if src.startswith(spelling, i):
                if op in ("(", "{"):
                    depth += 1
                elif op in (")", "}"):
                    depth = max(0, depth - 1)
                add(kind, op, i, i + len(spelling))
                i += len(spelling)
                break
        else:
            raise ParseError(f"unexpected character {ch!r}", src, (i, i + 1))
    add("END", None, n, n)
    return tokens
