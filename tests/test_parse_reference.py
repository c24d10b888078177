"""Parsing agrees with a reference (issue 11, "Checks").

A random token sequence of the language (every binary operator, every way of
writing a product, postfix operators, prefix function application, calls,
unary minus) is parenthesised fully by a small precedence-climbing parser
written here from SPEC §1's precedence table, independently of
matdiff/parser.py. matdiff must parse the sequence and its fully
parenthesised form to the same tree (spans and bracket nodes aside).

SPEC §1, tightest first: postfix (^T ' ᵀ ^k ^-1 .^); function application;
product (juxtaposition, *, @, scalar /; left to right); Hadamard
(⊙ ∘ .* ./ ⊘); unary minus; + -. Prefix application takes the next primary
with its postfix operators (log det X = log(det(X)), tr X^2 = tr(X²)); a
split name is its chunks (XW = X W, QK^T = Q·Kᵀ). A minus after an explicit
operator negates that operator's right operand (README: 2 * -x).
"""

import random
import re

from hypothesis import given, settings, strategies as st

from matdiff.ops import registry
from matdiff.parser import parse_program

FUNCTIONS = ["log", "exp", "tanh", "sqrt", "relu", "tr", "det", "sum"]
NAMES = ["X", "W", "A", "B", "x", "y", "λ", "W1"]
SPLIT = ["XW", "AB", "XWA", "W1X", "XW1", "BA2"]
NUMBERS = ["2", "3", "0.5"]
POSTFIX = ["'", "^T", "ᵀ", "^-1", "^{-1}", "⁻¹", "^2", "²", ".^2", ".^3"]
ADD = ["+", "-"]
HADAMARD = ["⊙", ".*", "./", "⊘", "∘"]
PRODUCT = ["*", "@", "/"]
JUXT = " "  # the product written as juxtaposition


# -- the reference -------------------------------------------------------------

PREC = {**{o: 1 for o in ADD}, **{o: 3 for o in HADAMARD}, **{o: 4 for o in PRODUCT}, JUXT: 4}
UNARY = 2  # unary minus: below Hadamard, above + -


def is_split(t):
    """Two or more chunks, no declared name or function: SPEC splits it."""
    return t not in NAMES and t not in FUNCTIONS and len(chunks(t)) > 1 \
        and "".join(chunks(t)) == t


def chunks(name):
    """SPEC's splitting rule: one letter followed by its digits."""
    return re.findall(r"[^\W\d]\d*", name)


class Reference:
    def __init__(self, tokens):
        toks = []
        for t in tokens:  # a split name is its chunks, side by side
            toks.extend(chunks(t) if is_split(t) else [t])
        self.toks, self.i = toks, 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self):
        self.i += 1
        return self.toks[self.i - 1]

    def starts_operand(self, t):
        return t is not None and (t in NAMES or t in NUMBERS or t in FUNCTIONS or t == "("
                                  or chunks(t) == [t])

    def parse(self):
        out = self.expr(1)
        assert self.peek() is None, self.toks[self.i:]
        return out

    def operator(self):
        t = self.peek()
        if t in PREC:
            return t
        return JUXT if self.starts_operand(t) else None

    def expr(self, min_prec):
        """Precedence climbing over + - (1), Hadamard (3), product (4), all left to right."""
        left = self.operand(min_prec)
        while True:
            op = self.operator()
            if op is None or PREC[op] < min_prec:
                return left
            if op != JUXT:
                self.take()
            right = self.expr(PREC[op] + 1)
            left = f"({left} {op} {right})" if op != JUXT else f"({left} {right})"

    def operand(self, min_prec):
        """A leading minus negates the operand of this level, and at least
        everything down to the Hadamard level (unary minus binds looser)."""
        if self.peek() == "-":
            self.take()
            return f"(-{self.expr(max(min_prec, UNARY + 1))})"
        return self.application()

    def application(self):
        """Prefix application: f applies to the next application (log det X)."""
        t = self.peek()
        if t in FUNCTIONS and self.toks[self.i + 1] != "(":
            self.take()
            return f"{t}({self.application()})"
        return self.postfix(self.primary())

    def postfix(self, node):
        while self.peek() in POSTFIX:
            node = f"({node}){self.take()}"
        return node

    def primary(self):
        t = self.take()
        if t == "(":
            inner = self.expr(1)
            assert self.take() == ")"
            return f"({inner})"
        if t in FUNCTIONS:
            assert self.take() == "("
            inner = self.expr(1)
            assert self.take() == ")"
            return f"{t}({inner})"
        return t


def parenthesise(tokens):
    return Reference(tokens).parse()


