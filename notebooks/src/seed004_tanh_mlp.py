# %% [markdown]
# # Seed 004 — error signals of a tanh MLP, and the chain rule on a small graph
#
# The seed (*Machine Perception, pen & paper solutions: Backpropagation*) defines an
# $L$-layer perceptron $F = F^L\circ\cdots\circ F^1$ with
#
# $$z^l = F^l(z^{l-1}) = \tanh(W^l z^{l-1} + b^l),\qquad z^0 = x,$$
#
# a loss $\mathcal R(z^L)$, and the **error signal** $\delta^l := \partial\mathcal R/\partial z^l$.
# It asks for (a) $\delta^l$ in terms of $\delta^{l+1}$ and the Jacobian
# $\partial z^{l+1}/\partial z^l$, and (b) $\partial\mathcal R/\partial W^l$ and
# $\partial\mathcal R/\partial b^l$; and, in its section 1.2, for $\partial y/\partial x_2$
# on a small graph of scalar nodes.
#
# We take $L = 3$ with a squared-error loss $\mathcal R = \tfrac12\lVert z^3 - t\rVert^2$
# and sizes $x\in\mathbb R^3$, $z^1\in\mathbb R^5$, $z^2\in\mathbb R^4$, $z^3\in\mathbb R^2$.

# %%
import contextlib
import io

import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, Math, display

from matdiff.api import Result
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


def steps(program, wrt, vars_=None):
    """What `matdiff grad PROGRAM --wrt … --var … --steps` prints."""
    args = ["grad", program, "--steps"]
    for w in wrt:
        args += ["--wrt", w]
    for k, v in (vars_ or {}).items():
        args += ["--var", f"{k}:{v}"]
    return matdiff_cli(*args)


def module(source):
    """Execute a module that matdiff generated (`--format numpy`): its functions by name."""
    namespace = {}
    exec(compile(source, "<matdiff module>", "exec"), namespace)
    return namespace


def tex_name(name):
    """W1 -> W_{1}: a variable's name in LaTeX."""
    head = name.rstrip("0123456789")
    return head + (f"_{{{name[len(head):]}}}" if head != name else "")


def show(result, fname=r"\mathcal R", inline=False):
    """Render every gradient of a matdiff Result, and its `where` block, in LaTeX."""
    bodies, defs = result.printout(latex=True, inline=inline)
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

# %% [markdown]
# ## All the gradients at once

# %%
program = """
z1 = tanh(W1 x + b1)
z2 = tanh(W2 z1 + b2)
z3 = tanh(W3 z2 + b3)
R = 1/2 ‖z3 - t‖^2
"""
wrt = ["z3", "z2", "z1", "W3", "b3", "W2", "b2", "W1", "b1"]
res = Result(program, wrt)
bodies, defs = res.printout()
for w, b in zip(wrt, bodies):
    print(f"∂R/∂{w} = {b}")
print("  where " + "\n        ".join(f"{d} = {e}" for d, e in defs))
show(res)

# %% [markdown]
# matdiff numbers its `where` names in its own order, so read them through the
# left-hand sides: the seed's $\delta^3, \delta^2, \delta^1$ are the first three
# lines. Written in the seed's notation, with $\tanh' = 1 - \tanh^2$ and $z^l = \tanh(a^l)$:
#
# $$\delta^3 = z^3 - t,\qquad \delta^l = (W^{l+1})^\top\big(\delta^{l+1}\odot(1 - (z^{l+1})^{2})\big),$$
# $$\frac{\partial\mathcal R}{\partial W^l} = \big(\delta^l\odot(1-(z^l)^{2})\big)(z^{l-1})^\top,\qquad
#   \frac{\partial\mathcal R}{\partial b^l} = \delta^l\odot(1-(z^l)^{2}).$$
#
# The term back-propagated from layer $l+1$ to layer $l$ (the seed's last
# question) is $\delta^{l+1}\odot(1-(z^{l+1})^2)$, multiplied by $(W^{l+1})^\top$.
#
# ## (a) δˡ through the Jacobian
#
# The seed writes $\delta^l = \delta^{l+1}\,\partial z^{l+1}/\partial z^l$ with $\delta$ as a row.
# `matdiff jacobian` gives the layer's Jacobian: its equation (4), the diagonal
# $\operatorname{diag}(1-\tanh^2(a))$, times $W^{l+1}$.

