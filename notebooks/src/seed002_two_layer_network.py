# %% [markdown]
# # Seed 002 — a two-layer network by differential forms, then trained
#
# The seed (*Two-layer MLP backpropagation using differential forms*) derives
# every gradient of a two-layer classifier with the rules
# $\mathrm d(XY) = \mathrm dX\,Y + X\,\mathrm dY$, $\mathrm d\sigma(X) = \sigma'(X)\odot\mathrm dX$
# and the trace tricks (cyclic, transpose, $\operatorname{tr}(A^\top(B\odot C)) = \operatorname{tr}((A\odot B)^\top C)$),
# reading each gradient off $\mathrm dL = \operatorname{tr}\big((\partial L/\partial X)^\top \mathrm dX\big)$.
#
# The network, rows are samples ($X$ is $N\times D$, $Y$ the one-hot $N\times C$ targets):
#
# $$Z_1 = XW_1 + b_1,\quad H_1 = \sigma(Z_1),\quad Z_2 = H_1W_2 + b_2,\quad P = \operatorname{softmax}(Z_2),$$
# $$L = -\tfrac1N\operatorname{tr}(Y^\top\log P) + \lambda\left(\lVert W_1\rVert_F^2 + \lVert W_2\rVert_F^2\right).$$
#
# The biases are row vectors added to every row: matdiff's broadcasting
# $XW_1 + b_1 = XW_1 + \mathbf 1 b_1^\top$, which is why their gradients are column sums.
#
# In this notebook: the seven gradients of the article's summary from matdiff,
# each checked against finite differences; the article's `nn_forward_backward`
# (which uses ReLU) ported to NumPy and compared with matdiff's kernel; and the
# network trained on scikit-learn's handwritten digits with the generated kernel.

# %%
import subprocess
import sys
import time

import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, Math, display

import matdiff
from matdiff.api import Result


def tex_name(name):
    """W1 -> W_{1}, λ -> \\lambda: a variable's name in LaTeX."""
    head = name.rstrip("0123456789")
    head = {"λ": r"\lambda", "δ": r"\delta"}.get(head, head)
    return head + (f"_{{{name[len(name.rstrip('0123456789')):]}}}" if head != name else "")


def show(result, fname="L"):
    """Render every gradient of a matdiff Result, and its `where` block, in LaTeX."""
    bodies, defs = result.printout(latex=True)
    rows = [rf"\frac{{\partial {fname}}}{{\partial {tex_name(w)}}} &= {b}" for w, b in zip(result.wrt, bodies)]
    rows += [rf"\text{{where }} {d} &= {e}" if i == 0 else rf"{d} &= {e}" for i, (d, e) in enumerate(defs)]
    display(Math(r"\begin{aligned}" + r"\\ ".join(rows) + r"\end{aligned}"))


