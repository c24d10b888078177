# %% [markdown]
# # Seed 000 — backpropagation through a k-layer sigmoid network, by differentials
#
# The seed (Eric Wong's *Tensor Differential Calculus, Part 3*) derives the
# backpropagation updates of a network with $k$ dense sigmoid layers and a
# softmax loss without a single element-wise partial derivative. Its notation is
# the **column-vector convention**:
#
# * $h_0 = x$, the input;
# * $a_k = W_k h_{k-1}$, the pre-activation of layer $k$;
# * $h_k = \sigma(a_k)$, the output of layer $k$;
# * $f = -y^\top \log \operatorname{softmax}(a_{k+1})$ with $y$ the one-hot label.
#
# It writes $J_f(v)$ for the Jacobian of the scalar $f$ with respect to $v$: a
# *row* vector, $\mathrm df = J_f(v)\,\mathrm dv$. matdiff prints *gradients*,
# which are the same numbers as a column: $\nabla_v f = J_f(v)^\top$, and for
# a matrix $W$ the gradient is the matrix $G$ with $\mathrm df = \operatorname{tr}(G^\top \mathrm dW)$.
#
# This notebook lets matdiff redo the derivation for $k = 3$, checks every
# formula against central finite differences, and then goes to $k = 64$.

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
    """W1 -> W_{1}: a variable's name in LaTeX."""
    head = name.rstrip("0123456789")
    return head + (f"_{{{name[len(head):]}}}" if head != name else "")


def show(result, fname="f"):
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

# %% [markdown]
# ## The network for k = 3, as a matdiff program
#
# A program is a list of named intermediates; the last line is the function.
# `y` is declared one-hot, so matdiff may use $\mathbf 1^\top y = 1$.
# We ask for the four quantities of the seed, $J_f(a_{k+1})$, $J_f(h_k)$,
# $J_f(a_k)$ and $J_f(W_k)$ with $k = 3$, and for the other weights too.

# %%
program = """
a1 = W1 x;  h1 = σ(a1)
a2 = W2 h1; h2 = σ(a2)
a3 = W3 h2; h3 = σ(a3)
a4 = W4 h3
f = -y^T log softmax(a4)
"""
wrt = ["a4", "h3", "a3", "W3", "W2", "W1", "W4"]
res = Result(program, wrt, {"y": "onehot"})
bodies, defs = res.printout()
for w, b in zip(wrt, bodies):
    print(f"∂f/∂{w} = {b}")
print("  where " + "\n        ".join(f"{d} = {e}" for d, e in defs))
show(res)

# %% [markdown]
# Read against the seed:
#
# * $\nabla_{a_4} f = \operatorname{softmax}(a_4) - y$: the seed's
#   $J_f(a_{k+1}) = -y^\top + \exp(a_{k+1})^\top / \mathbf 1^\top \exp(a_{k+1})$, transposed.
# * $\nabla_{h_3} f = W_4^\top \nabla_{a_4} f$, i.e. $J_f(h_k) = J_f(a_{k+1}) W_{k+1}$.
# * $\nabla_{a_3} f = \nabla_{h_3} f \odot h_3 \odot (1 - h_3)$, i.e.
#   $J_f(a_k) = J_f(h_k)\operatorname{diag}(\sigma'(a_k))$ with $\sigma' = \sigma(1-\sigma)$.
# * $\nabla_{W_3} f = \nabla_{a_3} f\; h_2^\top$, i.e. $J_f(W_k) = J_f(a_k)^\top h_{k-1}^\top$.
#
# matdiff names the shared back-propagated signals $\delta$ in the `where`
# block, numbered in its own order: read each one through the left-hand side
# that it answers ($\partial f/\partial a_3$ is the seed's $J_f(a_3)^\top$ whatever its
# number). The numbers are what matter, and they are checked next.
#
# ## Checking the formulas numerically
#
# Random data in float64, every width different ($x \in \mathbb R^5$, layers of
# 4, 6 and 3 units, $C = 7$ classes). The reference is the loss written by hand
# in NumPy, differentiated by central differences; the seed's four formulas are
# written by hand too, *in the seed's row-vector form with an explicit diagonal
# matrix*, so nothing is checked against itself.

