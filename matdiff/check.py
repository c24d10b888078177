"""`matdiff check`: the generated module against an independent reference.

At random data of the right kinds (positive under log/sqrt and fractional
powers, SPD under inv/det/logdet, one-hot rows for onehot, every named
dimension a different size) the module's `value` and the value returned by
`value_and_gradient` are compared with the reference interpreter
(matdiff/reference.py, which evaluates the parsed program directly, without
the IR or the emitter), and each gradient with central differences of the
*reference*, never of the module's own `value` (that loop would be closed: an
emitter bug that breaks both the same way would pass). A gradient with respect
to an intermediate is checked by replacing that binding's value in the
reference (`overrides`). For symmetric/spd variables the comparison is with
sym(FD) = (FD + FDᵀ)/2; for onehot ones both sides are projected on the
directions that keep the row sums (the function is only defined there).

`check_gradient(src, wrt, vars, seed, tol)` is what the CLI calls;
`check_module(module, src, wrt, vars, arrays, …)` does the comparison for any
module (a namespace or its source text), so a test can feed it a broken one.
"""

import numpy as np

from .api import Result
from .dims import factors, size
from .diff import topo_order
from .engine import shape_of
from .numpy_emit import py_name
from . import reference

def _domain(n):
    """The data an op needs beneath it, from its rule entry ("positive", "spd")."""
    from .ops import registry
    if n.op == "fn":
        return registry.elementwise()[n.attr].get("domain")
    return registry.ops().get(n.op, {}).get("domain")


def _positive_integer(e):
    v = e.attr if e.op == "const" else None
    return v is not None and not isinstance(v, float) and v.denominator == 1 and v > 0


def _needs(problem):
    """Which variables must be positive, and which must be SPD."""
    positive, spd = set(), set()
    for n in topo_order(problem.root):
        domain = _domain(n)
        under = {"positive": positive, "spd": spd}.get(domain)
        if n.op == "pow" and not _positive_integer(n.args[1]):
            under = positive  # fractional or negative powers
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
            for f in factors(d):  # a product m·n (vec, kron): sizes for m and n
                if not isinstance(f, int) and f not in dims:
                    dims[f] = sizes[len(dims) % len(sizes)]
            shape.append(size(d, dims))
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
    """(ok, lines): one line per variable in `wrt` (plus a `value:` line when
    the module's value disagrees with the reference)."""
    result = Result(src, wrt, vars)
    ns = result.numpy_namespace()
    rng = np.random.default_rng(seed)
    problem = result.problem
    by_param = random_inputs(problem, rng)
    arrays = {name: by_param[py_name(name)] for name in problem.variables}
    kinds = {name: node.attr[1] for name, node in problem.variables.items()}
    return check_module(ns, src, result.wrt, vars, arrays, kinds=kinds, tol=tol)


def _rel_err(actual, expected):
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    if actual.shape != expected.shape:
        return None
    if not actual.size:
        return 0.0
    if not np.all(np.isfinite(actual)):
        return float("inf")
    scale = max(1.0, float(np.max(np.abs(expected))))
    return float(np.max(np.abs(actual - expected))) / scale


def _project_onehot(g):
    """The part of g along directions that keep the row sums (entries' sum
    for a vector): what the values on the one-hot set determine."""
    g = np.asarray(g, dtype=float)
    if g.ndim == 1:
        return g - np.mean(g)
    return g - np.mean(g, axis=1, keepdims=True)


def _fd(f, x, eps=1e-6):
    """Central differences of the scalar f at x (float, 1-D or 2-D)."""
    if np.ndim(x) == 0:
        return (f(float(x) + eps) - f(float(x) - eps)) / (2 * eps)
    x = np.array(x, dtype=float)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (f(xp) - f(xm)) / (2 * eps)
    return g


def check_module(module, src, wrt, vars, arrays, kinds=None, tol=1e-5, params=None):
    """Check a generated module against the reference interpreter.

    module: the namespace of a compiled module (a dict), or its source text.
    arrays: {user name: value} at which to compare. kinds: {name: kind}
    (default: from `vars`). params: {user name: the module's parameter name}
    (default: matdiff's renaming of unsafe names). Returns (ok, lines)."""
    if isinstance(module, str):
        from .numpy_emit import compile_module
        module = compile_module(module)
    if isinstance(wrt, str):
        wrt = [wrt]
    wrt = list(dict.fromkeys(wrt))
    if kinds is None:
        kinds = {n: k for n, (k, _) in reference.normalize_vars(vars).items()}
    params = params or {}
    kwargs = {params.get(n, py_name(n)): v for n, v in arrays.items()}
    ok, lines = True, []
    try:
        prog = reference.Program(src, vars)
        ref_value, bound, _ = prog.evaluate_all(arrays)
    except (reference.EvaluationError, np.linalg.LinAlgError) as e:
        return False, [f"reference: cannot evaluate the program ({e})  MISMATCH"]
    try:
        value = module["value"](**kwargs)
        v2, grads = module["value_and_gradient"](**kwargs)
    except Exception as e:  # a generated module must not raise on valid data
        return False, [f"module: raised {type(e).__name__}: {e}  MISMATCH"]
    for what, v in (("value", value), ("value_and_gradient's value", v2)):
        err = _rel_err(v, ref_value)
        if err is None or not err <= tol:
            ok = False
            lines.append(f"{what}: the module gives {v!r}, the reference {ref_value!r}  MISMATCH")
    if len(wrt) == 1:
        grads = (grads,)
    if len(grads) != len(wrt):
        return False, lines + [f"module: {len(grads)} gradients for {len(wrt)} variables  MISMATCH"]
    for name, g in zip(wrt, grads):
        if name in arrays:
            def f(x, name=name):
                return prog.evaluate({**arrays, name: x})
            point = arrays[name]
        elif name in bound:
            def f(x, name=name):
                return prog.evaluate(arrays, overrides={name: x})
            point = bound[name]
        else:
            ok = False
            lines.append(f"{name}: neither an input nor an intermediate of the program  MISMATCH")
            continue
        try:
            fd = _fd(f, point)
        except (reference.EvaluationError, np.linalg.LinAlgError) as e:
            ok = False
            lines.append(f"{name}: the reference cannot evaluate nearby points ({e})  MISMATCH")
            continue
        kind = kinds.get(name) if name in arrays else None
        if kind in ("symmetric", "spd"):
            fd = (fd + np.transpose(fd)) / 2
        g = np.asarray(g, dtype=float)
        if kind == "onehot" and g.shape == np.shape(fd):
            g, fd = _project_onehot(g), _project_onehot(fd)
        err = _rel_err(g, fd)
        if err is None:
            ok = False
            lines.append(f"{name}: shape {g.shape} but expected {np.shape(fd)}  MISMATCH")
            continue
        good = err <= tol
        ok &= bool(good)
        note = " (an intermediate)" if name not in arrays else ""
        lines.append(f"{name}: max relative error {err:.2e}{note}  {'ok' if good else 'MISMATCH'}")
    return ok, lines
