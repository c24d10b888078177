"""Forward mode: the differential d f[dX] from the rules' `differential`
templates, and the extraction of a linear form d f = M dx into its matrix M
(Jacobians, Hessians). Kronecker forms for matrix directions:
vec(A dX B) = (Bᵀ ⊗ A) vec(dX).
"""

from . import ir
from . import templates
from .ops import linear, registry
from .diff import topo_order, rule_env


def differential(root, target, direction):
    """d(root) when d(target) = direction (a node of target's shape)."""
    d = {}
    for n in topo_order(root):
        if n is target:
            d[n] = direction
            continue
        parts = []
        for i, a in enumerate(n.args):
            da = d.get(a)
            if da is None or ir.is_zero(da):
                continue
            rule, _ = registry.op_rule(n)
            env, name = rule_env(n, i)
            env["d" + name] = da
            part = templates.instantiate(rule["differential"][name], env)
            if a.is_scalar and not n.is_scalar and part.is_scalar:
                part = ir.mul(part, ir.ones_like(n.shape))
            parts.append(part)
        if parts:
            d[n] = ir.add(*parts)
    return d.get(root, ir.zero(root.shape))


def depends(node, v, memo=None):
    memo = {} if memo is None else memo
    hit = memo.get(node)
    if hit is None:
        hit = node is v or any(depends(a, v, memo) for a in node.args)
        memo[node] = hit
    return hit


def _size(node):
    r, c = node.shape
    return r if c == 1 else c


def linear_matrix(E, v):
    """M with vec(E) = M v, for E a scalar or vector linear in the vector v; None
    where the form is not one of the handled products."""
    memo = {}
    return _lin(E, v, memo)


def _lin(E, v, memo):
    n = v.rows
    if not depends(E, v, memo):
        return ir.zero((_size(E), n)) if not E.is_scalar else ir.zero((1, n))
    if E is v:
        return ir.eye(n)
    if E.cols != 1 and E.rows != 1:
        return None  # a matrix: not a vector's entries
    op = E.op
    if op in ("T", "let"):
        return _lin(E.args[0], v, memo)
    if op == "add":
        parts = []
        for t in E.args:
            m = _lin(t, v, memo)
            if m is None:
                return None
            if t.is_scalar and not E.is_scalar:
                m = ir.matmul(ir.ones(_size(E)), m)
            parts.append(m)
        return ir.add(*parts)
    if op == "mul":
        dep = [f for f in E.args if depends(f, v, memo)]
        if len(dep) != 1:
            return None
        F = dep[0]
        rest = [f for f in E.args if f is not F]
        P = ir.mul(*rest) if rest else ir.num(1)
        MF = _lin(F, v, memo)
        if MF is None:
            return None
        if P.is_scalar:
            if F.is_scalar and not E.is_scalar:
                return ir.matmul(ir.ones(_size(E)), ir.mul(P, MF))
            return ir.mul(P, MF)
        Pc = P if P.cols == 1 else ir.transpose(P)
        if F.is_scalar:
            return ir.matmul(Pc, MF)
        return ir.matmul(ir.diag(Pc), MF)
    if op == "matmul":
        chain = E.args
        idx = [i for i, f in enumerate(chain) if depends(f, v, memo)]
        if len(idx) != 1:
            return None
        i = idx[0]
        A, F, B = chain[:i], chain[i], chain[i + 1:]
        Ap = ir.matmul(*A) if A else None
        Bp = ir.matmul(*B) if B else None
        if F.cols == 1:
            MF = _lin(F, v, memo)
            if MF is None:
                return None
            out = ir.matmul(Ap, MF) if Ap is not None else MF
            if Bp is None:
                return out
            return ir.mul(Bp, out) if Bp.is_scalar else None
        if F.rows == 1:
            MF = _lin(F, v, memo)
            if MF is None:
                return None
            inner = ir.matmul(ir.transpose(Bp), MF) if Bp is not None else MF
            if Ap is None:
                return inner
            return ir.matmul(Ap, inner) if (Bp is None or Bp.cols == 1) else None
        core = linear.scaling_factor(F, Bp, v, lambda x: _lin(x, v, memo))
        if core is None:
            return None
        return ir.matmul(Ap, core) if Ap is not None else core
    return linear.op_matrix(E, v, lambda x: _lin(x, v, memo))


def kronecker_terms(H, dX):
    """H[dX] as Σ c·A dX B or c·A dXᵀ B: [(c, A, B, commuted)] with
    vec(A dX B) = (Bᵀ ⊗ A) vec(dX) and vec(A dXᵀ B) = (Bᵀ ⊗ A) K vec(dX),
    K the commutation matrix; None otherwise."""
    terms = H.args if H.op == "add" else (H,)
    out = []
    for t in terms:
        c, core = ir.split_coef(t)
        if core is None:
            return None
        scal = []
        if core.op == "mul" and not core.is_scalar:
            scal = [f for f in core.args if f.is_scalar]
            rest = [f for f in core.args if not f.is_scalar]
            if len(rest) != 1:
                return None
            core = rest[0]
        if any(depends(s, dX) for s in scal):
            return None
        chain = list(core.args) if core.op == "matmul" else [core]
        idx = [i for i, f in enumerate(chain) if depends(f, dX)]
        if len(idx) != 1:
            return None
        i = idx[0]
        commuted = chain[i] is not dX
        if commuted and not (chain[i].op == "T" and chain[i].args[0] is dX):
            return None
        d = chain[i]
        A = ir.matmul(*chain[:i]) if i else ir.eye(d.rows)
        B = ir.matmul(*chain[i + 1:]) if i + 1 < len(chain) else ir.eye(d.cols)
        out.append((ir.mul(ir.num(c), *scal) if scal or c != 1 else ir.num(c), A, B, commuted))
    return out