# %%
rng = np.random.default_rng(0)
sizes = [5, 4, 6, 3, 7]   # n0 (input) … n4 = C
W = {f"W{i}": rng.standard_normal((sizes[i], sizes[i - 1])) for i in range(1, 5)}
x = rng.standard_normal(sizes[0])
y = np.eye(sizes[-1])[2]
arrays = dict(W, x=x, y=y)


def sig(z):
    return 1 / (1 + np.exp(-z))


def forward(W1, W2, W3, W4, x, y):
    """The network written by hand: every intermediate."""
    a1 = W1 @ x; h1 = sig(a1)
    a2 = W2 @ h1; h2 = sig(a2)
    a3 = W3 @ h2; h3 = sig(a3)
    a4 = W4 @ h3
    f = -(y @ (a4 - np.log(np.sum(np.exp(a4)))))
    return dict(a1=a1, h1=h1, a2=a2, h2=h2, a3=a3, h3=h3, a4=a4, f=f)


def loss(**arrays):
    return forward(**arrays)["f"]


kernel = res.namespace()["value_and_gradient"]
value, grads = kernel(**arrays)
got = dict(zip(wrt, grads))
assert abs(value - loss(**arrays)) < 1e-12

# The seed's formulas, row vectors (1×n) and an explicit diag(σ'(a3)).
v = forward(**arrays)
J_a4 = (-y + np.exp(v["a4"]) / np.sum(np.exp(v["a4"])))[None, :]
J_h3 = J_a4 @ W["W4"]
J_a3 = J_h3 @ np.diag(sig(v["a3"]) * (1 - sig(v["a3"])))
J_W3 = J_a3.T @ v["h2"][None, :]

# Finite differences: weights directly; intermediates by perturbing them in a
# forward pass that starts from them.
fd = {w: numeric_grad(loss, arrays, w) for w in ["W1", "W2", "W3", "W4"]}
tail = {
    "a4": lambda a4: -(y @ (a4 - np.log(np.sum(np.exp(a4))))),
    "h3": lambda h3: tail["a4"](W["W4"] @ h3),
    "a3": lambda a3: tail["h3"](sig(a3)),
}
for name in tail:
    fd[name] = numeric_grad(lambda **kw: tail[name](kw["v"]), {"v": v[name]}, "v")

checks = [("a4", J_a4.ravel()), ("h3", J_h3.ravel()), ("a3", J_a3.ravel()), ("W3", J_W3)]
for name, seed_formula in checks:
    e1, e2 = rel_err(got[name], fd[name]), rel_err(seed_formula, fd[name])
    print(f"∇{name}: matdiff kernel vs FD {e1:.1e}   seed's formula vs FD {e2:.1e}")
    assert e1 < 1e-6 and e2 < 1e-6
for name in ["W1", "W2", "W4"]:
    e = rel_err(got[name], fd[name])
    print(f"∇{name}: matdiff kernel vs FD {e:.1e}")
    assert e < 1e-6

# %% [markdown]
# ## The derivation, step by step
#
# `matdiff grad PROGRAM --wrt W3 --var y:onehot --steps` prints the
# differential at each stage, each expansion citing the identity it uses. It is
# exactly the seed's chain: log-softmax's differential gives $J_f(a_4)$, the
# product rule gives $W_4\,\mathrm dh_3$, the chain rule through $\sigma$ the
# diagonal factor, and the last product rule $\mathrm dW_3\, h_2$, moved to
# the right with the cyclic property of the trace.

