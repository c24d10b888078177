"""matdiff's NumPy, JAX and PyTorch kernels side by side, in one run, as ratios.

1. The seed-002 two-layer network (N=512, D=784, H=256, C=10, onehot Y,
   gradients for W1, b1, W2, b2) and a deeper sigmoid MLP (4 hidden layers of
   256): value and gradient by
   * hand-written NumPy backprop                  vs matdiff's NumPy kernel;
   * hand-written backprop in jax.numpy, jit      vs jax.jit(jax.value_and_grad(loss)),
     jax.jit(matdiff's value_and_gradient), and jax.jit(jax.value_and_grad) of
     the loss through matdiff's custom_vjp function;
   * hand-written backprop in PyTorch             vs torch.autograd (forward + backward),
     matdiff's torch value_and_gradient, and autograd through matdiff's
     torch.autograd.Function.
2. Hessians: the logistic loss sum(log(1 + exp(-y ⊙ Xw))) (N=2000, d=400) and
   xᵀAx + Σexp(x) (d=400): matdiff's kernels against the hand-written closed
   form in the same framework (the textbook's formula, written naturally:
   A + Aᵀ + diag(eˣ)), the framework's autodiff, and jax.jit(jax.hessian).

Ratio: time / the hand-written code in the same framework, min of
`--repeat` interleaved runs (machine noise hits every implementation alike).
float64 throughout (`--float32` for single precision). Missing frameworks are
reported as such.

    python benchmarks/bench_backends.py [--repeat 20] [--float32] [--threads N]
                                        [--only networks|hessians]

--threads N pins NumPy's BLAS, XLA and PyTorch to N threads each (steadier
ratios on a shared machine); by default each library picks its own.
"""

import argparse
import os
import sys
import time

if "--threads" in sys.argv:  # before NumPy, JAX or PyTorch start their thread pools
    _n = sys.argv[sys.argv.index("--threads") + 1]
    for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_v] = _n
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                               + ("false" if _n == "1" else "true")
                               + f" intra_op_parallelism_threads={_n}").strip()

import numpy as np  # noqa: E402

from matdiff.api import Result  # noqa: E402
from matdiff.higher import Higher  # noqa: E402
from matdiff.numpy_emit import compile_module  # noqa: E402

TWO_LAYER = "-tr(Y^T log softmax(σ(X W1 + b1) W2 + b2))"
DEEP = "-tr(Y^T log softmax(σ(σ(σ(σ(X W1 + b1) W2 + b2) W3 + b3) W4 + b4) W5 + b5))"


def interleaved(fns, repeat):
    for f in fns:
        f()
        f()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for f, ts in zip(fns, times):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
    return [min(ts) for ts in times]


def network_data(layers, N, rng, dtype):
    data = {"X": rng.standard_normal((N, layers[0])),
            "Y": np.eye(layers[-1])[rng.integers(layers[-1], size=N)]}
    for i in range(1, len(layers)):
        data[f"W{i}"] = rng.standard_normal((layers[i - 1], layers[i])) * (1.0 / np.sqrt(layers[i - 1]))
        data[f"b{i}"] = rng.standard_normal(layers[i]) * 0.1
    return {k: v.astype(dtype) for k, v in data.items()}


def _backprop(n_layers, sigmoid, log_softmax, xp):
    """Backprop of the σ-MLP with a softmax loss, written by hand once for every
    framework: `sigmoid` and `log_softmax` (rows) are the library's own, xp its
    array module (exp, sum); sums over rows are `.sum(0)`."""
    def run(X, Y, **p):
        Hs = [X]
        for i in range(1, n_layers):
            Hs.append(sigmoid(Hs[-1] @ p[f"W{i}"] + p[f"b{i}"]))
        logp = log_softmax(Hs[-1] @ p[f"W{n_layers}"] + p[f"b{n_layers}"])
        loss = -xp.sum(Y * logp)
        d = xp.exp(logp) - Y
        grads = {}
        for i in range(n_layers, 0, -1):
            grads[f"W{i}"] = Hs[i - 1].T @ d
            grads[f"b{i}"] = d.sum(0)
            if i > 1:
                H = Hs[i - 1]
                d = (d @ p[f"W{i}"].T) * H * (1.0 - H)
        return loss, grads
    return run


def _np_sigmoid(Z):
    e = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1.0, e) / (1.0 + e)


def _np_log_softmax(Z):
    Z = Z - Z.max(axis=1, keepdims=True)
    return Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))