# %%
layer = "z2 = tanh(W2 z1 + b2)"
print(matdiff_cli("jacobian", layer, "--wrt", "z1"))
jacobian = module(matdiff_cli("jacobian", layer, "--wrt", "z1", "--format", "numpy"))["jacobian"]

rng = np.random.default_rng(4)
sizes = [3, 5, 4, 2]
arrays = {f"W{l}": rng.standard_normal((sizes[l], sizes[l - 1])) for l in (1, 2, 3)}
arrays.update({f"b{l}": rng.standard_normal(sizes[l]) for l in (1, 2, 3)})
arrays.update(x=rng.standard_normal(3), t=rng.standard_normal(2))


def forward(W1, b1, W2, b2, W3, b3, x, t):
    z1 = np.tanh(W1 @ x + b1); z2 = np.tanh(W2 @ z1 + b2); z3 = np.tanh(W3 @ z2 + b3)
    return dict(z0=x, z1=z1, z2=z2, z3=z3, R=0.5 * np.sum((z3 - t) ** 2))


def loss(**kw):
    return forward(**kw)["R"]


v = forward(**arrays)
a = arrays
J = jacobian(W2=a["W2"], z1=v["z1"], b2=a["b2"])
J_fd = np.stack([(np.tanh(a["W2"] @ (v["z1"] + 1e-6 * e) + a["b2"]) - np.tanh(a["W2"] @ (v["z1"] - 1e-6 * e) + a["b2"])) / 2e-6
                 for e in np.eye(5)], axis=1)
print("∂z2/∂z1: shape", J.shape, f"matdiff vs FD {rel_err(J, J_fd):.1e}")
assert J.shape == (4, 5) and rel_err(J, J_fd) < 1e-8

# δ by finite differences: perturb z^l and run the rest of the network
rest = {
    "z3": lambda z3: 0.5 * np.sum((z3 - a["t"]) ** 2),
    "z2": lambda z2: rest["z3"](np.tanh(a["W3"] @ z2 + a["b3"])),
    "z1": lambda z1: rest["z2"](np.tanh(a["W2"] @ z1 + a["b2"])),
}
delta_fd = {z: numeric_grad(lambda u: rest[z](u), {"u": v[z]}, "u") for z in rest}
kernel = res.namespace()["value_and_gradient"]
value, grads = kernel(**arrays)
got = dict(zip(wrt, grads))
assert abs(value - v["R"]) < 1e-12

# the seed's (a), rows times Jacobians: δ¹ = δ² ∂z²/∂z¹ and δ² = δ³ ∂z³/∂z²
J32 = np.diag(1 - v["z3"] ** 2) @ a["W3"]
seed_a = {"z3": v["z3"] - a["t"]}
seed_a["z2"] = seed_a["z3"] @ J32
seed_a["z1"] = seed_a["z2"] @ J
for z in ["z3", "z2", "z1"]:
    print(f"δ^{z[1]}: matdiff kernel vs FD {rel_err(got[z], delta_fd[z]):.1e}, "
          f"row δ times Jacobian vs FD {rel_err(seed_a[z], delta_fd[z]):.1e}")
    assert rel_err(got[z], delta_fd[z]) < 1e-8 and rel_err(seed_a[z], delta_fd[z]) < 1e-8

