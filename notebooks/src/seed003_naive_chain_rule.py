# %% [markdown]
# # Seed 003 — why the naive chain rule goes wrong, and where the transpose comes from
#
# The seed is a question many students ask. With
# $a^l = \sigma(z^l)$ and $z^l = w^l a^{l-1} + b^l$ (column vectors), and
# $\delta^{l+1} = \partial C/\partial z^{l+1}$ given, the chain rule
# "$\frac{\partial C}{\partial z^l} = \frac{\partial C}{\partial z^{l+1}}\frac{\partial z^{l+1}}{\partial a^l}\frac{\partial a^l}{\partial z^l}$"
# seems to give
#
# $$\frac{\partial C}{\partial z^l} \overset{?}{=} \delta^{l+1}\cdot w^l\cdot\sigma'(z^l),$$
#
# while the right answer is
#
# $$\delta^l = \big((w^{l+1})^\top \delta^{l+1}\big)\odot\sigma'(z^l).$$
#
# The answer in the seed names the three slips: (1) $\partial z^{l+1}/\partial a^l$ is
# $w^{l+1}$, not $w^l$; (2) $\partial a^l/\partial z^l$ is not the vector
# $\sigma'(z^l)$ but the *diagonal matrix* $\operatorname{diag}(\sigma'(z^l))$; (3) the
# chain rule multiplies **Jacobians**, and the Jacobian of a scalar is a *row*,
# $(\delta^{l+1})^\top$; the gradient is its transpose, which is where
# $(w^{l+1})^\top$ comes from.
#
# Here matdiff's steps show the same thing with differentials, and the numbers
# decide: the naive formula fails on shapes, and where the shapes happen to fit
# (square layers) it gives wrong numbers.

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
# ## Two layers, l = 1 and l + 1 = 2
#
# A cost is needed to have a $\delta$ at all; take $C = \tfrac12\lVert a^2 - t\rVert^2$.
# In matdiff's language the weights are upper case ($W_1 = w^1$, $W_2 = w^2$).

# %%
program = "z1 = W1 a0 + b1; a1 = σ(z1); z2 = W2 a1 + b2; a2 = σ(z2); C = 1/2 ‖a2 - t‖^2"
res = Result(program, ["z2", "z1"])
bodies, defs = res.printout(inline=True)
for w, b in zip(res.wrt, bodies):
    print(f"∂C/∂{w} = {b}")
display(Math(r"\begin{aligned}" + r"\\ ".join(
    rf"\frac{{\partial C}}{{\partial z_{w[1:]}}} &= {b}" for w, b in zip(res.wrt, res.printout(latex=True, inline=True)[0]))
    + r"\end{aligned}"))

# %% [markdown]
# $\partial C/\partial z_1$ is $\big(W_2^\top \delta^2\big)\odot a_1\odot(1-a_1)$ with
# $\delta^2 = \partial C/\partial z_2$ and $\sigma'(z_1) = a_1\odot(1-a_1)$: the right answer.
#
# ## The steps: where the transpose appears
#
# Follow $\mathrm dC$ from $\mathrm dz_2$ down to $\mathrm dz_1$. The product rule gives
# $\mathrm dz_2 = W_2\,\mathrm da_1$ (so $W_2$ *is* $\partial z^{l+1}/\partial a^l$, slip 1),
# the chain rule through σ gives $\mathrm da_1 = \mathrm dz_1\odot\sigma'(z_1)$
# — an element-wise product, i.e. $\operatorname{diag}(\sigma'(z_1))\,\mathrm dz_1$ (slip 2) —
# and writing $\mathrm dC = g^\top \mathrm dz_1$ moves $W_2$ to the other side of
# $\delta^2$ as $W_2^\top$ (slip 3): $(\delta^2)^\top W_2\,\mathrm da_1 = (W_2^\top\delta^2)^\top \mathrm da_1$.

# %%
print(steps(program, ["z1"]))

# %% [markdown]
# ## The Jacobian the chain rule really multiplies
#
# `matdiff jacobian` gives $\partial z^{l+1}/\partial z^l$ as a matrix: $B\cdot C$ in
# the question's notation, $W_2\operatorname{diag}(\sigma'(z_1))$. Checked against
# finite differences below, with every size different ($a^0\in\mathbb R^3$,
# $z^1\in\mathbb R^4$, $z^2\in\mathbb R^5$).

# %%
layer = "z2 = W2 σ(z1) + b2"
print(matdiff_cli("jacobian", layer, "--wrt", "z1"))
jacobian = module(matdiff_cli("jacobian", layer, "--wrt", "z1", "--format", "numpy"))["jacobian"]

rng = np.random.default_rng(3)
n0, n1, n2 = 3, 4, 5
arrays = dict(W1=rng.standard_normal((n1, n0)), b1=rng.standard_normal(n1), a0=rng.standard_normal(n0),
              W2=rng.standard_normal((n2, n1)), b2=rng.standard_normal(n2), t=rng.standard_normal(n2))


def sig(z):
    return 1 / (1 + np.exp(-z))