# %%
steps = subprocess.run([sys.executable, "-m", "matdiff.cli", "grad", program, "--wrt", "W3", "--var", "y:onehot", "--steps"],
                       capture_output=True, text=True, check=True).stdout
print(steps)

# %% [markdown]
# ## The recurrence
#
# Alternating the two rules gives backpropagation: with
# $\delta_k = \nabla_{a_k} f$,
#
# $$\delta_{k+1} = \operatorname{softmax}(a_{k+1}) - y,\qquad
#   \delta_l = (W_{l+1}^\top \delta_{l+1}) \odot \sigma'(a_l),\qquad
#   \nabla_{W_l} f = \delta_l\, h_{l-1}^\top .$$
#
# This is the `where` block above. Written as a loop by hand, it must agree
# with the finite differences of every weight.

# %%
def backprop(Ws, x, y):
    """The recurrence, by hand: Ws = [W1, …, W_{k+1}]."""
    hs, as_ = [x], []
    for Wl in Ws[:-1]:
        as_.append(Wl @ hs[-1])
        hs.append(sig(as_[-1]))
    a_out = Ws[-1] @ hs[-1]
    delta = np.exp(a_out - a_out.max()) / np.sum(np.exp(a_out - a_out.max())) - y
    grads = [np.outer(delta, hs[-1])]
    for l in range(len(Ws) - 2, -1, -1):
        delta = (Ws[l + 1].T @ delta) * sig(as_[l]) * (1 - sig(as_[l]))
        grads.append(np.outer(delta, hs[l]))
    return grads[::-1]


by_hand = backprop([W[f"W{i}"] for i in range(1, 5)], x, y)
for i, g in enumerate(by_hand, start=1):
    e = rel_err(g, fd[f"W{i}"])
    print(f"recurrence for W{i} vs FD: {e:.1e}")
    assert e < 1e-6

# %% [markdown]
# ## Biases
#
# The seed adds biases at the end: with $a_k = W_k h_{k-1} + b_k$,
# $\mathrm da_k = \mathrm db_k$, so $J_f(b_k) = J_f(a_k)$. matdiff agrees, and
# so do the numbers.

# %%
program_b = """
a1 = W1 x + b1;  h1 = σ(a1)
a2 = W2 h1 + b2; h2 = σ(a2)
a3 = W3 h2 + b3; h3 = σ(a3)
a4 = W4 h3 + b4
f = -y^T log softmax(a4)
"""
res_b = Result(program_b, ["b3", "a3"], {"y": "onehot"})
show(res_b)
arrays_b = dict(arrays, **{f"b{i}": rng.standard_normal(sizes[i]) for i in range(1, 5)})


def loss_b(W1, W2, W3, W4, b1, b2, b3, b4, x, y):
    h1 = sig(W1 @ x + b1); h2 = sig(W2 @ h1 + b2); h3 = sig(W3 @ h2 + b3)
    a4 = W4 @ h3 + b4
    return -(y @ (a4 - np.log(np.sum(np.exp(a4)))))


_, (db3, da3) = res_b.namespace()["value_and_gradient"](**arrays_b)
fd_b3 = numeric_grad(loss_b, arrays_b, "b3")
assert rel_err(db3, fd_b3) < 1e-6 and rel_err(da3, fd_b3) < 1e-6
print("∂f/∂b3 = ∂f/∂a3, both within", f"{max(rel_err(db3, fd_b3), rel_err(da3, fd_b3)):.1e}", "of FD")

# %% [markdown]
# ## k = 64: the output stays readable
#
# Written out in full, $\nabla_{W_1} f$ of a 64-layer network would repeat the
# whole chain $W_{65}^\top(\cdots)$ inside every gradient. matdiff instead
# prints each gradient once and one `where` block that defines each
# $\delta_l$ from $\delta_{l+1}$ — the recurrence again, 64 lines long.

