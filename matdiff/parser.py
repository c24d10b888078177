"""Recursive-descent parser: source text -> AST with source spans.

Precedence, tightest first: postfix (ᵀ ' ^T ^k ^-1 .^ ⁻¹); function
application; product (juxtaposition, *, @, scalar /); Hadamard and Kronecker
(⊙ ∘ .* ./ ⊘ ⊗); unary minus; + and -.

A name to be split (`XW`) is replaced in the token list by its chunks (`X`,
`W`) the first time the parser looks at it, so a split name parses exactly as
its chunks written with spaces, whatever operator or postfix follows.
"""

import difflib
import re

from .errors import ParseError, NameError_
from .lexer import tokenize
from .ops import registry, syntax

GREEK_LETTERS = set("αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩϵϑϕς")
# The letters' names, as words of the alphabet (σ's name is also the sigmoid's
# spelling: a function name is looked up first, see Parser.function_name).
GREEK_NAMES = set("""alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu
    nu xi omicron pi rho sigma tau upsilon phi chi psi omega""".split())
GREEK_NAMES |= {g.capitalize() for g in GREEK_NAMES}

TEMPLATE_ONLY = {"ones_like": "ones_like", "eye_like": "eye_like", "ones_rows": "ones_rows",
                 "unvec_like": "unvec_like"}

# Brackets (and calls, norms) nested deeper than this are a clean error;
# run_deep (matdiff.deep) gives every stage the stack for this depth.
MAX_NESTING = 10000

# A lower-case word of two or more letters (digits allowed) before `(` is a call.
_CALL_WORD = re.compile(r"[a-z][a-z0-9]*")


class Ast:
    __slots__ = ("kind", "args", "value", "span", "op_span")

    def __init__(self, kind, args=(), value=None, span=(0, 0), op_span=None):
        self.kind = kind
        self.args = tuple(args)
        self.value = value
        self.span = span
        self.op_span = op_span or span

    def __repr__(self):
        inner = ", ".join(repr(a) for a in self.args)
        v = "" if self.value is None else f"{self.value!r}"
        return f"{self.kind}[{v}]({inner})"


def is_greek(name):
    """A Greek letter or name, optionally followed by digits (λ, lambda, theta1)."""
    base = name.rstrip("0123456789")
    return base in GREEK_NAMES or (len(base) == 1 and base in GREEK_LETTERS)