# %% [markdown]
# ## (b) ∂R/∂Wˡ and ∂R/∂bˡ
#
# The seed finds them entry by entry: $\partial\mathcal R/\partial w^l_{ij} = \delta^l_i\,(1-\tanh^2(a_i))\,z^{l-1}_j$
# and $\partial\mathcal R/\partial b^l_i = \delta^l_i\,(1-\tanh^2(a_i))$. Below, that double loop
# written by hand, matdiff's matrix form $(\delta^l\odot(1-(z^l)^2))(z^{l-1})^\top$ from the kernel,
# and finite differences of the loss.

# %%
for l in (1, 2, 3):
    d = delta_fd[f"z{l}"]
    zl, zprev = v[f"z{l}"], v[f"z{l - 1}"]
    entrywise = np.array([[d[i] * (1 - zl[i] ** 2) * zprev[j] for j in range(len(zprev))] for i in range(len(zl))])
    bias = np.array([d[i] * (1 - zl[i] ** 2) for i in range(len(zl))])
    fdW, fdb = numeric_grad(loss, arrays, f"W{l}"), numeric_grad(loss, arrays, f"b{l}")
    errs = [rel_err(got[f"W{l}"], fdW), rel_err(entrywise, fdW), rel_err(got[f"b{l}"], fdb), rel_err(bias, fdb)]
    print(f"layer {l}: ∂R/∂W kernel {errs[0]:.1e}, entrywise {errs[1]:.1e};  ∂R/∂b kernel {errs[2]:.1e}, entrywise {errs[3]:.1e}")
    assert max(errs) < 1e-7

# %% [markdown]
# The derivation of $\partial\mathcal R/\partial W^2$ by differentials: every
# $\operatorname{diag}$ of the seed's equation (4) is an element-wise product
# ($\mathrm dz = (1 - z^2)\odot\mathrm da$), and the seed's sparse vector
# $\operatorname{vec}_i(z^{l-1}_j)$ of equation (5) becomes the outer product
# $(\cdot)\,(z^{l-1})^\top$ when $\mathrm dW$ is moved to the right.

# %%
print(steps(program, ["W2"]))

# %% [markdown]
# ## A picture: error signals through a deeper tanh network
#
# Each layer multiplies $\delta$ by $W^\top\operatorname{diag}(1 - z^2)$. With small
# weights $\lVert\delta^l\rVert$ shrinks layer after layer towards the input
# (vanishing gradients); at the scale $1/\sqrt{\text{width}}$ it keeps its size; larger
# weights make it grow until the tanh units saturate and $1 - z^2$ caps it. Here a
# 10-layer network of width 6, for three weight scales, δˡ from matdiff's
# kernel (checked against the recursion written by hand).

# %%
depth, width = 10, 6
deep = "\n".join([f"z1 = tanh(W1 x + b1)"] + [f"z{l} = tanh(W{l} z{l - 1} + b{l})" for l in range(2, depth + 1)]
                 + [f"R = 1/2 ‖z{depth} - t‖^2"])
deep_res = Result(deep, [f"z{l}" for l in range(1, depth + 1)])
deep_kernel = deep_res.namespace()["value_and_gradient"]
norms = {}
for scale in [0.5, 1.0, 2.0]:
    arr = {f"W{l}": rng.standard_normal((width, width if l > 1 else 3)) * scale / np.sqrt(width) for l in range(1, depth + 1)}
    arr.update({f"b{l}": 0.1 * rng.standard_normal(width) for l in range(1, depth + 1)})
    arr.update(x=rng.standard_normal(3), t=rng.standard_normal(width))
    _, deltas = deep_kernel(**arr)
    zs = [arr["x"]]
    for l in range(1, depth + 1):
        zs.append(np.tanh(arr[f"W{l}"] @ zs[-1] + arr[f"b{l}"]))
    d = zs[depth] - arr["t"]
    by_hand = [d]
    for l in range(depth - 1, 0, -1):
        d = arr[f"W{l + 1}"].T @ (d * (1 - zs[l + 1] ** 2))
        by_hand.append(d)
    by_hand = by_hand[::-1]
    assert max(rel_err(g, h) for g, h in zip(deltas, by_hand)) < 1e-12
    norms[scale] = [np.linalg.norm(g) for g in deltas]