# %%
def deep_program(k):
    lines, prev = [], "x"
    for i in range(1, k + 1):
        lines.append(f"a{i} = W{i} {prev}; h{i} = σ(a{i})")
        prev = f"h{i}"
    lines.append(f"a{k + 1} = W{k + 1} h{k}")
    lines.append(f"f = -y^T log softmax(a{k + 1})")
    return "\n".join(lines)


k = 64
t0 = time.perf_counter()
deep = Result(deep_program(k), [f"W{i}" for i in range(1, k + 2)], {"y": "onehot"})
bodies, defs = deep.printout()
print(f"derived and printed {k + 1} gradients in {time.perf_counter() - t0:.2f} s\n")
for w, b in list(zip(deep.wrt, bodies))[:4] + [("…", "…")] + list(zip(deep.wrt, bodies))[-2:]:
    print(f"∂f/∂{w} = {b}" if w != "…" else "  …")
print("  where " + "\n        ".join(f"{d} = {e}" for d, e in defs[:4]))
print("        …")
print("        " + "\n        ".join(f"{d} = {e}" for d, e in defs[-3:]))

# %% [markdown]
# The 64-layer kernel is checked against the recurrence written by hand (the
# exact gradients) for every weight, and against finite differences for the
# last layers (through 64 sigmoids the first layers' gradients are
# vanishingly small, which is the vanishing-gradient problem, not an error).

# %%
widths = [5] + [4 + (i % 3) for i in range(k)] + [7]
Ws = [rng.standard_normal((widths[i], widths[i - 1])) * 2 for i in range(1, k + 2)]
deep_arrays = {f"W{i}": Ws[i - 1] for i in range(1, k + 2)}
deep_arrays.update(x=rng.standard_normal(5), y=np.eye(7)[4])
_, deep_grads = deep.namespace()["value_and_gradient"](**deep_arrays)
exact = backprop(Ws, deep_arrays["x"], deep_arrays["y"])
worst = max(rel_err(g, e) for g, e in zip(deep_grads, exact))
print(f"64-layer kernel vs the recurrence by hand, worst over all 65 weights: {worst:.1e}")
assert worst < 1e-10


def deep_loss(**kw):
    h = kw["x"]
    for i in range(1, k + 1):
        h = sig(kw[f"W{i}"] @ h)
    a = kw[f"W{k + 1}"] @ h
    return -(kw["y"] @ (a - np.log(np.sum(np.exp(a)))))


for i in [k + 1, k, k - 1]:
    e = rel_err(deep_grads[i - 1], numeric_grad(deep_loss, deep_arrays, f"W{i}"))
    print(f"W{i}: kernel vs FD {e:.1e}")
    assert e < 1e-5

# %% [markdown]
# ## A picture: printed size against depth
#
# With the `where` block the printed size grows linearly in $k$; written out
# in full (`--inline`, `printout(inline=True)`) the gradient of $W_l$ repeats
# the $k-l$ layers above it, so the total grows quadratically.

# %%
ks = [2, 4, 8, 16, 32]
shared, inline = [], []
for kk in ks:
    r = Result(deep_program(kk), [f"W{i}" for i in range(1, kk + 2)], {"y": "onehot"})
    b, d = r.printout()
    shared.append(sum(map(len, b)) + sum(len(n) + len(e) for n, e in d))
    inline.append(sum(map(len, r.printout(inline=True)[0])))
assert inline[-1] / inline[-2] > 3 and shared[-1] / shared[-2] < 2.5   # quadratic vs linear

fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.loglog(ks, inline, "o-", label="written out in full (--inline)")
ax.loglog(ks, shared, "s-", label="with the where block")
ax.set_xlabel("number of hidden layers k")
ax.set_ylabel("printed characters, all gradients")
ax.set_xticks(ks, [str(v) for v in ks])
ax.minorticks_off()
ax.legend()
ax.set_title("Gradients of every $W_l$ of a k-layer σ network")
fig.tight_layout()
