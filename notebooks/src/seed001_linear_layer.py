# %% [markdown]
# # Seed 001 — the linear layer: backprop without forming the Jacobian
#
# The seed (*Derivatives, Backpropagation, and Vectorization*) looks at one
# layer $y = f(x, w) = x w$ inside a larger network with scalar loss $L$. The
# minibatch $x$ is $N\times D$, the weights $w$ are $D\times M$, so $y$ is
# $N\times M$. Backpropagation hands the layer the **upstream gradient**
# $\partial L/\partial y$ (an $N\times M$ matrix) and asks for
# $\partial L/\partial x$ and $\partial L/\partial w$.
#
# The generalized Jacobian $\partial y/\partial x$ has $(N\times M)\times(N\times D)$
# entries: with $N = 64$ and $D = M = 4096$ that is 68 billion numbers,
# 256 GB in float32. The seed works a small case out by hand and finds
# $\partial L/\partial x = (\partial L/\partial y)\, w^\top$ — no Jacobian needed.
#
# matdiff gets there with differentials. Only $\mathrm dL = \operatorname{tr}(G^\top\mathrm dY)$
# matters about the rest of the network, with $G = \partial L/\partial Y$; so the upstream
# gradient is simply a matrix variable $G$ and the layer's contribution to the loss is
# $L = \operatorname{tr}(G^\top (XW))$ (matdiff's upper-case names: $X$, $W$, $Y$).

# %%
import subprocess
import sys

import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, Math, display

import matdiff
from matdiff.api import Result


def tex_name(name):
    """W1 -> W_{1}: a variable's name in LaTeX."""
    head = name.rstrip("0123456789")
    return head + (f"_{{{name[len(head):]}}}" if head != name else "")


def show(result, fname="L"):
    """Render every gradient of a matdiff Result, and its `where` block, in LaTeX."""
    bodies, defs = result.printout(latex=True)
    rows = [rf"\frac{{\partial {fname}}}{{\partial {tex_name(w)}}} &= {b}" for w, b in zip(result.wrt, bodies)]
    rows += [rf"\text{{where }} {d} &= {e}" if i == 0 else rf"{d} &= {e}" for i, (d, e) in enumerate(defs)]
    display(Math(r"\begin{aligned}" + r"\\ ".join(rows) + r"\end{aligned}"))


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

# %%
layer = "Y = X W; L = tr(G^T Y)"
vars_ = {"X": "matrix(N,D)", "W": "matrix(D,M)"}
res = Result(layer, ["X", "W", "Y"], vars_)
show(res)

# %% [markdown]
# $\partial L/\partial Y = G$ confirms that $G$ *is* the upstream gradient,
# and the two results are the seed's
# $\partial L/\partial x = (\partial L/\partial y)\, w^\top$ and its companion
# $\partial L/\partial w = x^\top (\partial L/\partial y)$.
#
# ## The derivation, step by step
#
# Here is `--steps` from the command line. The product rule gives
# $\mathrm dY = \mathrm dX\,W + X\,\mathrm dW$, and the cyclic property of the
# trace moves $\mathrm dX$ to the right: $\operatorname{tr}(G^\top \mathrm dX\, W) = \operatorname{tr}(W G^\top \mathrm dX) = \operatorname{tr}((G W^\top)^\top \mathrm dX)$.

# %%
cli = [sys.executable, "-m", "matdiff.cli", "grad", layer, "--wrt", "X", "--wrt", "W",
       "--var", "X:matrix(N,D)", "--var", "W:matrix(D,M)", "--steps"]
out = subprocess.run(cli, capture_output=True, text=True, check=True).stdout
print(out)

# %% [markdown]
# ## The seed's small case, element by element
#
# The seed takes $N = 1$, $D = 2$, $M = 3$ and writes
# $\partial L/\partial x_{1,1} = \sum_j \frac{\partial L}{\partial y_{1,j}} w_{1,j}$. Below, the
# generalized Jacobian $\partial y/\partial x$ is *formed* by finite
# differences — an $(N, M, N, D)$ array — and contracted with the upstream
# gradient, element by element as the seed does. It agrees with matdiff's
# $G W^\top$ and with the generated kernel, which never forms the Jacobian.

# %%
rng = np.random.default_rng(1)


def jacobian_fd(f, x, eps=1e-6):
    """∂f/∂x as an array of shape f(x).shape + x.shape, by central differences."""
    out = np.zeros(f(x).shape + x.shape)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        out[(...,) + i] = (f(xp) - f(xm)) / (2 * eps)
    return out


