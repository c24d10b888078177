"""`matdiff check`: the generated gradient against central differences at
random data of the right kinds (positive under log/sqrt, SPD under
inv/det/logdet, one-hot rows for onehot)."""

import numpy as np

from .api import Result
from .diff import topo_order
from .engine import shape_of
from .numpy_emit import py_name

_POSITIVE_FNS = {"log", "sqrt"}


def _positive_integer(e):
    v = e.attr if e.op == "const" else None
    return v is not None and not isinstance(v, float) and v.denominator == 1 and v > 0


def _needs(problem):
    """Which variables must be positive, and which must be SPD."""
    positive, spd = set(), set()
    for n in topo_order(problem.root):
        under = None
        if n.op == "fn" and n.attr in _POSITIVE_FNS:
            under = positive
        elif n.op == "pow" and not _positive_integer(n.args[1]):
            under = positive  # fractional or negative powers
        elif n.op in ("inv", "det", "logdet"):
            under = spd
        if under is not None:
            for m in topo_order(n.args[0]):
                if m.op == "var":
                    under.add(m.attr[0])
    return positive, spd


def random_inputs(problem, rng, sizes=None):
    """{param name: array} with all named dimensions different."""
    dims = {}
    sizes = list(sizes or [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
    positive, spd = _needs(problem)
    out = {}
    for name, node in problem.variables.items():
        shape = []
        for d in shape_of(node):
            if isinstance(d, int):
                shape.append(d)
            else:
                if d not in dims:
                    dims[d] = sizes[len(dims) % len(sizes)]
                shape.append(dims[d])
        kind = node.attr[1]
        if kind == "onehot":
            if len(shape) == 1:
                a = np.zeros(shape)
                a[rng.integers(shape[0])] = 1.0
            else:
                a = np.zeros(shape)
                a[np.arange(shape[0]), rng.integers(shape[1], size=shape[0])] = 1.0
        elif kind == "spd" or (name in spd and len(shape) == 2 and shape[0] == shape[1]):
            m = rng.standard_normal(shape)
            a = m @ m.T / shape[0] + np.eye(shape[0])
        elif kind == "symmetric":
            m = rng.standard_normal(shape)
            a = (m + m.T) / 2
            if name in positive:
                a = np.abs(a) + 0.5
        elif name in positive:
            a = rng.uniform(0.5, 1.5, size=shape)
        else:
            a = rng.standard_normal(shape)
        out[py_name(name)] = float(a) if shape == [] else a
    return out


def numeric_gradient(value, arrays, name, eps=1e-6):
    """Central differences of value(**arrays) in every entry of arrays[name]."""
    x = arrays[name]
    if np.isscalar(x):
        def at(v):
            return value(**{**arrays, name: v})
        return (at(x + eps) - at(x - eps)) / (2 * eps)
    x = np.array(x, dtype=float)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (value(**{**arrays, name: xp}) - value(**{**arrays, name: xm})) / (2 * eps)
    return g


def check_gradient(src, wrt, vars=None, seed=0, tol=1e-5):
    result = Result(src, wrt, vars)
    ns = result.numpy_namespace()
    rng = np.random.default_rng(seed)
    arrays = random_inputs(result.problem, rng)
    _, grads = ns["value_and_gradient"](**arrays)
    if len(result.wrt) == 1:
        grads = (grads,)
    ok, lines = True, []
    for name, g in zip(result.wrt, grads):
        target = result.problem.target(name)
        if target.op != "var":
            lines.append(f"{name}: an intermediate; checked through the variables it depends on")
            continue
        fd = numeric_gradient(ns["value"], arrays, py_name(name))
        if target.attr[1] in ("symmetric", "spd"):
            fd = (fd + np.transpose(fd)) / 2
        g = np.asarray(g, dtype=float)
        if g.shape != np.shape(fd):
            ok = False
            lines.append(f"{name}: shape {g.shape} but expected {np.shape(fd)}  MISMATCH")
            continue
        err = float(np.max(np.abs(g - fd)) / max(1.0, float(np.max(np.abs(fd))))) if g.size else 0.0
        good = err <= tol and np.all(np.isfinite(g))
        ok &= bool(good)
        lines.append(f"{name}: max relative error {err:.2e}  {'ok' if good else 'MISMATCH'}")
    return ok, lines
