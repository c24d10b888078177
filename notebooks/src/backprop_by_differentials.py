# %% [markdown]
# # Backprop by matrix differentials, with matdiff
#
# The seeds derive backpropagation by hand: write the differential dL, expand it
# with d(XY) = dX Y + X dY and dσ(Z) = σ'(Z) ⊙ dZ, and move dW to the right with
# the trace identities until dL = tr(Gᵀ dW). matdiff does the same by machine.

# %%
import numpy as np
import matdiff

g = matdiff.grad("-tr(Y^T log softmax(XW+b))", wrt=["W", "b"], vars={"Y": "onehot"})
for name, grad in g.items():
    print(f"∂L/∂{name} =", grad.text)
g["W"]   # renders as LaTeX in Jupyter

# %% [markdown]
# Every formula here is checked numerically: the compiled gradients against
# central differences of the loss written by hand in NumPy (N = 6 samples,
# D = 4 features, C = 3 classes).

# %%
def numeric_gradient(f, arrays, name, eps=1e-6):
    """Central differences of the scalar f(**arrays) in every entry of arrays[name]."""
    x0 = np.asarray(arrays[name], dtype=float)
    g = np.zeros_like(x0)
    for i in np.ndindex(x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(**{**arrays, name: xp}) - f(**{**arrays, name: xm})) / (2 * eps)
    return g


rng = np.random.default_rng(0)
arrays = dict(X=rng.standard_normal((6, 4)), W=rng.standard_normal((4, 3)), b=rng.standard_normal(3),
              Y=np.eye(3)[rng.integers(3, size=6)])

def mission_loss(X, W, b, Y):
    Z = X @ W + b
    logp = Z - Z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    return -np.sum(Y * logp)

for name, grad in g.items():
    err = np.max(np.abs(grad.numpy_function()(**arrays) - numeric_gradient(mission_loss, arrays, name)))
    print(f"∂L/∂{name}: max abs error {err:.1e}")
    assert err < 1e-7

# %% [markdown]
# ## The two-layer network of the seeds, with named intermediates
#
# Gradients can be asked for the parameters and for the intermediates; results
# are printed with the intermediates' names.

# %%
program = '''
Z1 = X W1 + b1; H1 = σ(Z1); Z2 = H1 W2 + b2
L = -tr(Y^T log softmax(Z2))/N + λ(‖W1‖_F^2 + ‖W2‖_F^2)
'''
wrt = ["W1", "b1", "W2", "b2", "Z2"]
grads = matdiff.grad(program, wrt=wrt, vars={"Y": "onehot", "X": "matrix(N,D)"})
for name in wrt:
    print(f"∂L/∂{name} =", grads[name].text)

# %% [markdown]
# ## The derivation, step by step

# %%
import subprocess, sys
from matdiff.api import Result
# the command line's `matdiff grad "sum(σ(X W))" --wrt W --steps`
print(subprocess.run([sys.executable, "-m", "matdiff.cli", "grad", "sum(σ(X W))", "--wrt", "W", "--steps"],
                     capture_output=True, text=True, check=True).stdout)

# the result, Xᵀ(σ(XW) ⊙ (1 − σ(XW))), against central differences
A = dict(X=rng.standard_normal((5, 3)), W=rng.standard_normal((3, 2)))
s = 1 / (1 + np.exp(-(A["X"] @ A["W"])))
fd = numeric_gradient(lambda X, W: np.sum(1 / (1 + np.exp(-(X @ W)))), A, "W")
assert np.max(np.abs(A["X"].T @ (s * (1 - s)) - fd)) < 1e-8
assert np.max(np.abs(Result("sum(σ(X W))", ["W"]).gradient("W").numpy_function()(**A) - fd)) < 1e-8

# %% [markdown]
# ## A backprop kernel, checked against finite differences
#
# `matdiff.kernel` compiles `value_and_gradient`: the forward pass and the
# backward pass sharing intermediates, as one would write it by hand.

