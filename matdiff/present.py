"""The order a reader sees: how printers and emitters lay out the terms of a
sum and the factors of a product. The IR's own order is canonical (by
structure, ir._canonical) and says nothing about presentation; this module is
the "present" phase, kept apart from it."""

from .ir import split_coef


def add_order(x):
    # positive terms first, then by the leaf they start from, shallow to deep
    c, core = split_coef(x)
    if core is None:
        return (c < 0, 0, "", 0, 0)
    return (c < 0, 1, core.leaf, core.depth, core.skey)


def mul_order(x):
    # scalars first, then variables (y ⊙ Xw, a ⊙ exp(Xb)), then a back-propagated
    # product before the local factors, as in δ = (δ'Wᵀ) ⊙ σ'(z); sums last.
    if x.op == "const":
        return (False, False, -1, 0, "", 0)  # a numeric coefficient leads
    rank = 0 if x.op == "var" else 1 if x.op == "matmul" else 2
    return (not x.is_scalar, x.op == "add", rank, x.depth, x.leaf, x.skey)


def terms(n):
    """A sum's terms in reading order."""
    return sorted(n.args, key=add_order)


def factors(n):
    """A product's factors in reading order (the coefficient first)."""
    return sorted(n.args, key=mul_order)