def numpy_backprop(n_layers):
    return _backprop(n_layers, _np_sigmoid, _np_log_softmax, np)


def torch_backprop(n_layers):
    """In PyTorch (the library's sigmoid and log_softmax), without autograd."""
    import torch
    run = _backprop(n_layers, torch.sigmoid, lambda Z: torch.log_softmax(Z, dim=1), torch)

    def no_grad(**arrays):
        with torch.no_grad():
            return run(**arrays)
    return no_grad


def jax_backprop(n_layers):
    """In jax.numpy (jit it)."""
    import jax
    import jax.numpy as jnp
    return _backprop(n_layers, jax.nn.sigmoid, lambda Z: jax.nn.log_softmax(Z, axis=1), jnp)


def rows_network(name, expr, layers, N, repeat, dtype):
    rng = np.random.default_rng(0)
    n = len(layers) - 1
    wrt = [f"{k}{i}" for i in range(1, n + 1) for k in ("W", "b")]
    data = network_data(layers, N, rng, dtype)
    result = Result(expr, wrt, {"Y": "onehot"})
    out = []

    # NumPy
    hand = numpy_backprop(n)
    kernel = result.namespace("numpy")["value_and_gradient"]
    v1, g1 = kernel(**data)
    v2, g2 = hand(**data)
    assert np.isclose(v1, v2, rtol=1e-4) and all(
        np.allclose(a, g2[w], rtol=1e-3, atol=1e-5) for a, w in zip(g1, wrt))
    t = interleaved([lambda: hand(**data), lambda: kernel(**data)], repeat)
    out += [(name, "NumPy", "hand-written backprop", t[0], 1.0),
            (name, "NumPy", "matdiff kernel", t[1], t[1] / t[0])]

    # JAX
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        out.append((name, "JAX", "not installed", None, None))
    else:
        jax.config.update("jax_enable_x64", True)
        ns = result.namespace("jax")
        jd = {k: jnp.asarray(v) for k, v in data.items()}
        params = {w: jd[w] for w in wrt}
        consts = {k: v for k, v in jd.items() if k not in params}

        def loss(params, X, Y):
            H = X
            for i in range(1, n):
                H = jax.nn.sigmoid(H @ params[f"W{i}"] + params[f"b{i}"])
            Z = H @ params[f"W{n}"] + params[f"b{n}"]
            return -jnp.sum(Y * jax.nn.log_softmax(Z, axis=1))
        autodiff = jax.jit(jax.value_and_grad(loss))
        kern = jax.jit(ns["value_and_gradient"])
        names = list(jd)
        f = ns["function"]
        via_vjp = jax.jit(jax.value_and_grad(
            lambda params, c: f(**{**c, **params})))
        hand_j = jax.jit(jax_backprop(n))
        run = [lambda: jax.block_until_ready(hand_j(**jd)),
               lambda: jax.block_until_ready(autodiff(params, consts["X"], consts["Y"])),
               lambda: jax.block_until_ready(kern(**jd)),
               lambda: jax.block_until_ready(via_vjp(params, consts))]
        va, ga = autodiff(params, consts["X"], consts["Y"])
        vk, gk = kern(**jd)
        assert np.isclose(va, vk, rtol=1e-4) and all(
            np.allclose(ga[w], g, rtol=1e-3, atol=1e-5) for w, g in zip(wrt, gk))
        vh, gh = hand_j(**jd)
        assert np.isclose(va, vh, rtol=1e-4) and all(np.allclose(ga[w], gh[w], rtol=1e-3, atol=1e-5)
                                                     for w in wrt)
        del names
        t = interleaved(run, repeat)
        out += [(name, "JAX", "hand-written backprop, jit", t[0], 1.0),
                (name, "JAX", "jax.jit(value_and_grad)", t[1], t[1] / t[0]),
                (name, "JAX", "matdiff kernel, jit", t[2], t[2] / t[0]),
                (name, "JAX", "value_and_grad via custom_vjp", t[3], t[3] / t[0])]

    # PyTorch
    try:
        import torch
    except ImportError:
        out.append((name, "PyTorch", "not installed", None, None))
    else:
        ns = result.namespace("torch")
        td = {k: torch.tensor(v) for k, v in data.items()}
        leaves = {k: v.clone().requires_grad_(k in wrt) for k, v in td.items()}

        def autograd_step():
            for w in wrt:
                leaves[w].grad = None
            H = leaves["X"]
            for i in range(1, n):
                H = torch.sigmoid(H @ leaves[f"W{i}"] + leaves[f"b{i}"])
            Z = H @ leaves[f"W{n}"] + leaves[f"b{n}"]
            loss = -(leaves["Y"] * torch.log_softmax(Z, dim=1)).sum()
            loss.backward()
            return loss

        kern = ns["value_and_gradient"]

        def kernel_step():
            with torch.no_grad():
                return kern(**td)

        fn = ns["function"]

        def function_step():
            for w in wrt:
                leaves[w].grad = None
            loss = fn(**leaves)
            loss.backward()
            return loss
        hand_t = torch_backprop(n)
        vh, gh = hand_t(**td)
        vk, gk = kernel_step()
        assert np.isclose(float(vh), float(vk), rtol=1e-4) and all(
            np.allclose(gh[w].numpy(), g.numpy(), rtol=1e-3, atol=1e-5) for w, g in zip(wrt, gk))
        t = interleaved([lambda: hand_t(**td), autograd_step, kernel_step, function_step], repeat)
        out += [(name, "PyTorch", "hand-written backprop", t[0], 1.0),
                (name, "PyTorch", "torch.autograd", t[1], t[1] / t[0]),
                (name, "PyTorch", "matdiff kernel", t[2], t[2] / t[0]),
                (name, "PyTorch", "autograd via Function", t[3], t[3] / t[0])]
    return out


