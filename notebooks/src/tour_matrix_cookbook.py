# %% [markdown]
# # A tour of matdiff: Matrix Cookbook identities, Hessians, Jacobians, symmetric variables
#
# matdiff derives closed-form gradients the way the matrix-differential method
# does by hand: build $\mathrm df$ with $\mathrm d(XY) = \mathrm dX\,Y + X\,\mathrm dY$,
# $\mathrm d(X^{-1}) = -X^{-1}\mathrm dX\,X^{-1}$, $\mathrm d\det X = \det X\operatorname{tr}(X^{-1}\mathrm dX)$, …,
# then move $\mathrm dX$ to the right with the trace identities until
# $\mathrm df = \operatorname{tr}(G^\top\mathrm dX)$, and print $G$.
#
# This tour checks a row of identities from *The Matrix Cookbook* (Petersen &
# Pedersen), then second derivatives, Jacobians and symmetric matrices, and
# ends with the speed of a generated kernel against a framework's autodiff.
# Every formula is checked against central finite differences of NumPy
# written by hand, with every dimension a different size.

# %%
import contextlib
import io
import timeit

import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, Math, display

import matdiff
from matdiff.cli import main as matdiff_main


def matdiff_cli(*args):
    """What the command `matdiff ARGS…` prints: its entry point, run in this process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            matdiff_main(list(args))
        except SystemExit as exit_:
            if exit_.code:
                raise RuntimeError(f"matdiff {' '.join(args)} exited with status {exit_.code}")
    return out.getvalue()


def module(source):
    """Execute a module that matdiff generated (`--format numpy`): its functions by name."""
    namespace = {}
    exec(compile(source, "<matdiff module>", "exec"), namespace)
    return namespace


def numeric_grad(f, arrays, name, eps=1e-6):
    """Central differences of the scalar f(**arrays) in every entry of arrays[name]."""
    x0 = np.asarray(arrays[name], dtype=float)
    g = np.zeros_like(x0)
    for i in np.ndindex(x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(**{**arrays, name: xp}) - f(**{**arrays, name: xm})) / (2 * eps)
    return g


def rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(1e-12, np.max(np.abs(b))))

# %% [markdown]
# ## Matrix Cookbook identities
#
# Each row: the function as typed, matdiff's gradient, the kind of Cookbook
# identity, and the largest relative difference of matdiff's
# compiled gradient and of the Cookbook formula (both written out in NumPy)
# from finite differences. Sizes: $A$ is 3×4, $X$ 4×5, $B$ 5×2 for the
# products; square matrices are 4×4 and well conditioned ($X = 4I + $ noise).
# The Cookbook's formulas are typed in NumPy in the cell (for `log det(X^T A X)`
# its general form $AX(X^\top AX)^{-1} + A^\top X(X^\top A^\top X)^{-1}$).

# %%
rng = np.random.default_rng(5)
inv = np.linalg.inv
m, n, p, q = 3, 4, 5, 2
S4 = lambda: 4 * np.eye(n) + rng.standard_normal((n, n))       # a well-conditioned square matrix
spd = lambda k: (lambda M: M @ M.T + np.eye(k))(rng.standard_normal((k, k)))  # symmetric positive definite
rect = dict(A=rng.standard_normal((m, n)), X=rng.standard_normal((n, p)), B=rng.standard_normal((p, q)))
vecs = dict(a=rng.standard_normal(n), b=rng.standard_normal(p))

cases = [
    # (expression, wrt, arrays, f by hand, Cookbook gradient by hand, Cookbook eq.)
    ("tr(A X B)", "X", dict(A=rng.standard_normal((q, n)), X=rect["X"], B=rng.standard_normal((p, q))),
     lambda A, X, B: np.trace(A @ X @ B), lambda A, X, B: A.T @ B.T, "trace"),
    ("a^T X b", "X", dict(a=vecs["a"], X=rect["X"], b=vecs["b"]),
     lambda a, X, b: a @ X @ b, lambda a, X, b: np.outer(a, b), "bilinear form"),
    ("tr(X A X^T)", "X", dict(X=rect["X"], A=rng.standard_normal((p, p))),
     lambda X, A: np.trace(X @ A @ X.T), lambda X, A: X @ (A + A.T), "trace, quadratic"),
    ("tr(X^T A X)", "X", dict(X=rect["X"], A=rng.standard_normal((n, n))),
     lambda X, A: np.trace(X.T @ A @ X), lambda X, A: (A + A.T) @ X, "trace, quadratic"),
    ("det(X)", "X", dict(X=S4()),
     lambda X: np.linalg.det(X), lambda X: np.linalg.det(X) * inv(X).T, "determinant"),
    ("logdet(X)", "X", dict(X=S4()),
     lambda X: np.linalg.slogdet(X)[1], lambda X: inv(X).T, "log det"),
    ("tr(X^-1 A)", "X", dict(X=S4(), A=rng.standard_normal((n, n))),
     lambda X, A: np.trace(inv(X) @ A), lambda X, A: -(inv(X) @ A @ inv(X)).T, "inverse"),
    ("a^T X^-1 b", "X", dict(a=rng.standard_normal(n), X=S4(), b=rng.standard_normal(n)),
     lambda a, X, b: a @ inv(X) @ b, lambda a, X, b: -inv(X).T @ np.outer(a, b) @ inv(X).T, "inverse"),
    ("x^T A x", "x", dict(x=rng.standard_normal(n), A=rng.standard_normal((n, n))),
     lambda x, A: x @ A @ x, lambda x, A: (A + A.T) @ x, "quadratic form"),
    ("(A x + b)^T C (D x + e)", "x",
     dict(A=rng.standard_normal((m, n)), x=rng.standard_normal(n), b=rng.standard_normal(m),
          C=rng.standard_normal((m, p)), D=rng.standard_normal((p, n)), e=rng.standard_normal(p)),
     lambda A, x, b, C, D, e: (A @ x + b) @ C @ (D @ x + e),
     lambda A, x, b, C, D, e: A.T @ C @ (D @ x + e) + D.T @ C.T @ (A @ x + b), "quadratic form"),
    ("‖X W - Y‖_F^2", "W", dict(X=rng.standard_normal((p, n)), W=rng.standard_normal((n, q)), Y=rng.standard_normal((p, q))),
     lambda X, W, Y: np.sum((X @ W - Y) ** 2), lambda X, W, Y: 2 * X.T @ (X @ W - Y), "least squares"),
    ("log det(X^T A X)", "X", dict(X=rng.standard_normal((p, n)), A=spd(p)),
     lambda X, A: np.linalg.slogdet(X.T @ A @ X)[1],
     lambda X, A: A @ X @ inv(X.T @ A @ X) + A.T @ X @ inv(X.T @ A.T @ X), "log det"),
]

rows = ["| f | matdiff's gradient | identity | matdiff vs FD | Cookbook formula vs FD |", "|---|---|---|---|---|"]
for expr, wrt, arrays, f, cookbook, eq in cases:
    g = matdiff.grad(expr, wrt=wrt)
    fd = numeric_grad(f, arrays, wrt)
    e_md, e_cb = rel_err(g.numpy_function()(**arrays), fd), rel_err(cookbook(**arrays), fd)
    assert e_md < 1e-6 and e_cb < 1e-6, (expr, e_md, e_cb)
    rows.append(f"| `{expr}` | ${g.latex}$ | {eq} | {e_md:.0e} | {e_cb:.0e} |")
display(Markdown("\n".join(rows)))

# %% [markdown]
# The derivation behind one of them, $\partial \operatorname{tr}(X^{-1}A)/\partial X$, as
# `matdiff grad … --steps` prints it: the inverse's differential, then the
# cyclic property of the trace.

# %%
print(matdiff_cli("grad", "tr(X^-1 A)", "--wrt", "X", "--steps"))

# %% [markdown]
# ## Hessians
#
# `matdiff hessian` differentiates the gradient again, in forward mode. For a
# vector it prints the $n\times n$ matrix $H$ with $\mathrm d(\nabla f) = H\,\mathrm dx$; for a
# matrix the second differential and, where it exists, the Kronecker form on
# $\operatorname{vec}(X)$ (columns stacked). The compiled `hessian` is checked against finite
# differences of the gradient written by hand, and the printed formula against
# NumPy (`np.kron`, a commutation matrix built by hand).

# %%
def hessian_fd(grad, x, eps=1e-6):
    """∂ vec(grad) / ∂ vec(x) by central differences, vec in column-major order."""
    flat = x.ravel(order="F")
    cols = []
    for k in range(flat.size):
        e = np.zeros_like(flat)
        e[k] = eps
        up, dn = (flat + e).reshape(x.shape, order="F"), (flat - e).reshape(x.shape, order="F")
        cols.append((grad(up) - grad(dn)).ravel(order="F") / (2 * eps))
    return np.stack(cols, axis=1)


def commutation(r, c):
    """K with K vec(M) = vec(Mᵀ) for an r×c matrix M."""
    K = np.zeros((r * c, r * c))
    for i in range(r):
        for j in range(c):
            K[i * c + j, j * r + i] = 1
    return K


softmax = lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum()
sig = lambda z: 1 / (1 + np.exp(-z))
x5 = rng.standard_normal(5)
Xl, yl, wl = rng.standard_normal((7, 3)), rng.choice([-1.0, 1.0], 7), rng.standard_normal(3)
Xq, Aq = rng.standard_normal((4, 3)), rng.standard_normal((4, 4))
Xd = S4()

hess_cases = [
    ("logsumexp(x)", "x", dict(x=x5), lambda x: softmax(x),
     lambda x: np.diag(softmax(x)) - np.outer(softmax(x), softmax(x))),
    ("sum(log(1 + exp(-y .* (X w))))", "w", dict(X=Xl, y=yl, w=wl),
     lambda w: -Xl.T @ (yl * sig(-yl * (Xl @ w))),
     lambda X, y, w: X.T @ np.diag(y**2 * sig(-y * (X @ w)) * (1 - sig(-y * (X @ w)))) @ X),
    ("tr(X^T A X)", "X", dict(X=Xq, A=Aq), lambda X: (Aq + Aq.T) @ X,
     lambda X, A: np.kron(np.eye(X.shape[1]), A + A.T)),
    ("logdet(X)", "X", dict(X=Xd), lambda X: inv(X).T,
     lambda X: -np.kron(inv(X), inv(X).T) @ commutation(*X.shape)),
]
for expr, wrt, arrays, grad_by_hand, printed_by_hand in hess_cases:
    print(matdiff_cli("hessian", expr, "--wrt", wrt), end="")
    H = module(matdiff_cli("hessian", expr, "--wrt", wrt, "--format", "numpy"))["hessian"](**arrays)
    H_fd = hessian_fd(grad_by_hand, arrays[wrt])
    e1, e2 = rel_err(np.reshape(H, H_fd.shape), H_fd), rel_err(printed_by_hand(**arrays), H_fd)
    print(f"    compiled Hessian vs FD {e1:.1e}; printed formula in NumPy vs FD {e2:.1e}\n")
    assert e1 < 1e-6 and e2 < 1e-6

# %% [markdown]
# ## Jacobians
#
# For a vector function, `matdiff jacobian` gives $J$ with $\mathrm df = J\,\mathrm dx$. A two-layer
# tanh map $f(x) = \tanh(W_2\tanh(W_1x))$ with $x\in\mathbb R^3$, $W_1$ 4×3, $W_2$ 2×4:

# %%
print(matdiff_cli("jacobian", "tanh(W2 tanh(W1 x))", "--wrt", "x"), end="")
jacobian = module(matdiff_cli("jacobian", "tanh(W2 tanh(W1 x))", "--wrt", "x", "--format", "numpy"))["jacobian"]
W1, W2, x3 = rng.standard_normal((4, 3)), rng.standard_normal((2, 4)), rng.standard_normal(3)
f = lambda x: np.tanh(W2 @ np.tanh(W1 @ x))
J_fd = np.stack([(f(x3 + 1e-6 * e) - f(x3 - 1e-6 * e)) / 2e-6 for e in np.eye(3)], axis=1)
J = jacobian(W1=W1, W2=W2, x=x3)
by_hand = np.diag(1 - f(x3) ** 2) @ W2 @ np.diag(1 - np.tanh(W1 @ x3) ** 2) @ W1
print(f"shape {J.shape}; compiled vs FD {rel_err(J, J_fd):.1e}; printed formula in NumPy vs FD {rel_err(by_hand, J_fd):.1e}")
assert J.shape == (2, 3) and rel_err(J, J_fd) < 1e-8 and rel_err(by_hand, J_fd) < 1e-8

# %% [markdown]
# ## Symmetric variables
#
# When $S$ is declared `symmetric` (or `spd`), only symmetric perturbations
# $\mathrm dS$ are allowed, and the gradient is the symmetric $G$ with
# $\mathrm df = \operatorname{tr}(G^\top\mathrm dS)$ for every symmetric $\mathrm dS$:
# $\operatorname{sym}(G_0) = (G_0 + G_0^\top)/2$ of the unconstrained gradient $G_0$.
# Checked two ways: $G$ is symmetric, and its inner product with a random
# symmetric direction $E$ is the directional derivative $(f(S + \varepsilon E) - f(S - \varepsilon E))/2\varepsilon$.
# (Entry-wise finite differences would perturb $S_{ij}$ without $S_{ji}$ and leave the space.)

# %%
x4, A4 = rng.standard_normal(n), rng.standard_normal((n, n))
M = rng.standard_normal((n, n))
S = M @ M.T + np.eye(n)                                     # symmetric positive definite
sym_cases = [
    ("x^T S x", {"S": "symmetric"}, lambda S: x4 @ S @ x4, dict(x=x4), lambda S: np.outer(x4, x4)),
    ("tr(A S)", {"S": "symmetric"}, lambda S: np.trace(A4 @ S), dict(A=A4), lambda S: (A4 + A4.T) / 2),
    ("logdet(S)", {"S": "spd"}, lambda S: np.linalg.slogdet(S)[1], {}, lambda S: inv(S)),
    ("tr(S^-1 A)", {"S": "spd"}, lambda S: np.trace(inv(S) @ A4), dict(A=A4),
     lambda S: -(inv(S) @ A4 @ inv(S) + (inv(S) @ A4 @ inv(S)).T) / 2),
]
for expr, decl, f, others, by_hand in sym_cases:
    g = matdiff.grad(expr, wrt="S", vars=decl)
    G = g.numpy_function()(S=S, **others)
    worst = 0.0
    for _ in range(5):
        E = rng.standard_normal((n, n)); E = E + E.T
        dd = (f(S + 1e-6 * E) - f(S - 1e-6 * E)) / 2e-6
        worst = max(worst, abs(np.sum(G * E) - dd) / max(1.0, abs(dd)))
    print(f"∂/∂S {expr:12} = {g.text:22}  symmetric: {np.allclose(G, G.T)}; "
          f"directional derivatives vs FD {worst:.1e}; vs formula by hand {rel_err(G, by_hand(S)):.1e}")
    assert np.allclose(G, G.T, atol=1e-12) and worst < 1e-7 and rel_err(G, by_hand(S)) < 1e-10

# %% [markdown]
# ## Speed: matdiff's kernel against a framework's autodiff
#
# The generated `value_and_gradient` is the backward pass one would write by
# hand. We time it on the two-layer network of seed 002
# (64 → 128 → 10, float64) against the reverse-mode autodiff of a framework on
# the same loss: PyTorch if it is installed, else JAX, else `autograd` (which
# the dev extra installs); and against the same backward pass written by hand in
# NumPy, the baseline a NumPy kernel can hope to match. All three must agree.

# %%
program = """
Z1 = X W1 + b1; H1 = σ(Z1); Z2 = H1 W2 + b2
L = -tr(Y^T log softmax(Z2))/N + λ(‖W1‖_F^2 + ‖W2‖_F^2)
"""
params = ["W1", "b1", "W2", "b2"]
kernel = matdiff.kernel(program, wrt=params, vars={"Y": "onehot", "X": "matrix(N,D)"})

try:
    import torch

    torch.set_num_threads(1)
    framework = f"PyTorch {torch.__version__} autograd"

    def make_autodiff():
        def vg(X, Y, W1, b1, W2, b2, λ):
            ps = [torch.tensor(v, requires_grad=True) for v in (W1, b1, W2, b2)]
            Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
            Z2 = torch.sigmoid(Xt @ ps[0] + ps[1]) @ ps[2] + ps[3]
            L = -(Yt * torch.log_softmax(Z2, dim=1)).sum() / X.shape[0] + λ * ((ps[0] ** 2).sum() + (ps[2] ** 2).sum())
            gs = torch.autograd.grad(L, ps)
            return float(L.detach()), [g.numpy() for g in gs]
        return vg
except ImportError:
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        framework = f"jax.jit(jax.value_and_grad), JAX {jax.__version__}"

        def make_autodiff():
            def L(ps, X, Y, λ):
                W1, b1, W2, b2 = ps
                Z2 = jax.nn.sigmoid(X @ W1 + b1) @ W2 + b2
                return -(Y * jax.nn.log_softmax(Z2, axis=1)).sum() / X.shape[0] + λ * ((W1**2).sum() + (W2**2).sum())
            f = jax.jit(jax.value_and_grad(L))

            def vg(X, Y, W1, b1, W2, b2, λ):
                v, gs = f((W1, b1, W2, b2), X, Y, λ)
                return float(v), [np.asarray(g) for g in gs]
            return vg
    except ImportError:
        import autograd
        import autograd.numpy as anp

        framework = "autograd"

        def make_autodiff():
            def L(ps, X, Y, λ):
                W1, b1, W2, b2 = ps
                Z2 = 1 / (1 + anp.exp(-(X @ W1 + b1))) @ W2 + b2
                Z2 = Z2 - anp.max(Z2, axis=1, keepdims=True)
                logp = Z2 - anp.log(anp.sum(anp.exp(Z2), axis=1, keepdims=True))
                return -anp.sum(Y * logp) / X.shape[0] + λ * (anp.sum(W1**2) + anp.sum(W2**2))
            f = autograd.value_and_grad(L)

            def vg(X, Y, W1, b1, W2, b2, λ):
                v, gs = f([W1, b1, W2, b2], X, Y, λ)
                return float(v), list(gs)
            return vg

autodiff = make_autodiff()
from threadpoolctl import threadpool_limits   # installed with scikit-learn (dev extra)
print("framework:", framework)



def numpy_by_hand(X, Y, W1, b1, W2, b2, λ):
    """The same backward pass written by hand in NumPy, as seed 002 derives it."""
    N = X.shape[0]
    H1 = 1 / (1 + np.exp(-(X @ W1 + b1)))
    Z2 = H1 @ W2 + b2
    S = Z2 - Z2.max(axis=1, keepdims=True)
    logp = S - np.log(np.exp(S).sum(axis=1, keepdims=True))
    L = -np.sum(Y * logp) / N + λ * (np.sum(W1 * W1) + np.sum(W2 * W2))
    dZ2 = (np.exp(logp) - Y) / N
    dZ1 = (dZ2 @ W2.T) * H1 * (1 - H1)
    return L, [X.T @ dZ1 + 2 * λ * W1, dZ1.sum(0), H1.T @ dZ2 + 2 * λ * W2, dZ2.sum(0)]


batches = [32, 128, 512, 2048]
D, Hh, C = 64, 128, 10
times = {"matdiff kernel": [], "NumPy by hand": [], framework: []}
for Nb in batches:
    data = dict(X=rng.standard_normal((Nb, D)), Y=np.eye(C)[rng.integers(C, size=Nb)],
                W1=rng.standard_normal((D, Hh)) * 0.1, b1=rng.standard_normal(Hh) * 0.1,
                W2=rng.standard_normal((Hh, C)) * 0.1, b2=rng.standard_normal(C) * 0.1, λ=1e-3)
    v_md, g_md = kernel(**data)
    v_ad, g_ad = autodiff(**data)
    v_np, g_np = numpy_by_hand(**data)
    assert abs(v_md - v_ad) < 1e-10 and max(rel_err(a, b) for a, b in zip(g_md, g_ad)) < 1e-10
    assert abs(v_md - v_np) < 1e-10 and max(rel_err(a, b) for a, b in zip(g_md, g_np)) < 1e-10
    for label, fn in [("matdiff kernel", kernel), ("NumPy by hand", numpy_by_hand), (framework, autodiff)]:
        reps = max(3, 2000 // Nb)
        with threadpool_limits(1):   # NumPy's BLAS on one thread, like the framework
            times[label].append(min(timeit.repeat(lambda: fn(**data), number=reps, repeat=3)) / reps)
for label, ts in times.items():
    print(f"{label:45}", "  ".join(f"N={Nb}: {t * 1e3:.2f} ms" for Nb, t in zip(batches, ts)))

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.5))
for label, ts in times.items():
    ax.loglog(batches, np.array(ts) * 1e3, "o-", label=label)
ax.set_xlabel("batch size N")
ax.set_ylabel("value and 4 gradients, ms")
ax.set_xticks(batches, [str(b) for b in batches])
ax.minorticks_off()
ax.legend(fontsize=8)
ax.set_title("Two-layer network 64 → 128 → 10, float64")
fig.tight_layout()

# %% [markdown]
# Timings are from whatever machine last ran the notebook (here: the one that
# stored these outputs); PyTorch and NumPy's BLAS are both pinned to one thread
# (on a busy 2-core machine a multi-threaded BLAS mostly waits). Both compute
# the same value and the same four gradients (asserted above); the figures move
# with the machine's load from run to run, so read the plot for its order of
# magnitude. `benchmarks/bench_backends.py` measures this more carefully
# (interleaved runs, larger networks, JAX as well).
