"""Generated backprop kernel vs hand-written NumPy backprop (and, where installed,
PyTorch CPU autograd and jax.jit(jax.value_and_grad)), measured in the same run.

The seed-002 two-layer network: L = -tr(Yᵀ log softmax(σ(X W1 + b1) W2 + b2)),
onehot Y, gradients for W1, b1, W2, b2, at N=512, D=784, H=256, C=10.

    python benchmarks/bench_kernel.py [--repeat 30]
"""

import argparse
import time

import numpy as np

import matdiff

EXPR = "-tr(Y^T log softmax(σ(X W1 + b1) W2 + b2))"
WRT = ["W1", "b1", "W2", "b2"]


def hand_written(X, Y, W1, b1, W2, b2):
    """Backprop as one writes it by hand (stable log-softmax, stable sigmoid)."""
    Z1 = X @ W1 + b1
    e = np.exp(-np.abs(Z1))
    H = np.where(Z1 >= 0, 1.0, e) / (1.0 + e)
    Z2 = H @ W2 + b2
    Z2 = Z2 - Z2.max(axis=1, keepdims=True)
    logp = Z2 - np.log(np.exp(Z2).sum(axis=1, keepdims=True))
    loss = -np.sum(Y * logp)
    dZ2 = np.exp(logp) - Y
    dW2 = H.T @ dZ2
    db2 = dZ2.sum(axis=0)
    dZ1 = (dZ2 @ W2.T) * H * (1.0 - H)
    dW1 = X.T @ dZ1
    db1 = dZ1.sum(axis=0)
    return loss, (dW1, db1, dW2, db2)


def interleaved(fns, repeat):
    """Time the implementations round-robin, so machine noise hits them alike."""
    for f in fns:
        f()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for f, ts in zip(fns, times):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
    return [(min(ts), float(np.median(ts))) for ts in times]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    N, D, H, C = 512, 784, 256, 10
    rng = np.random.default_rng(0)
    data = dict(X=rng.standard_normal((N, D)), Y=np.eye(C)[rng.integers(C, size=N)],
                W1=rng.standard_normal((D, H)) * 0.05, b1=np.zeros(H),
                W2=rng.standard_normal((H, C)) * 0.05, b2=np.zeros(C))
    kernel = matdiff.kernel(EXPR, wrt=WRT, vars={"Y": "onehot"})
    v1, g1 = kernel(**data)
    v2, g2 = hand_written(**data)
    assert np.isclose(v1, v2) and all(np.allclose(a, b) for a, b in zip(g1, g2))

    impls = [("hand-written NumPy", lambda: hand_written(**data)),
             ("matdiff kernel", lambda: kernel(**data))]
    try:
        import torch
        t = {k: torch.tensor(v, requires_grad=k in WRT) for k, v in data.items()}

        def torch_step():
            for k in WRT:
                t[k].grad = None
            z = torch.sigmoid(t["X"] @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
            loss = -(t["Y"] * torch.log_softmax(z, dim=1)).sum()
            loss.backward()
        impls.append(("PyTorch CPU autograd", torch_step))
    except ImportError:
        missing = ["PyTorch CPU autograd"]
    else:
        missing = []
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)

        def loss_fn(params, X, Y):
            W1, b1, W2, b2 = params
            z = jax.nn.sigmoid(X @ W1 + b1) @ W2 + b2
            return -jnp.sum(Y * jax.nn.log_softmax(z, axis=1))
        vg = jax.jit(jax.value_and_grad(loss_fn))
        params = tuple(jnp.asarray(data[k]) for k in WRT)
        X, Y = jnp.asarray(data["X"]), jnp.asarray(data["Y"])
        impls.append(("jax.jit(value_and_grad)", lambda: jax.block_until_ready(vg(params, X, Y))))
    except ImportError:
        missing.append("jax.jit(value_and_grad)")
    rows = list(zip([n for n, _ in impls], interleaved([f for _, f in impls], args.repeat)))
    rows += [(n, None) for n in missing]

    base = rows[0][1][0]
    print(f"two-layer network N={N} D={D} H={H} C={C}, float64, best of {args.repeat}")
    print(f"{'implementation':28s} {'min ms':>8s} {'median ms':>10s} {'ratio (min)':>12s}")
    for name, t in rows:
        if t is None:
            print(f"{name:28s} {'not installed':>32s}")
            continue
        print(f"{name:28s} {t[0] * 1e3:8.2f} {t[1] * 1e3:10.2f} {t[0] / base:12.3f}")


if __name__ == "__main__":
    main()
