"""Helpers for the numeric gradient suite (tests/test_gradients.py).

Everything here is independent of matdiff's derivation: random data of the
right kinds, reference NumPy implementations of the element-wise and
row-wise functions, central finite differences and the comparison. The only
matdiff imports are in `eval_text`, which evaluates a printed expression.
"""

import numpy as np

# Every named dimension has its own size, so a transposed or mis-ordered
# product cannot pass by accident.
DIMS = {"N": 5, "D": 4, "C": 3, "H": 6, "K": 7, "L": 8, "P": 2}

EPS = 1e-6
RTOL = 1e-6


# -- reference implementations (written by hand, not taken from matdiff) ----

def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.log1p(np.exp(x))


def relu(x):
    return np.maximum(x, 0.0)


def softmax(z):
    """Row-wise for a matrix, over the entries for a vector."""
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(z):
    return np.log(softmax(z))


def logsumexp(z):
    """Row-wise for a matrix (an N-vector), a float for a vector."""
    m = np.max(z, axis=-1, keepdims=True)
    return (m + np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True)))[..., 0]


def fro2(x):
    return float(np.sum(x * x))


def logabsdet(x):
    return np.linalg.slogdet(x)[1]


# -- random data --------------------------------------------------------------

def make_array(spec, rng):
    """One input from a spec string "[kind:]dims".

    dims: "scalar", "D" (vector) or "N,D" (matrix), letters from DIMS.
    kind: normal (default), pos (uniform in [0.5, 1.5]), spd (M Mᵀ/n + I,
    dims "D"), sym (symmetric, dims "D"), onehot (one-hot rows; a one-hot
    vector for dims "C").
    """
    kind, _, dims = spec.rpartition(":")
    kind = kind or "normal"
    if dims == "scalar":
        shape = ()
    else:
        shape = tuple(DIMS[d.strip()] for d in dims.split(","))
    if kind in ("spd", "sym"):
        (n,) = shape
        m = rng.standard_normal((n, n))
        return m @ m.T / n + np.eye(n) if kind == "spd" else (m + m.T) / 2
    if kind == "onehot":
        a = np.zeros(shape)
        if len(shape) == 1:
            a[rng.integers(shape[0])] = 1.0
        else:
            a[np.arange(shape[0]), rng.integers(shape[1], size=shape[0])] = 1.0
        return a
    if kind == "pos":
        a = rng.uniform(0.5, 1.5, size=shape)
    elif kind == "normal":
        a = rng.standard_normal(shape)
    else:
        raise ValueError(f"unknown data kind {kind!r}")
    return float(a) if shape == () else a


def make_data(specs, seed=0):
    rng = np.random.default_rng(seed)
    return {name: make_array(spec, rng) for name, spec in specs.items()}


# -- finite differences and comparison -----------------------------------------

def numeric_gradient(f, arrays, name, eps=EPS):
    """Central differences of the scalar f(**arrays) in every entry of arrays[name]."""
    x = arrays[name]

    def at(v):
        return float(f(**{**arrays, name: v}))

    if np.ndim(x) == 0:
        return (at(x + eps) - at(x - eps)) / (2 * eps)
    x = np.array(x, dtype=float)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (at(xp) - at(xm)) / (2 * eps)
    return g


def assert_close(actual, expected, what, rtol=RTOL):
    """|actual − expected| ≤ rtol · max(1, max|expected|), entry-wise."""
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, \
        f"{what}: shape {actual.shape}, expected {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: not finite:\n{actual}"
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    err = float(np.max(np.abs(actual - expected))) / scale if actual.size else 0.0
    assert err <= rtol, \
        f"{what}: relative error {err:.3e} > {rtol:.0e}\nactual:\n{actual}\nexpected:\n{expected}"


def assert_kind_of(g, like, what):
    """A gradient has its variable's form: float for a scalar, same-shape array otherwise."""
    if np.ndim(like) == 0:
        assert isinstance(g, float) and not isinstance(g, np.ndarray), \
            f"{what}: a scalar's gradient should be a float, got {type(g).__name__}"
    else:
        assert isinstance(g, np.ndarray), f"{what}: expected an array, got {type(g).__name__}"
        assert g.shape == np.shape(like), f"{what}: shape {g.shape}, expected {np.shape(like)}"


# -- evaluating printed text ----------------------------------------------------

def eval_text(text, vars, arrays, like=None):
    """The value of the matdiff expression `text` (scalar, vector or matrix)
    at `arrays` (a superset of its variables, keyed by generated-code names).

    The text is compiled with the same pipeline as `Result(text, [], vars)`
    (Problem -> module_source with no gradients); Result itself refuses a
    non-scalar expression even when no gradient is asked (see the report).

    A printed gradient such as `α𝟙𝟙ᵀ` or `tI` does not say how long its `𝟙`
    or `I` is: that comes from the context (SPEC: each `ones`/`I` gets its
    own inferred size). When the text alone leaves a size undetermined, it is
    evaluated in the context of a zero of the gradient's shape `like`
    (`(text) + 0 Probe_`, Probe_ declared with its own dimension names).

    Returns (value, names of the variables the text uses).
    """
    from matdiff.engine import Problem
    from matdiff.numpy_emit import compile_module, module_source, py_name

    def run(src, decls, extra):
        problem = Problem(src, decls)
        used = [py_name(n) for n in problem.variables]
        missing = [n for n in used if n not in arrays and n not in extra]
        assert not missing, f"the printed text {text!r} uses unknown variables {missing}"
        ns = compile_module(module_source(problem, {}))
        args = {n: extra[n] if n in extra else arrays[n] for n in used}
        return ns["value"](**args), [n for n in used if n not in extra]

    from matdiff import MatdiffError
    try:
        return run(text, vars, {})
    except MatdiffError as e:
        if "cannot be read from any input" not in str(e) or like is None or np.ndim(like) == 0:
            raise
    *prelude, last = [s for s in text.replace("\n", ";").split(";") if s.strip()]
    if np.ndim(like) == 2:
        # declared names never unify: a square gradient gets one name for both
        square = np.shape(like)[0] == np.shape(like)[1]
        probe, decl = "Probe_", "matrix(P1_,P1_)" if square else "matrix(P1_,P2_)"
    else:
        probe, decl = "probe_", "vector(P1_)"
    src = "; ".join(prelude + [f"({last}) + 0 {probe}"])
    return run(src, {**vars, probe: decl}, {probe: np.zeros(np.shape(like))})