assert norms[0.5][0] < 1e-2 * norms[0.5][-1]   # vanishing with small weights

fig, ax = plt.subplots(figsize=(5.5, 3.5))
for scale, n in norms.items():
    ax.semilogy(range(1, depth + 1), n, "o-", label=f"weights × {scale}/√width")
ax.set_xlabel("layer l")
ax.set_ylabel(r"$\|\delta^l\| = \|\partial R/\partial z^l\|$")
ax.legend()
ax.set_title("Error signals of a 10-layer tanh MLP")
fig.tight_layout()

# %% [markdown]
# ## Section 1.2: the chain rule on a graph
#
# The seed's graph figure is not in our copy of the text, but its partial
# derivatives pin the graph down where it matters:
# $\partial y/\partial h_2 = 1/h_2$ (so $y = \log h_2$),
# $\partial h_2/\partial c_1 = h_2(1-h_2)c_2$ and $\partial h_2/\partial c_2 = h_2(1-h_2)c_1$
# (so $h_2 = \sigma(c_1c_2)$), and $\partial c_k/\partial x_2 = (1-c_k^2)w_2$ (so both
# $c_1$ and $c_2$ are $\tanh$ of a sum containing $w_2x_2$). We take
# $c_1 = \tanh(w_1x_1 + w_2x_2)$ and $c_2 = \tanh(w_2x_2 + w_3x_3)$; the other inputs
# do not change $\partial y/\partial x_2$'s formula. The language expresses this
# directly, with every node a declared scalar. The seed's answer is
#
# $$\frac{\partial y}{\partial x_2} = (1-h_2)\,w_2\,\big(c_1 + c_2 - c_2c_1^2 - c_1c_2^2\big).$$

# %%
graph = "c1 = tanh(w1 x1 + w2 x2); c2 = tanh(w2 x2 + w3 x3); h2 = σ(c1 c2); y = log(h2)"
scalars = {n: "scalar" for n in ["x1", "x2", "x3", "w1", "w2", "w3"]}
g_res = Result(graph, ["x2"], scalars)
print("∂y/∂x2 =", g_res.printout(inline=True)[0][0])
show(g_res, fname="y", inline=True)

# %% [markdown]
# matdiff keeps the two paths $x_2\to c_1\to h_2$ and $x_2\to c_2\to h_2$ as two terms,
# exactly the seed's sum over child nodes, with $\frac1{h_2}\cdot h_2(1-h_2)$ not yet
# cancelled. Numerically, at a random point:

# %%
pt = dict(zip(["x1", "x2", "x3", "w1", "w2", "w3"], rng.standard_normal(6)))


def y_of(x1, x2, x3, w1, w2, w3):
    c1, c2 = np.tanh(w1 * x1 + w2 * x2), np.tanh(w2 * x2 + w3 * x3)
    return np.log(1 / (1 + np.exp(-c1 * c2)))


c1, c2 = np.tanh(pt["w1"] * pt["x1"] + pt["w2"] * pt["x2"]), np.tanh(pt["w2"] * pt["x2"] + pt["w3"] * pt["x3"])
h2 = 1 / (1 + np.exp(-c1 * c2))
seed_answer = (1 - h2) * pt["w2"] * (c1 + c2 - c2 * c1**2 - c1 * c2**2)
fd = numeric_grad(y_of, pt, "x2")
_, mat = g_res.namespace()["value_and_gradient"](**pt)
print(f"matdiff {float(mat):.12f}   seed {seed_answer:.12f}   finite differences {float(fd):.12f}")
assert abs(mat - fd) < 1e-8 and abs(seed_answer - fd) < 1e-8