z1 = arrays["W1"] @ arrays["a0"] + arrays["b1"]
J_fd = np.stack([(sig(z1 + 1e-6 * e) - sig(z1 - 1e-6 * e)) / 2e-6 for e in np.eye(n1)], axis=1)
J_fd = arrays["W2"] @ J_fd                         # ∂z2/∂z1 by differences of σ, times W2
J = jacobian(W2=arrays["W2"], z1=z1, b2=arrays["b2"])
print("shape", J.shape, "= (n2, n1); matdiff vs FD:", f"{rel_err(J, J_fd):.1e}")
assert J.shape == (n2, n1) and rel_err(J, J_fd) < 1e-8
assert rel_err(arrays["W2"] @ np.diag(sig(z1) * (1 - sig(z1))), J_fd) < 1e-8

# %% [markdown]
# ## The numbers
#
# $\delta^2$ and $\delta^1$ by central differences of the cost (perturbing $z_2$ and $z_1$
# in the forward pass), the right formula written by hand, matdiff's kernel, and
# the naive formula.

# %%
def cost(W1, b1, a0, W2, b2, t):
    a2 = sig(W2 @ sig(W1 @ a0 + b1) + b2)
    return 0.5 * np.sum((a2 - t) ** 2)


a = arrays
z2 = a["W2"] @ sig(z1) + a["b2"]
delta2_fd = numeric_grad(lambda z2: 0.5 * np.sum((sig(z2) - a["t"]) ** 2), {"z2": z2}, "z2")
delta1_fd = numeric_grad(lambda z1: 0.5 * np.sum((sig(a["W2"] @ sig(z1) + a["b2"]) - a["t"]) ** 2), {"z1": z1}, "z1")

_, (delta2, delta1) = res.namespace()["value_and_gradient"](**arrays)
assert rel_err(delta2, delta2_fd) < 1e-8 and rel_err(delta1, delta1_fd) < 1e-8
sigma_prime = sig(z1) * (1 - sig(z1))
right = (a["W2"].T @ delta2) * sigma_prime
jacobian_chain = (delta2[None, :] @ a["W2"] @ np.diag(sigma_prime)).ravel()   # (δ²)ᵀ W2 diag(σ'), a row
print(f"matdiff kernel δ¹ vs FD:                 {rel_err(delta1, delta1_fd):.1e}")
print(f"((W²)ᵀ δ²) ⊙ σ'(z¹) vs FD:                {rel_err(right, delta1_fd):.1e}")
print(f"row Jacobian chain (δ²)ᵀ W² diag(σ'):    {rel_err(jacobian_chain, delta1_fd):.1e}")
assert rel_err(right, delta1_fd) < 1e-8 and rel_err(jacobian_chain, delta1_fd) < 1e-8

# the naive formulas: as written, and with the index fixed but no transpose
failures = {}
for label, naive in [("δ² · w¹ · σ'(z¹)", lambda: (delta2 @ a["W1"]) * sigma_prime),
                     ("w² δ² ⊙ σ'(z¹)", lambda: (a["W2"] @ delta2) * sigma_prime)]:
    try:
        naive()
    except ValueError as err:
        failures[label] = str(err).split("(")[0].strip()
        print(f"naive {label}: shape error — {err}")
assert len(failures) == 2

# %% [markdown]
# Both naive forms fail on shapes: $\delta^2$ has 5 entries, $w^1$ is 4×3, and
# $w^2$ is 5×4, so $w^2\delta^2$ is undefined. With **square** layers the shapes
# fit and the mistake runs silently — which is why tests of gradient code
# should use all-different sizes. Here every layer has 4 units:

# %%
sq = dict(W1=rng.standard_normal((4, 4)), b1=rng.standard_normal(4), a0=rng.standard_normal(4),
          W2=rng.standard_normal((4, 4)), b2=rng.standard_normal(4), t=rng.standard_normal(4))
z1s = sq["W1"] @ sq["a0"] + sq["b1"]
z2s = sq["W2"] @ sig(z1s) + sq["b2"]
d2 = (sig(z2s) - sq["t"]) * sig(z2s) * (1 - sig(z2s))
d1_fd = numeric_grad(lambda z1: 0.5 * np.sum((sig(sq["W2"] @ sig(z1) + sq["b2"]) - sq["t"]) ** 2), {"z1": z1s}, "z1")
sp = sig(z1s) * (1 - sig(z1s))
candidates = {
    "matdiff kernel": res.namespace()["value_and_gradient"](**sq)[1][1],
    "((w²)ᵀδ²) ⊙ σ'": (sq["W2"].T @ d2) * sp,
    "naive: w² δ² ⊙ σ'": (sq["W2"] @ d2) * sp,
    "naive: δ² · w¹ · σ'": (d2 @ sq["W1"]) * sp,
    "naive: δ² ⊙ σ' (no w)": d2 * sp,
}
errors = {k: rel_err(v, d1_fd) for k, v in candidates.items()}
for k, e in errors.items():
    print(f"{k:24} relative error vs FD {e:.1e}")
assert errors["matdiff kernel"] < 1e-8 and errors["((w²)ᵀδ²) ⊙ σ'"] < 1e-8
assert min(errors[k] for k in errors if k.startswith("naive")) > 1e-2

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.2))
names = list(errors)
ax.barh(names, [max(errors[k], 1e-16) for k in names],
        color=["tab:green" if errors[k] < 1e-6 else "tab:red" for k in names])
ax.set_xscale("log")
ax.set_xlabel("relative error of δ¹ against finite differences")
ax.invert_yaxis()
ax.set_title("Square layers: the naive formulas run, and are wrong")
fig.tight_layout()
