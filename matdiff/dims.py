"""Resolved dimensions: an int, a name (str), or a product of them (`Prod`).

`vec(X)` of an m×n X has m·n entries and `A ⊗ B` is (m·p)×(n·q): such a size
is a `Prod`, made only by `product`, which multiplies the numbers out, drops
factors 1 and sorts the names, so that equal products are equal values
(m·n = n·m). A `Prod` is a str subclass spelled `m·n` (`3·m` with a number),
which is also how it reads back: `·` is the product operator of the
language, and dimension names used as scalars multiply. Its `factors` are
the numbers and names it is the product of.
"""

from math import prod as _prod


class Prod(str):
    """A product of dimensions, e.g. Prod('m_X·n_X') with factors ('m_X', 'n_X')."""

    __slots__ = ("factors",)

    def __new__(cls, factors):
        self = super().__new__(cls, "·".join(str(f) for f in factors))
        self.factors = tuple(factors)
        return self

    def __reduce__(self):
        return (Prod, (self.factors,))


def factors(d):
    """The numbers and names whose product d is."""
    return d.factors if isinstance(d, Prod) else (d,)


def product(*ds):
    """The dimension d1·d2·…: an int when all are numbers, a name when only
    one name is left, else a canonical Prod."""
    coef, names = 1, []
    for d in ds:
        for f in factors(d):
            if isinstance(f, int):
                coef *= f
            else:
                names.append(f)
    if not names:
        return coef
    names.sort()
    if coef == 1 and len(names) == 1:
        return names[0]
    return Prod(([coef] if coef != 1 else []) + names)


def size(d, sizes):
    """The number d stands for, given {name: int} for its names."""
    return _prod(f if isinstance(f, int) else sizes[f] for f in factors(d))
