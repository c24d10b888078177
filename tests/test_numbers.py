"""Exact coefficients are the standard library's Fraction: they hash like the
floats and ints they equal (hash-consing looks nodes up by value) and convert
exactly at any size (issue 11, #7)."""

from fractions import Fraction
import numbers

from matdiff import ir
from matdiff.engine import Problem


def constants(node):
    seen, out, stack = set(), [], [node]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.op == "const":
            out.append(n.attr)
        stack.extend(n.args)
    return out


def test_parsed_decimal_is_a_standard_rational():
    (c,) = constants(Problem("0.5 x'x").root)
    assert isinstance(c, numbers.Rational)
    assert c == Fraction(1, 2) == 0.5
    assert hash(c) == hash(0.5) == hash(Fraction(1, 2))


def test_equal_constants_are_one_node():
    assert ir.num(Fraction(1, 2)) is ir.num(Fraction(2, 4))
    assert ir.num(3) is ir.num(Fraction(3))
    # equal values hash alike, so the hash-cons table finds the same node
    assert ir.num(0.5) is ir.num(Fraction(1, 2))


def test_large_integer_constant_is_exact():
    big = 123456789012345678901234567890
    (c,) = constants(Problem(f"{big} x'x").root)
    assert int(c) == big
    assert int(Fraction(big + 1, 1)) == big + 1