# -- random token sequences ------------------------------------------------------

class Tokens:
    """A random well-formed token sequence, drawn from the grammar of the
    precedence table with plain random choices (fast), brackets up to `depth`."""

    def __init__(self, rng, depth=2):
        self.rng, self.depth = rng, depth

    def chance(self, k):
        return self.rng.randrange(k) == 0

    def expression(self, depth):
        toks = []
        for k in range(self.rng.randint(1, 2)):
            if k:
                toks.append(self.rng.choice(ADD))
            if self.chance(4):
                toks.append("-")
            toks += self.hadamard(depth)
        return toks

    def hadamard(self, depth):
        toks = self.product(depth)
        for _ in range(self.rng.choice([0, 0, 0, 1, 2])):
            toks.append(self.rng.choice(HADAMARD))
            if self.chance(5):
                toks.append("-")
            toks += self.product(depth)
        return toks

    def product(self, depth):
        toks = self.application(depth)
        for _ in range(self.rng.choice([0, 1, 1, 2])):
            op = self.rng.choice(PRODUCT + [JUXT, JUXT, JUXT])
            if op != JUXT:
                toks.append(op)
                if self.chance(5):
                    toks.append("-")
            toks += self.application(depth)
        return toks

    def application(self, depth):
        fns = [self.rng.choice(FUNCTIONS) for _ in range(self.rng.choice([0, 0, 0, 1, 2]))]
        primary = self.primary(depth, bracket=not fns)  # `f (` would be a call
        post = [self.rng.choice(POSTFIX) for _ in range(self.rng.choice([0, 0, 1, 1, 2]))]
        return fns + primary + post

    def primary(self, depth, bracket=True):
        kind = self.rng.choice(["name"] * 4 + ["split"] * 3 + ["number"]
                               + (["bracket", "call"] if depth > 0 else []))
        if kind == "name":
            return [self.rng.choice(NAMES)]
        if kind == "split":
            return [self.rng.choice(SPLIT)]
        if kind == "number":
            return [self.rng.choice(NUMBERS)]
        inner = self.expression(depth - 1)
        if kind == "bracket" and bracket:
            return ["("] + inner + [")"]
        return [self.rng.choice(FUNCTIONS), "("] + inner + [")"]


def _draw(seed):
    rng = random.Random(seed)
    while True:  # at most 60 tokens: long enough for every combination, quick to parse
        tokens = Tokens(rng).expression(2)
        if len(tokens) <= 60:
            return tokens


# A seed per example: Hypothesis's own choices per token would cost more than
# the parsing; the failing source is printed in full anyway.
expressions = st.integers(0, 2 ** 32 - 1).map(_draw)


# -- the comparison --------------------------------------------------------------

def tree(ast):
    while ast.kind == "paren":
        ast = ast.args[0]
    return (ast.kind, ast.value, tuple(tree(a) for a in ast.args))


def parsed(src):
    return [(name, tree(a)) for name, a in parse_program(src, registry.functions())]


def _join(tokens):
    """The source text: tokens spaced, a call's bracket next to its name."""
    out = []
    for t in tokens:
        if t == "(" and out and out[-1] in FUNCTIONS:  # a call: tr(
            out[-1] += "("
        else:
            out.append(t)
    return " ".join(out)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(expressions)
def test_parse_equals_the_fully_parenthesised_parse(tokens):
    src = _join(tokens)
    full = parenthesise(tokens)
    assert parsed(src) == parsed(full), f"{src!r} should mean {full!r}"


# -- the reference against SPEC's own examples -------------------------------------

def test_the_reference_reads_the_spec_examples():
    assert parenthesise("1 / 2 x ' x".split()) == "(((1 / 2) (x)') x)"
    assert parenthesise("y ⊙ X w".split()) == "(y ⊙ (X w))"
    assert parenthesise("log det X".split()) == "log(det(X))"
    assert parenthesise("tr X ^2".split()) == "tr((X)^2)"
    assert parenthesise("- A ⊙ B + C".split()) == "((-(A ⊙ B)) + C)"
    assert parenthesise(["QK", "^T"]) == "(Q (K)^T)"
    assert parenthesise(["XW", "/", "2"]) == "((X W) / 2)"
    assert parenthesise("2 * - x y".split()) == "((2 * (-x)) y)"
    assert parenthesise("A ⊙ - B C".split()) == "(A ⊙ (-(B C)))"
    assert parenthesise("λ ( A + B )".split()) == "(λ ((A + B)))"
    assert parenthesise("A + B ⊙ C D".split()) == "(A + (B ⊙ (C D)))"