def steps(program, wrt, vars_):
    """`matdiff grad PROGRAM --wrt … --var … --steps`, run as a command."""
    cmd = [sys.executable, "-m", "matdiff.cli", "grad", program, "--steps"]
    for w in wrt:
        cmd += ["--wrt", w]
    for k, v in vars_.items():
        cmd += ["--var", f"{k}:{v}"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


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
# ## The seven gradients
#
# `λ` is a scalar (a Greek name), `Y` is declared one-hot (rows sum to 1,
# which the seed uses to simplify $\sum_j Y_{ij} = 1$), and `/N` divides by
# the number of samples, bound from the arrays' shapes.

# %%
program = """
Z1 = X W1 + b1; H1 = σ(Z1); Z2 = H1 W2 + b2
L = -tr(Y^T log softmax(Z2))/N + λ(‖W1‖_F^2 + ‖W2‖_F^2)
"""
vars_ = {"Y": "onehot", "X": "matrix(N,D)"}
seven = ["Z2", "W2", "b2", "H1", "Z1", "W1", "b1"]
res = Result(program, seven, vars_)
bodies, defs = res.printout()
for w, b in zip(seven, bodies):
    print(f"∂L/∂{w} = {b}")
print("  where " + "\n        ".join(f"{d} = {e}" for d, e in defs))
show(res)

# %% [markdown]
# The article's summary, in its notation ($P = \operatorname{softmax}(Z_2)$):
#
# $$\frac{\partial L}{\partial Z_2} = \tfrac1N(P - Y),\quad
# \frac{\partial L}{\partial W_2} = H_1^\top\frac{\partial L}{\partial Z_2} + 2\lambda W_2,\quad
# \frac{\partial L}{\partial b_2} = \mathbf 1_N^\top\frac{\partial L}{\partial Z_2},\quad
# \frac{\partial L}{\partial H_1} = \frac{\partial L}{\partial Z_2}W_2^\top,$$
# $$\frac{\partial L}{\partial Z_1} = \frac{\partial L}{\partial H_1}\odot\sigma'(Z_1),\quad
# \frac{\partial L}{\partial W_1} = X^\top\frac{\partial L}{\partial Z_1} + 2\lambda W_1,\quad
# \frac{\partial L}{\partial b_1} = \mathbf 1_N^\top\frac{\partial L}{\partial Z_1}.$$
#
# matdiff's answer is the same with $\sigma'(Z_1) = H_1\odot(1 - H_1)$ and
# $\delta_2 = P - Y$ (the $1/N$ pulled out). Below, the summary is written by hand
# in NumPy, and both it and matdiff's kernel are compared with central
# differences of the loss, on random data with $N = 7$, $D = 5$, $H = 4$, $C = 3$.

# %%
rng = np.random.default_rng(2)
N, D, H, C = 7, 5, 4, 3
arrays = dict(X=rng.standard_normal((N, D)), Y=np.eye(C)[rng.integers(C, size=N)],
              W1=rng.standard_normal((D, H)), b1=rng.standard_normal(H),
              W2=rng.standard_normal((H, C)), b2=rng.standard_normal(C), λ=0.05)


def sig(z):
    return 1 / (1 + np.exp(-z))


def log_softmax(Z):
    S = Z - Z.max(axis=1, keepdims=True)
    return S - np.log(np.exp(S).sum(axis=1, keepdims=True))


def tail_Z2(Z2, Y, W1, W2, λ):
    return -np.sum(Y * log_softmax(Z2)) / len(Y) + λ * (np.sum(W1**2) + np.sum(W2**2))


def loss(X, Y, W1, b1, W2, b2, λ):
    return tail_Z2(sig(X @ W1 + b1) @ W2 + b2, Y, W1, W2, λ)


def summary(X, Y, W1, b1, W2, b2, λ):
    """The article's seven formulas, by hand."""
    Z1 = X @ W1 + b1; H1 = sig(Z1); Z2 = H1 @ W2 + b2
    P = np.exp(log_softmax(Z2))
    g = {"Z2": (P - Y) / len(X)}
    g["W2"] = H1.T @ g["Z2"] + 2 * λ * W2
    g["b2"] = np.ones(len(X)) @ g["Z2"]
    g["H1"] = g["Z2"] @ W2.T
    g["Z1"] = g["H1"] * sig(Z1) * (1 - sig(Z1))
    g["W1"] = X.T @ g["Z1"] + 2 * λ * W1
    g["b1"] = np.ones(len(X)) @ g["Z1"]
    return g


# Finite differences: parameters through the whole loss; the intermediates
# Z2, H1, Z1 through the part of the loss that follows them.
a = arrays
Z1 = a["X"] @ a["W1"] + a["b1"]
tails = {
    "Z2": (lambda v: tail_Z2(v, a["Y"], a["W1"], a["W2"], a["λ"]), sig(Z1) @ a["W2"] + a["b2"]),
    "H1": (lambda v: tail_Z2(v @ a["W2"] + a["b2"], a["Y"], a["W1"], a["W2"], a["λ"]), sig(Z1)),
    "Z1": (lambda v: tail_Z2(sig(v) @ a["W2"] + a["b2"], a["Y"], a["W1"], a["W2"], a["λ"]), Z1),
}
fd = {w: numeric_grad(loss, arrays, w) for w in ["W2", "b2", "W1", "b1"]}
for w, (f, at) in tails.items():
    fd[w] = numeric_grad(lambda v: f(v), {"v": at}, "v")

value, grads = res.namespace()["value_and_gradient"](**arrays)
assert abs(value - loss(**arrays)) < 1e-12
by_hand = summary(**arrays)
for w, g in zip(seven, grads):
    e1, e2 = rel_err(g, fd[w]), rel_err(by_hand[w], fd[w])
    print(f"∂L/∂{w:2}  shape {str(g.shape):7}  matdiff kernel vs FD {e1:.1e}   article's summary vs FD {e2:.1e}")
    assert g.shape == fd[w].shape and e1 < 1e-6 and e2 < 1e-6

# %% [markdown]
# ## The derivation of ∂L/∂W1, step by step
#
# The stages are the article's: log-softmax's differential gives $P - Y$
# (with $Y\mathbf 1 = \mathbf 1$ for one-hot rows), the product rule through $Z_2 = H_1W_2 + b_2$,
# the chain rule through $\sigma$, the Hadamard trace trick, and the product
# rule through $Z_1$; the regulariser adds $2\lambda W_1$.

# %%
print(steps(program, ["W1"], vars_))

# %% [markdown]
# ## Against the article's `nn_forward_backward`
#
# The article's implementation (from UMich EECS 498-007) uses **ReLU** for the
# hidden layer, so its $\sigma'(Z_1)$ is the mask `h1 > 0`. Below is a NumPy port
# of it (PyTorch calls replaced by NumPy; same steps: shifted softmax,
# subtract 1 at the true class, divide by $N$, backprop with the mask), and the
# same network as a matdiff program with `relu`. matdiff writes the mask as
# $\operatorname{step}(Z_1)$, the derivative of relu.

# %%
def nn_forward_pass(params, X):
    h1 = np.maximum(X @ params["W1"] + params["b1"], 0)
    return h1 @ params["W2"] + params["b2"], h1


def nn_forward_backward(params, X, y, reg=0.0):
    """A NumPy port of the article's function: loss and gradients of W1, b1, W2, b2."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    N = X.shape[0]
    scores, h1 = nn_forward_pass(params, X)
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = np.mean(-np.log(p[np.arange(N), y])) + reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    grads = {}
    grad_z2 = p.copy()
    grad_z2[np.arange(N), y] -= 1
    grad_z2 /= N
    grads["W2"] = h1.T @ grad_z2 + 2 * reg * W2
    grads["b2"] = grad_z2.sum(axis=0)
    grad_h1 = grad_z2 @ W2.T
    grad_z1 = grad_h1 * (h1 > 0)
    grads["W1"] = X.T @ grad_z1 + 2 * reg * W1
    grads["b1"] = grad_z1.sum(axis=0)
    return loss, grads


relu_program = program.replace("σ(Z1)", "relu(Z1)")
params = ["W1", "b1", "W2", "b2"]
relu_res = Result(relu_program, params + ["Z1"], vars_)
show(relu_res)
relu_kernel = relu_res.namespace(names=params)["value_and_gradient"]

labels = rng.integers(C, size=N)
data = dict(arrays, Y=np.eye(C)[labels])
port_loss, port_grads = nn_forward_backward({k: data[k] for k in params}, data["X"], labels, reg=data["λ"])
k_loss, k_grads = relu_kernel(**data)
print(f"loss: kernel {k_loss:.12f}, article's code {port_loss:.12f}")
assert abs(k_loss - port_loss) < 1e-12


def relu_loss(X, Y, W1, b1, W2, b2, λ):
    return tail_Z2(np.maximum(X @ W1 + b1, 0) @ W2 + b2, Y, W1, W2, λ)


for w, g in zip(params, k_grads):
    fdw = numeric_grad(relu_loss, data, w)
    print(f"∂L/∂{w}: kernel vs article's code {rel_err(g, port_grads[w]):.1e}, kernel vs FD {rel_err(g, fdw):.1e}")
    assert rel_err(g, port_grads[w]) < 1e-12 and rel_err(g, fdw) < 1e-6

# ∂L/∂Z1 = (δ2 W2ᵀ ⊙ step(Z1))/N: the article's grad_z1, and FD through the tail of the loss
Z1r = data["X"] @ data["W1"] + data["b1"]
dZ1 = relu_res.namespace(names=["Z1"])["gradient"](**data)
fd_Z1 = numeric_grad(lambda v: tail_Z2(np.maximum(v, 0) @ data["W2"] + data["b2"], data["Y"], data["W1"], data["W2"], data["λ"]),
                     {"v": Z1r}, "v")
h1 = np.maximum(Z1r, 0)
grad_z2 = np.exp(log_softmax(h1 @ data["W2"] + data["b2"]))
grad_z2[np.arange(N), labels] -= 1
article_z1 = (grad_z2 / N) @ data["W2"].T * (h1 > 0)
print(f"∂L/∂Z1: kernel vs FD {rel_err(dZ1, fd_Z1):.1e}, the article's grad_z1 vs FD {rel_err(article_z1, fd_Z1):.1e}")
assert rel_err(dZ1, fd_Z1) < 1e-6 and rel_err(article_z1, fd_Z1) < 1e-6

# %% [markdown]
# ## Training on handwritten digits with the generated kernel
#
# scikit-learn ships the UCI digits (1797 images of 8×8 pixels, 10 classes)
# with the package, so this runs offline. We hold out a test set, scale pixels
# to [0, 1], and train the ReLU network (64 → 32 → 10) by plain full-batch
# gradient descent, calling matdiff's `value_and_gradient` once per epoch.

# %%
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

digits = load_digits()
Xtr, Xte, ytr, yte = train_test_split(digits.data / 16.0, digits.target, test_size=0.25,
                                      random_state=0, stratify=digits.target)
Ytr = np.eye(10)[ytr]
rng = np.random.default_rng(0)
Hd = 32
theta = dict(W1=rng.standard_normal((64, Hd)) * np.sqrt(2 / 64), b1=np.zeros(Hd),
             W2=rng.standard_normal((Hd, 10)) * np.sqrt(2 / Hd), b2=np.zeros(10))


def accuracy(theta, X, y):
    scores, _ = nn_forward_pass(theta, X)
    return float(np.mean(scores.argmax(axis=1) == y))


lr, epochs, reg = 0.5, 300, 1e-4
history = {"loss": [], "train": [], "test": []}
t0 = time.perf_counter()
for epoch in range(epochs):
    L, (gW1, gb1, gW2, gb2) = relu_kernel(X=Xtr, Y=Ytr, λ=reg, **theta)
    for k, g in zip(params, (gW1, gb1, gW2, gb2)):
        theta[k] = theta[k] - lr * g
    history["loss"].append(L)
    history["train"].append(accuracy(theta, Xtr, ytr))
    history["test"].append(accuracy(theta, Xte, yte))
elapsed = time.perf_counter() - t0
print(f"{epochs} epochs in {elapsed:.2f} s; loss {history['loss'][0]:.3f} -> {history['loss'][-1]:.3f}; "
      f"test accuracy {history['test'][-1]:.3f}")
assert history["loss"][-1] < 0.25 * history["loss"][0]
assert history["test"][-1] > 0.9

# One training step's gradient, checked against the article's code on the real data.
_, ref = nn_forward_backward(theta, Xtr, ytr, reg=reg)
_, now = relu_kernel(X=Xtr, Y=Ytr, λ=reg, **theta)
assert max(rel_err(g, ref[k]) for k, g in zip(params, now)) < 1e-12

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.3))
ax1.plot(history["loss"])
ax1.set_yscale("log")
ax1.set_xlabel("epoch")
ax1.set_ylabel("training loss L")
ax1.set_title("Cross-entropy + λ‖W‖², gradient descent")
ax2.plot(history["train"], label="train")
ax2.plot(history["test"], label="test")
ax2.set_xlabel("epoch")
ax2.set_ylabel("accuracy")
ax2.set_ylim(0, 1)
ax2.legend()
ax2.set_title("Digits 64 → 32 → 10, matdiff's kernel")
fig.tight_layout()