# %%
kernel = matdiff.kernel(program, wrt=["W1", "b1", "W2", "b2"], vars={"Y": "onehot", "X": "matrix(N,D)"})
rng = np.random.default_rng(0)
N, D, H, C = 7, 5, 4, 3
data = dict(X=rng.standard_normal((N, D)), Y=np.eye(C)[rng.integers(C, size=N)],
            W1=rng.standard_normal((D, H)), b1=rng.standard_normal(H),
            W2=rng.standard_normal((H, C)), b2=rng.standard_normal(C), λ=0.1)
loss, (dW1, db1, dW2, db2) = kernel(**data)

def reference(X, Y, W1, b1, W2, b2, λ):   # the same loss, written independently
    H1 = 1 / (1 + np.exp(-(X @ W1 + b1)))
    Z2 = H1 @ W2 + b2
    logp = Z2 - Z2.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    return -np.sum(Y * logp) / len(X) + λ * (np.sum(W1**2) + np.sum(W2**2))

for name, g in [("W1", dW1), ("b1", db1), ("W2", dW2), ("b2", db2)]:
    err = np.max(np.abs(g - numeric_gradient(reference, data, name)))
    print(f"{name}: max abs error {err:.1e}")
    assert err < 1e-7
assert np.isclose(loss, reference(**data))

# ∂L/∂Z2 = δ2/N with δ2 = softmax(Z2) − Y: perturb Z2 in the loss's tail
H1 = 1 / (1 + np.exp(-(data["X"] @ data["W1"] + data["b1"])))
Z2 = H1 @ data["W2"] + data["b2"]
def tail(Z2, Y):
    logp = Z2 - Z2.max(1, keepdims=True)
    return -np.sum(Y * (logp - np.log(np.exp(logp).sum(1, keepdims=True)))) / len(Y)
P = np.exp(Z2) / np.exp(Z2).sum(1, keepdims=True)
dZ2 = grads["Z2"].numpy_function()(**data)
assert np.max(np.abs(dZ2 - numeric_gradient(tail, dict(Z2=Z2, Y=data["Y"]), "Z2"))) < 1e-8
assert np.max(np.abs(dZ2 - (P - data["Y"]) / N)) < 1e-12

# %% [markdown]
# ## Hessians and the generated module

# %%
hessian = lambda *args: subprocess.run([sys.executable, "-m", "matdiff.cli", "hessian", "logsumexp(x)", "--wrt", "x", *args],
                                      capture_output=True, text=True, check=True).stdout
print(hessian(), end="")
print(matdiff.grad("x^T A x", wrt="x", vars={"A": "symmetric"}).text)
print(matdiff.grad("||X W - Y||_F^2", wrt="W").numpy_source())

# each of them against central differences of NumPy written by hand
x = rng.standard_normal(5)
sm = lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum()
H_fd = np.stack([(sm(x + 1e-6 * e) - sm(x - 1e-6 * e)) / 2e-6 for e in np.eye(5)], axis=1)
generated = {}
exec(compile(hessian("--format", "numpy"), "<matdiff module>", "exec"), generated)
assert np.max(np.abs(generated["hessian"](x=x) - H_fd)) < 1e-8
assert np.max(np.abs(np.diag(sm(x)) - np.outer(sm(x), sm(x)) - H_fd)) < 1e-8
S = rng.standard_normal((5, 5)); S = S + S.T
fd = numeric_gradient(lambda x, A: x @ A @ x, dict(x=x, A=S), "x")
assert np.max(np.abs(matdiff.grad("x^T A x", wrt="x", vars={"A": "symmetric"}).numpy_function()(x=x, A=S) - fd)) < 1e-7
assert np.max(np.abs(2 * S @ x - fd)) < 1e-7
B = dict(X=rng.standard_normal((6, 4)), W=rng.standard_normal((4, 3)), Y=rng.standard_normal((6, 3)))
fd = numeric_gradient(lambda X, W, Y: np.sum((X @ W - Y) ** 2), B, "W")
assert np.max(np.abs(matdiff.grad("||X W - Y||_F^2", wrt="W").numpy_function()(**B) - fd)) < 1e-6
assert np.max(np.abs(2 * B["X"].T @ (B["X"] @ B["W"] - B["Y"]) - fd)) < 1e-6