class Parser:
    def __init__(self, src, functions, declared=(), template=False):
        self.src = src
        self.toks = tokenize(src)
        self.pos = 0
        self.functions = dict(functions)
        # structural ops by every spelling of their entries (`spell`)
        self.functions.update(registry.calls())
        if template:
            self.functions.update(TEMPLATE_ONLY)
        self.declared = set(declared)
        self.template = template
        self.bars = []  # open norm / abs bars: their closing token ends juxtaposition
        self.nesting = 0

    # -- token helpers ---------------------------------------------------
    def peek(self, k=0):
        try:
            return self.toks[self.pos + k]
        except IndexError:  # past the end: END
            return self.toks[-1]

    def next(self):
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def at_op(self, *ops):
        kind, value, _, _ = self.peek()
        return kind == "OP" and value in ops

    def expect_op(self, op, what=None):
        return self.expect(("OP", op), what or repr(op))

    def expect(self, kind_value, what):
        tok = self.peek()
        if tok[:2] == kind_value:
            return self.next()
        shown = "end of input" if tok[0] == "END" else repr(self.src[tok[2]:tok[3]])
        raise ParseError(f"expected {what} but found {shown}", self.src,
                         (tok[2], max(tok[3], tok[2] + 1)))

    def error(self, msg, tok=None):
        tok = tok or self.peek()
        raise ParseError(msg, self.src, (tok[2], max(tok[3], tok[2] + 1)))

    # -- program ---------------------------------------------------------
    def parse_program(self):
        """Statements separated by ; or newlines. Returns [(name|None, ast)]."""
        stmts = []
        while True:
            while self.peek()[0] == "SEP":
                self.next()
            if self.peek()[0] == "END":
                break
            name = None
            if self.peek()[0] == "NAME" and self.peek(1)[:2] == ("OP", "="):
                name = self.next()[1]
                self.next()
            elif self.peek()[0] == "NAME" and self.peek(1)[:2] == ("OP", ":"):
                self.error("declarations go in --var NAME:KIND or vars={...}, not in the expression")
            expr = self.parse_expr()
            stmts.append((name, expr))
            if name is not None:
                self.declared.add(name)
            tok = self.peek()
            if tok[0] not in ("SEP", "END"):
                self.error(f"unexpected {self.src[tok[2]:tok[3]]!r}")
        if not stmts:
            raise ParseError("empty expression", self.src, (0, max(1, len(self.src))))
        return stmts

    def parse_single(self):
        expr = self.parse_expr()
        tok = self.peek()
        if tok[0] != "END":
            self.error(f"unexpected {self.src[tok[2]:tok[3]]!r}")
        return expr

    # -- expressions -----------------------------------------------------
    def parse_expr(self):
        """Every bracket, call argument and norm nests here: the depth is counted."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            self.error(f"the expression is too deeply nested (more than {MAX_NESTING} "
                       f"levels of brackets)")
        try:
            return self.parse_sum()
        finally:
            self.nesting -= 1

    def parse_sum(self):
        left = self.parse_unary()
        while self.at_op("+", "-"):
            tok = self.next()
            right = self.parse_unary()
            left = Ast("add" if tok[1] == "+" else "sub", (left, right),
                       span=(left.span[0], right.span[1]), op_span=(tok[2], tok[3]))
        return left

    def parse_unary(self):
        # A loop, not recursion: a long run of signs costs no stack.
        signs = []
        while self.at_op("-", "+"):
            tok = self.next()
            if tok[1] == "-":
                if self.at_op("+"):
                    self.error("unexpected '+'")
                signs.append(tok)
        arg = self.parse_hadamard()
        return _negate(arg, signs)

    def parse_hadamard(self):
        """Hadamard products and quotients, and Kronecker products A ⊗ B: one
        level, left to right."""
        left = self.parse_product()
        while self.at_op("had", "ediv") or self.peek()[0] == "INFIX":
            tok = self.next()
            right = self.parse_signed(self.parse_product)
            left = Ast(tok[1], (left, right), span=(left.span[0], right.span[1]),
                       op_span=(tok[2], tok[3]))
        return left

    def parse_signed(self, inner):
        """After an explicit binary operator, allow a leading minus: 2 * -x."""
        signs = []
        while self.at_op("-"):
            signs.append(self.next())
        return _negate(inner(), signs)

    def starts_primary(self):
        kind, value, _, _ = self.peek()
        if kind in ("NAME", "NUM", "ONES"):
            return True
        if kind == "OP":
            return value == "("
        if kind == "BAR":
            # A bar that closes an open norm/abs ends the product.
            return not (self.bars and self.bars[-1] == value)
        return False

    def parse_product(self):
        left = self.parse_apply()
        while True:
            if self.at_op("*", "/"):
                tok = self.next()
                right = self.parse_signed(self.parse_apply)
                kind = "prod" if tok[1] == "*" else "div"
                left = Ast(kind, (left, right), span=(left.span[0], right.span[1]),
                           op_span=(tok[2], tok[3]))
            elif self.starts_primary():
                gap = (left.span[1], max(left.span[1] + 1, self.peek()[2]))
                right = self.parse_apply()
                left = Ast("prod", (left, right), span=(left.span[0], right.span[1]),
                           op_span=gap)
            else:
                return left

    def parse_apply(self):
        """Function application without parentheses: `log det X` (a loop:
        a long chain of prefix functions costs no stack)."""
        calls = []
        while True:
            self.split_name()
            kind, name, _, _ = self.peek()
            fname = self.function_name(name) if kind == "NAME" else None
            if fname is None or self.at_op_k(1, "("):
                break
            tok = self.next()
            if not self.starts_primary():
                self.error(f"function {name!r} needs an argument", tok)
            calls.append((fname, tok))
        node = self.parse_postfix(self.parse_primary())
        for fname, tok in reversed(calls):
            node = Ast("call", (node,), value=fname, span=(tok[2], node.span[1]),
                       op_span=(tok[2], tok[3]))
        return node

    def at_op_k(self, k, op):
        tok = self.peek(k)
        return tok[0] == "OP" and tok[1] == op

    def function_name(self, name):
        if name in self.declared:
            return None
        return self.functions.get(name)

    # -- postfix ---------------------------------------------------------
    def parse_postfix(self, node):
        while True:
            kind, value, s, e = self.peek()
            if kind == "OP" and value == "'":
                self.next()
                node = Ast("T", (node,), span=(node.span[0], e), op_span=(s, e))
            elif kind == "SUP":
                self.next()
                if value == "-T":  # X⁻ᵀ = (X⁻¹)ᵀ
                    inner = _power(node, -1, (s, e))
                    node = Ast("T", (inner,), span=(node.span[0], e), op_span=(s, e))
                else:
                    node = _power(node, value, (s, e))
            elif kind == "OP" and value in ("^", "epow"):
                self.next()
                node = self.parse_power(node, value == "epow", (s, e))
            else:
                return node

    def parse_power(self, base, elementwise, op_span):
        kind, value, s, e = self.peek()
        braced = kind == "OP" and value == "{"
        if braced:
            self.next()
        self.split_name()  # X^Tb is Xᵀ b: `^T` is always the transpose
        kind, value, s, e = self.peek()
        if not elementwise and kind == "NAME" and value == "T":
            self.next()
            if braced:
                self.expect_op("}", "'}'")
            return Ast("T", (base,), span=(base.span[0], self.toks[self.pos - 1][3]), op_span=op_span)
        if braced:
            expo = self.parse_expr()
            self.expect_op("}", "'}'")
        elif kind == "OP" and value == "-":
            tok = self.next()
            inner = self.parse_exponent_atom()
            expo = Ast("neg", (inner,), span=(tok[2], inner.span[1]), op_span=(tok[2], tok[3]))
        else:
            expo = self.parse_exponent_atom()
        end = self.toks[self.pos - 1][3]
        op = None if elementwise else syntax.powers().get(_literal_int(expo))
        if op is not None:  # X^-1: the op whose `power` it is
            return Ast(op, (base,), span=(base.span[0], end), op_span=op_span)
        return Ast("epow" if elementwise else "pow", (base, expo), span=(base.span[0], end),
                   op_span=op_span)

    def parse_exponent_atom(self):
        kind, value, s, e = self.peek()
        if kind == "NUM":
            self.next()
            return Ast("num", value=value, span=(s, e))
        if kind == "OP" and value == "(":
            self.next()
            inner = self.parse_expr()
            self.expect_op(")", "')'")
            return inner
        if kind == "NAME":
            return self.parse_primary()
        self.error("expected an exponent after '^'")

    # -- primaries -------------------------------------------------------
    def parse_primary(self):
        self.split_name()
        kind, value, s, e = self.peek()
        if kind == "NUM":
            self.next()
            return Ast("num", value=value, span=(s, e))
        if kind == "ONES":
            self.next()
            return Ast("ones", value=value, span=(s, e))
        if kind == "OP" and value == "(":
            self.next()
            inner = self.parse_expr()
            close = self.expect_op(")", "')'")
            inner.span = (s, close[3]) if inner.kind in ("name", "num") else inner.span
            return Ast("paren", (inner,), span=(s, close[3]))
        if kind == "BAR":
            return self.parse_bars(value)
        if kind == "NAME":
            return self.parse_name()
        if kind == "END":
            self.error("unexpected end of input")
        if kind == "SEP":
            self.error("unexpected end of statement")
        self.error(f"unexpected {self.src[s:e]!r}")

    def parse_bars(self, op):
        """‖X‖, ‖X‖_F, |x|: the op whose `bars` they are, applied to the inside."""
        open_tok = self.next()
        self.bars.append(op)
        inner = self.parse_expr()
        self.bars.pop()
        close = self.expect(("BAR", op), f"closing {syntax.bar_text(op)}")
        end = close[3]
        if not syntax.subscripts(op):
            return Ast("call", (inner,), value=op, span=(open_tok[2], end), op_span=(open_tok[2], end))
        sub = self.norm_subscript(op)
        if sub is not None:
            end = self.toks[self.pos - 1][3]
        return Ast("call", (inner,), value=(op, sub), span=(open_tok[2], end),
                   op_span=(open_tok[2], end))

    def norm_subscript(self, op):
        """The subscript after an op that takes one (‖X‖_F), checked; None if none."""
        if self.peek()[0] != "SUB":
            return None
        tok = self.next()
        message = syntax.subscript_error(op, tok[1])
        if message:
            self.error(message, tok)
        return tok[1]

    def parse_name(self):
        kind, name, s, e = self.peek()
        fname = self.function_name(name)
        if fname is not None:
            self.next()
            if not self.at_op("("):
                self.error(f"function {name!r} needs an argument")
            self.next()
            args = [self.parse_expr()]
            while self.at_op(","):
                self.next()
                args.append(self.parse_expr())
            close = self.expect_op(")", "')'")
            if syntax.is_infix(fname):  # kron(A, B) is A ⊗ B: one node either way
                message = syntax.arity_error(fname, len(args))
                if message:
                    raise ParseError(message, self.src, (s, close[3]))
                return Ast(fname, args, span=(s, close[3]), op_span=(s, e))
            node = Ast("call", args, value=fname, span=(s, close[3]), op_span=(s, e))
            if syntax.subscripts(fname):
                sub = self.norm_subscript(fname)
                if sub is not None:
                    node.value = (fname, sub)
            return node
        if self.is_sized_eye(name):
            self.next()  # I_n: the n×n identity
            return Ast("eye", value=name[2:], span=(s, e))
        self.next()
        return self.name_node(name, s, e)

    # -- name splitting ----------------------------------------------------
    def split_name(self):
        """If the next token is a name to split, replace it by its chunks: one
        letter followed by its digits (`H1W2` -> `H1`, `W2`)."""
        kind, name, s, e = self.peek()
        if kind != "NAME" or self.function_name(name) is not None or self.keep_whole(name) \
                or self.is_sized_eye(name):
            return
        if self.at_op_k(1, "(") and self.peek(1)[2] == e and _CALL_WORD.fullmatch(name) \
                and sum(c.isalpha() for c in name) >= 2:
            # `foo(X)`, `gelu2(X)`: a call of an unknown function, not f·o·o·(X).
            raise NameError_(f"unknown function {name!r}{self.suggestion(name)}", self.src, (s, e))
        chunks = []
        i = 0
        while i < len(name):
            j = i + 1
            while j < len(name) and name[j].isdigit():
                j += 1
            chunks.append(("NAME", name[i:j], s + i, s + j))
            i = j
        self.toks[self.pos:self.pos + 1] = chunks

    def suggestion(self, name):
        known = [f for f in self.functions if _CALL_WORD.fullmatch(f)]
        close = difflib.get_close_matches(name, known, n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""

    def is_sized_eye(self, name):
        return name.startswith("I_") and len(name) > 2 and "I" not in self.declared \
            and name not in self.declared

    def keep_whole(self, name):
        return (name in self.declared or "_" in name or is_greek(name)
                or name in ("eye", "ones", "pi") or len(name) == 1
                or re.fullmatch(r"[^\W\d_]\d+", name) is not None)

    def name_node(self, name, s, e):
        if name in self.declared:
            return Ast("name", value=name, span=(s, e))
        if name in ("eye", "I"):
            sub = self.subscript()
            return Ast("eye", value=sub, span=(s, e))
        if name == "ones":
            sub = self.subscript()
            if sub is None and self.sized_ones():
                # ones(N), ones(3): the vector of that length
                sub = self.toks[self.pos + 1][1]
                e = self.toks[self.pos + 2][3]
                self.pos += 3
            # anything else after `ones` is a product with the vector of ones
            return Ast("ones", value=sub, span=(s, e))
        return Ast("name", value=name, span=(s, e))

    def sized_ones(self):
        """`(N)` or `(3)` next: a dimension name or an integer alone in brackets.
        A declared variable, an intermediate, a Greek scalar or pi is a factor."""
        if not (self.at_op("(") and self.at_op_k(2, ")")):
            return False
        kind, value, _, _ = self.peek(1)
        if kind == "NUM":
            return value.isdigit()
        return kind == "NAME" and value not in self.declared and not is_greek(value) \
            and self.function_name(value) is None and value not in ("eye", "ones", "I")

    def subscript(self):
        if self.peek()[0] == "SUB":
            return self.next()[1]
        return None


def _negate(arg, signs):
    for tok in reversed(signs):
        arg = Ast("neg", (arg,), span=(tok[2], arg.span[1]), op_span=(tok[2], tok[3]))
    return arg


def _literal_int(expo):
    """k for an exponent written as the integer k or -k (X^-1, X^{-1}), else None."""
    sign = 1
    if expo.kind == "neg":
        sign, expo = -1, expo.args[0]
    if expo.kind != "num":
        return None
    v = float(expo.value)
    return sign * int(v) if v.is_integer() else None


def _power(base, k, span):
    """X^k from a superscript: the op whose `power` k is (X⁻¹), else a power."""
    op = syntax.powers().get(k)
    if op is not None:
        return Ast(op, (base,), span=(base.span[0], span[1]), op_span=span)
    expo = Ast("num", value=str(k), span=span)
    return Ast("pow", (base, expo), span=(base.span[0], span[1]), op_span=span)


def parse_program(src, functions, declared=()):
    return Parser(src, functions, declared).parse_program()


def parse_template(src, placeholders, functions):
    return Parser(src, functions, declared=placeholders, template=True).parse_single()
