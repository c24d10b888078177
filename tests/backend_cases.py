"""Programs and data shared by the JAX and PyTorch backend tests.

* the mission example and the seeds' networks, each with a hand-written
  version in the framework (in the test files);
* one small program per entry of the rule table, drawn from the table
  itself, so that a new element-wise function or op is covered as soon as it
  is added (its spelling: the entry's `text`, or a call by its name; an op
  whose spelling this cannot find fails here, asking for one in SPELLINGS);
* data of the right kinds with every dimension a different size.

The truth for the rule-table programs is the reference interpreter
(matdiff/reference.py, which shares nothing with the emitters) run in the
framework itself and differentiated by it: jax.grad of it under jax.numpy,
torch.autograd.grad of it under tests/torch_xp.py.
"""

import numpy as np

from matdiff.ops import registry
from matdiff.api import Result
from matdiff.check import random_inputs
from matdiff.diff import topo_order
from matdiff.errors import MatdiffError
from matdiff.numpy_emit import py_name

SIZES = [7, 5, 4, 3, 6, 8, 9]

MISSION = ("-tr(Y^T log softmax(XW+b))", ["W", "b"], {"Y": "onehot"})
TWO_LAYER = ("Z1 = X W1 + b1; H1 = σ(Z1); Z2 = H1 W2 + b2; "
             "L = -tr(Y^T log softmax(Z2))/N + λ(‖W1‖_F^2 + ‖W2‖_F^2)",
             ["W1", "b1", "W2", "b2"], {"Y": "onehot"})
TWO_LAYER_RELU = (TWO_LAYER[0].replace("σ(Z1)", "relu(Z1)"), TWO_LAYER[1], TWO_LAYER[2])
K_LAYER = ("a1 = W1 x + b1; h1 = σ(a1); a2 = W2 h1 + b2; h2 = σ(a2); a3 = W3 h2 + b3; "
           "f = -y^T log softmax(a3)", ["W1", "b1", "W2", "b2", "W3", "b3"], {"y": "onehot"})
TANH_MLP = ("z1 = tanh(W1 x + b1); z2 = tanh(W2 z1 + b2); R = 1/2 ‖z2 - t‖^2",
            ["W1", "b1", "W2", "b2"], {})

NETWORKS = {"mission": MISSION, "two-layer σ": TWO_LAYER, "two-layer relu": TWO_LAYER_RELU,
            "k-layer σ": K_LAYER, "tanh MLP": TANH_MLP}

# Ops the programs of every test use (sums, products, powers, transposes, named
# intermediates, element-wise functions): no program of their own.
STRUCTURAL = {"add", "mul", "matmul", "pow", "T", "let", "fn"}
# Spellings for ops whose rule entry has no `text` ({X}: the argument), with
# the further variables they bring to differentiate.
SPELLINGS = {"inv": [("inv({X})", [])], "unvec": [("unvec({X}, 3, 4)", [])],
             "kron": [("{X} ⊗ B", ["B"]), ("kron({X}, B)", ["B"])]}
# Arguments to try, in order: (text, variables to differentiate).
ARGUMENTS = [("X W", ["X", "W"]), ("X V", ["X", "V"]), ("X X^T + I", ["X"]), ("X w", ["X", "w"])]
PARAMS = ["α", "β", "γ"]


# Constructs beyond the op table (axis reductions with the axis kept, norms of
# layers, solves for single-use inverses, Kronecker-free Hessian chains).
CONSTRUCTS = [
    ("sum-axis1", "a^T sum(X, 1) + sum(Y ⊙ (X - sum(X, 1)))", ["X"], {}),
    ("sum-axis0", "sum(X, 0) w + sum(Y ⊙ (X - sum(X, 0)))", ["X"], {}),
    ("mean-var-axes", "sum(Y ⊙ (mean(X, 1) + mean(X, 0))) + a^T var(X, 1) + var(X, 0) w",
     ["X", "Y"], {}),
    ("mean-var-all", "mean(X) + var(X) + var(x)", ["X", "x"], {}),
    ("layer-norm-affine", "H = (X - mean(X, 1)) ./ sqrt(var(X, 1) + 0.01); Z = H ⊙ γ + β; "
     "L = sum(Y ⊙ tanh(Z))", ["X", "γ", "β"], {"γ": "vector(D)", "β": "vector(D)"}),
    ("batch-norm", "sum(Y ⊙ relu((X - mean(X, 0)) ./ sqrt(var(X, 0) + 0.01)) W)", ["X", "W"],
     {"X": "matrix(N,D)", "W": "matrix(D,C)"}),
    ("solve", "a^T (X X^T + I)^-1 b + logdet(X X^T + I)", ["X", "a", "b"], {}),
    ("diag-chain", "a^T diag(x) B diag(u) C c", ["x", "u", "B"], {}),
    ("scalars", "ρ = α β + 2; L = ρ sum(exp(α x)) / 3 + sqrt(2 / pi) sum(gelu_tanh(x))",
     ["α", "β", "x"], {"α": "scalar", "β": "scalar"}),
]


def _ops_in(problem):
    return {n.op for n in topo_order(problem.root)}


def rule_programs():
    """[(id, src, wrt, vars)]: one program per element-wise function and op."""
    out = []
    for name, entry in registry.elementwise().items():
        params = PARAMS[:len(entry.get("params", ()))]
        arg = "exp(X W)" if entry.get("domain") == "positive" else "X W"
        src = f"sum(C .* {name}({', '.join([arg] + params)}))"
        out.append((f"fn-{name}", src, ["X", "W"] + params, {}))
    for name, entry in registry.ops().items():
        if name in STRUCTURAL or not isinstance(entry, dict) or entry.get("macro"):
            continue
        spellings = ([(entry["text"], [])] if "text" in entry else []) + SPELLINGS.get(name, []) \
            + [(f"{name}({{X}})", [])]
        found = None
        for spelling, more in spellings:
            for arg, wrt in ARGUMENTS:
                if entry.get("domain") == "spd" and "I" not in arg:
                    continue
                src = "sum(sin(0.3 " + spelling.replace("{X}", f"({arg})") + "))"
                try:
                    problem = Result(src, [], {}).problem
                except MatdiffError:
                    continue
                if name in _ops_in(problem):
                    found = (f"op-{name}", src, wrt + more, {})
                    break
            if found:
                break
        # an op no spelling reaches is reported by the test, not dropped
        out.append(found or (f"op-{name}", None, None, None))
    return out + CONSTRUCTS


def data(src, vars, seed=0):
    """{user name: numpy array or float}, float64, all dimensions different."""
    problem = Result(src, [], vars).problem
    by_param = random_inputs(problem, np.random.default_rng(seed), sizes=SIZES)
    return {n: by_param[py_name(n)] for n in problem.variables}, problem


def params_of(problem):
    return {n: py_name(n) for n in problem.variables}