def rows_hessian(name, expr, wrt, data, hands, jax_f, repeat, torch_fs=None):
    """hands: the hand-written closed form per framework ("NumPy", "JAX",
    "PyTorch"), each taking that framework's arrays."""
    h = Higher(expr, [wrt], {}, "hessian")
    out = []
    kern = compile_module(h.source("numpy"))["hessian"]
    hand = hands["NumPy"]
    assert np.allclose(kern(**data), hand(**data), rtol=1e-8, atol=1e-8)
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        jax = None
    fns = [("NumPy", "hand-written closed form", lambda: hand(**data)),
           ("NumPy", "matdiff kernel", lambda: kern(**data))]
    if jax is not None:
        jax.config.update("jax_enable_x64", True)
        jd = {k: jnp.asarray(v) for k, v in data.items()}
        auto = jax.jit(jax.hessian(lambda x, rest: jax_f(**{**rest, wrt: x})))
        rest = {k: v for k, v in jd.items() if k != wrt}
        jk = jax.jit(compile_module(h.source("jax"))["hessian"])
        jh = jax.jit(hands["JAX"])
        assert np.allclose(auto(jd[wrt], rest), jk(**jd), rtol=1e-8, atol=1e-8)
        assert np.allclose(jh(**jd), jk(**jd), rtol=1e-8, atol=1e-8)
        fns += [("JAX", "jax.jit(jax.hessian)", lambda: jax.block_until_ready(auto(jd[wrt], rest))),
                ("JAX", "hand-written closed form, jit", lambda: jax.block_until_ready(jh(**jd))),
                ("JAX", "matdiff kernel, jit", lambda: jax.block_until_ready(jk(**jd)))]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        tk = compile_module(h.source("torch"))["hessian"]
        td = {k: torch.tensor(v) for k, v in data.items()}
        rest_t = {k: v for k, v in td.items() if k != wrt}
        torch_f = torch_fs[name]
        auto_t = torch.func.hessian(lambda x: torch_f(**{**rest_t, wrt: x}))
        th = hands["PyTorch"]
        assert np.allclose(auto_t(td[wrt]).numpy(), tk(**td).numpy(), rtol=1e-8, atol=1e-8)
        assert np.allclose(th(**td).numpy(), tk(**td).numpy(), rtol=1e-8, atol=1e-8)
        fns += [("PyTorch", "torch.func.hessian", lambda: auto_t(td[wrt])),
                ("PyTorch", "hand-written closed form", lambda: th(**td)),
                ("PyTorch", "matdiff kernel", lambda: tk(**td))]
    t = interleaved([f for *_, f in fns], repeat)
    ref = t[2] if jax is not None else None
    for (fw, impl, _), ti in zip(fns, t):
        hand_t = t[[i for i, (f, im, _) in enumerate(fns)
                    if f == fw and im.startswith("hand")][0]]
        out.append((name, fw, impl, ti, ti / hand_t))
        if ref is not None:
            out[-1] += (ref / ti,)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--float32", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", choices=["networks", "hessians"], default=None,
                    help="run one of the two tables")
    args = ap.parse_args()
    if args.threads:
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    dtype = np.float32 if args.float32 else np.float64
    rows = []
    if args.only != "hessians":
        rows += rows_network("seed-002 two-layer (N=512, 784-256-10)", TWO_LAYER, [784, 256, 10],
                             512, args.repeat, dtype)
        rows += rows_network("deeper MLP (N=512, 784-256-256-256-256-10)", DEEP,
                             [784, 256, 256, 256, 256, 10], 512, args.repeat, dtype)
    rng = np.random.default_rng(1)
    N, d = 2000, 400
    lr = dict(y=rng.choice([-1.0, 1.0], N), X=rng.standard_normal((N, d)) / np.sqrt(d),
              w=rng.standard_normal(d))

    def lr_hand(y, X, w):
        s = 1.0 / (1.0 + np.exp(y * (X @ w)))
        return X.T @ ((y * y * s * (1.0 - s))[:, None] * X)

    def lr_hand_jax(y, X, w):
        import jax
        s = jax.nn.sigmoid(-y * (X @ w))
        return X.T @ ((y * y * s * (1.0 - s))[:, None] * X)

    def lr_hand_torch(y, X, w):
        import torch
        s = torch.sigmoid(-y * (X @ w))
        return X.T @ ((y * y * s * (1.0 - s))[:, None] * X)

    def lr_jax(y, X, w):
        import jax.numpy as jnp
        return jnp.sum(jnp.logaddexp(0.0, -y * (X @ w)))
    torch_fs = {}
    try:
        import torch
        torch_fs[f"logistic Hessian (N={N}, d={d})"] = (
            lambda y, X, w: torch.nn.functional.softplus(-y * (X @ w)).sum())
        torch_fs[f"xᵀAx + Σexp(x) Hessian (d={d})"] = lambda x, A: x @ A @ x + torch.exp(x).sum()
    except ImportError:
        pass
    rows_h = [] if args.only == "networks" else rows_hessian(f"logistic Hessian (N={N}, d={d})", "sum(log(1 + exp(-y .* (X w))))", "w",
                          lr, {"NumPy": lr_hand, "JAX": lr_hand_jax, "PyTorch": lr_hand_torch},
                          lr_jax, args.repeat, torch_fs)
    A = rng.standard_normal((d, d))
    qa = dict(x=rng.standard_normal(d) * 0.1, A=A)

    def qa_hand(x, A):
        return A + A.T + np.diag(np.exp(x))

    def qa_hand_jax(x, A):
        import jax.numpy as jnp
        return A + A.T + jnp.diag(jnp.exp(x))

    def qa_hand_torch(x, A):
        import torch
        return A + A.T + torch.diag(torch.exp(x))

    def qa_jax(x, A):
        import jax.numpy as jnp
        return x @ A @ x + jnp.sum(jnp.exp(x))
    rows_h += [] if args.only == "networks" else rows_hessian(f"xᵀAx + Σexp(x) Hessian (d={d})", "x^T A x + sum(exp(x))", "x", qa,
                           {"NumPy": qa_hand, "JAX": qa_hand_jax, "PyTorch": qa_hand_torch},
                           qa_jax, args.repeat, torch_fs)

    threads = f"{args.threads} thread(s) each" if args.threads else "default threads"
    print(f"{'float32' if args.float32 else 'float64'}, {threads}, min of {args.repeat} interleaved "
          "runs; ratio: time / the hand-written code in the same framework (1.00)")
    print()
    print("| problem | framework | implementation | ms | ratio |")
    print("|---|---|---|---:|---:|")
    for name, fw, impl, t, r in rows:
        if t is None:
            print(f"| {name} | {fw} | {impl} | | |")
        else:
            print(f"| {name} | {fw} | {impl} | {t * 1e3:.2f} | {r:.2f} |")
    print()
    print("| Hessian | framework | implementation | ms | time / hand closed form (same framework) "
          "| speed-up over jax.jit(jax.hessian) |")
    print("|---|---|---|---:|---:|---:|")
    for name, fw, impl, t, r, *sp in rows_h:
        s = f"{sp[0]:.1f}×" if sp else ""
        print(f"| {name} | {fw} | {impl} | {t * 1e3:.2f} | {r:.2f} | {s} |")


if __name__ == "__main__":
    main()