kernel = res.namespace()["value_and_gradient"]
for N, D, M in [(1, 2, 3), (5, 3, 4)]:
    X, Wm, G = rng.standard_normal((N, D)), rng.standard_normal((D, M)), rng.standard_normal((N, M))
    J = jacobian_fd(lambda X_: X_ @ Wm, X)                 # (N, M, N, D)
    dLdX = np.einsum("nm,nmkd->kd", G, J)                  # Σ_{n,m} G[n,m] ∂y[n,m]/∂x[k,d]
    _, (dX, dW, dY) = kernel(X=X, W=Wm, G=G)
    print(f"N={N}, D={D}, M={M}: Jacobian has {J.size} entries; "
          f"contraction vs G Wᵀ {rel_err(dLdX, G @ Wm.T):.1e}, kernel vs contraction {rel_err(dX, dLdX):.1e}")
    assert rel_err(dLdX, G @ Wm.T) < 1e-8 and rel_err(dX, dLdX) < 1e-8
    Jw = jacobian_fd(lambda W_: X @ W_, Wm)                # (N, M, D, M)
    assert rel_err(dW, np.einsum("nm,nmdk->dk", G, Jw)) < 1e-8
    assert rel_err(dY, G) < 1e-15

# %% [markdown]
# ## Inside a real network
#
# The upstream gradient comes from whatever follows the layer. Take a loss
# after it, $L = \tfrac12\lVert \tanh(XW) - T\rVert_F^2$: its upstream
# gradient at $Y = XW$ is $G = (\tanh(Y) - T)\odot(1-\tanh^2 Y)$, and the
# layer's rule must give the whole loss's gradients. matdiff derives the
# whole thing in one go; we check it against finite differences of the loss
# written in NumPy, and against the layer rule fed with $G$ by hand.

# %%
net = "Y = X W; L = 1/2 ‖tanh(Y) - T‖_F^2"
res_net = Result(net, ["X", "W"], {"X": "matrix(N,D)", "W": "matrix(D,M)", "T": "matrix(N,M)"})
show(res_net)

N, D, M = 6, 4, 3
arrays = dict(X=rng.standard_normal((N, D)), W=rng.standard_normal((D, M)), T=rng.standard_normal((N, M)))


def loss(X, W, T):
    return 0.5 * np.sum((np.tanh(X @ W) - T) ** 2)


_, (dX, dW) = res_net.namespace()["value_and_gradient"](**arrays)
Y = arrays["X"] @ arrays["W"]
G = (np.tanh(Y) - arrays["T"]) * (1 - np.tanh(Y) ** 2)       # the upstream gradient, by hand
for name, got, rule in [("X", dX, G @ arrays["W"].T), ("W", dW, arrays["X"].T @ G)]:
    fd = numeric_grad(loss, arrays, name)
    print(f"∂L/∂{name}: kernel vs FD {rel_err(got, fd):.1e}, layer rule with G vs FD {rel_err(rule, fd):.1e}")
    assert rel_err(got, fd) < 1e-7 and rel_err(rule, fd) < 1e-7

# %% [markdown]
# ## The generated kernel
#
# `--format numpy` writes the layer's backward pass as a reader would:
# two matrix products, transposes as views.

# %%
print(res.numpy_source(["X", "W"]))

# %% [markdown]
# ## Why not the Jacobian: a picture of the sizes
#
# The number of entries of $\partial y/\partial x$ against those of
# $\partial L/\partial x$ for a batch of $N = 64$ as the layer widens
# ($D = M$). The seed's example, $D = M = 4096$, is marked.

# %%
widths = np.array([64, 256, 1024, 4096, 16384])
N = 64
jac_entries = (N * widths) * (N * widths)
grad_entries = N * widths
assert jac_entries[3] == 64 * 4096 * 64 * 4096 and jac_entries[3] * 4 / 2**30 == 256  # 256 GiB in float32

fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.loglog(widths, jac_entries * 4, "o-", label=r"Jacobian $\partial y/\partial x$")
ax.loglog(widths, grad_entries * 4, "s-", label=r"gradient $\partial L/\partial x = G W^\top$")
ax.axhline(16 * 2**30, color="gray", ls=":", lw=1)
ax.text(widths[0], 16 * 2**30 * 1.6, "16 GiB of RAM", color="gray", fontsize=8)
ax.annotate("256 GiB", (4096, jac_entries[3] * 4), textcoords="offset points", xytext=(-60, 5))
ax.set_xlabel("layer width D = M")
ax.set_ylabel("bytes in float32")
ax.legend()
ax.set_title("A linear layer with a batch of 64")
fig.tight_layout()
