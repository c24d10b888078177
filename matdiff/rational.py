"""Exact rational coefficients, small and quick to import.

The standard `fractions` module pulls in `decimal` (and more) at import,
which costs the CLI several milliseconds of start-up; the IR needs only this.
"""

from math import gcd


class Fraction:
    __slots__ = ("numerator", "denominator")

    def __init__(self, numerator=0, denominator=1):
        if isinstance(numerator, str):
            numerator, denominator = _parse(numerator)
        elif isinstance(numerator, Fraction):
            numerator, denominator = numerator.numerator, numerator.denominator * denominator
        if not isinstance(numerator, int) or not isinstance(denominator, int):
            raise TypeError("Fraction takes integers or a decimal string")
        if denominator == 0:
            raise ZeroDivisionError("Fraction with denominator 0")
        if denominator < 0:
            numerator, denominator = -numerator, -denominator
        g = gcd(numerator, denominator)
        self.numerator = numerator // g
        self.denominator = denominator // g

    # -- arithmetic --------------------------------------------------------
    @staticmethod
    def _q(x):
        if isinstance(x, Fraction):
            return x
        if isinstance(x, int):
            return Fraction(x)
        return None

    def _op(self, other, f, flt):
        q = Fraction._q(other)
        if q is None:
            return flt(float(self), other) if isinstance(other, float) else NotImplemented
        return f(self, q)

    def __add__(self, o):
        return self._op(o, lambda a, b: Fraction(a.numerator * b.denominator + b.numerator * a.denominator,
                                                 a.denominator * b.denominator), lambda a, b: a + b)

    __radd__ = __add__

    def __sub__(self, o):
        return self + (-o)

    def __rsub__(self, o):
        return (-self) + o

    def __mul__(self, o):
        return self._op(o, lambda a, b: Fraction(a.numerator * b.numerator, a.denominator * b.denominator),
                        lambda a, b: a * b)

    __rmul__ = __mul__

    def __truediv__(self, o):
        return self._op(o, lambda a, b: Fraction(a.numerator * b.denominator, a.denominator * b.numerator),
                        lambda a, b: a / b)

    def __rtruediv__(self, o):
        q = Fraction._q(o)
        if q is None:
            return o / float(self) if isinstance(o, float) else NotImplemented
        return q / self

    def __pow__(self, k):
        if isinstance(k, int):
            if k >= 0:
                return Fraction(self.numerator ** k, self.denominator ** k)
            return Fraction(self.denominator ** -k, self.numerator ** -k)
        if isinstance(k, Fraction) and k.denominator == 1:
            return self ** k.numerator
        return float(self) ** float(k)

    def __rpow__(self, base):
        if self.denominator == 1:
            return Fraction._q(base) ** self.numerator if Fraction._q(base) is not None else base ** self.numerator
        return float(base) ** float(self)

    def __neg__(self):
        return Fraction(-self.numerator, self.denominator)

    def __pos__(self):
        return self

    def __abs__(self):
        return Fraction(abs(self.numerator), self.denominator)

    # -- comparison and conversion -------------------------------------------
    def _cmp(self, o):
        q = Fraction._q(o)
        if q is None:
            if isinstance(o, float):
                return float(self) - o
            return NotImplemented
        return self.numerator * q.denominator - q.numerator * self.denominator

    def __eq__(self, o):
        c = self._cmp(o)
        return NotImplemented if c is NotImplemented else c == 0

    def __lt__(self, o):
        c = self._cmp(o)
        return NotImplemented if c is NotImplemented else c < 0

    def __le__(self, o):
        c = self._cmp(o)
        return NotImplemented if c is NotImplemented else c <= 0

    def __gt__(self, o):
        c = self._cmp(o)
        return NotImplemented if c is NotImplemented else c > 0

    def __ge__(self, o):
        c = self._cmp(o)
        return NotImplemented if c is NotImplemented else c >= 0

    def __hash__(self):
        return hash(self.numerator) if self.denominator == 1 else hash((self.numerator, self.denominator))

    def __bool__(self):
        return self.numerator != 0

    def __float__(self):
        return self.numerator / self.denominator

    def __int__(self):
        return int(self.numerator / self.denominator)

    def is_integer(self):
        return self.denominator == 1

    def __repr__(self):
        return f"Fraction({self.numerator}, {self.denominator})"

    def __str__(self):
        return str(self.numerator) if self.denominator == 1 else f"{self.numerator}/{self.denominator}"


def _parse(text):
    """'2.5' -> (5, 2); '1e-3' -> (1, 1000)."""
    t = text.strip().lower()
    exp = 0
    if "e" in t:
        t, e = t.split("e")
        exp = int(e)
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    whole, _, frac = t.partition(".")
    n = int((whole or "0") + frac)
    d = 10 ** len(frac)
    if exp >= 0:
        n *= 10 ** exp
    else:
        d *= 10 ** -exp
    return sign * n, d
