"""Hessians and Jacobians.

Hessian of a scalar f: the differential of the gradient, H[dX] = d(∇f)[dX],
by forward mode over the gradient's DAG. For a vector x it is written as the
n×n matrix H with d(∇f) = H dx; for a matrix X as the second differential
d²f = tr(dXᵀ H[dX]) and, where every term is A dX B, in Kronecker form on
vec(X) (column stacking). Jacobian of a vector f: J with df = J dx.
"""

from . import ir
from .engine import Problem, shape_of
from .errors import DerivativeError
from .forward import differential, linear_matrix, kronecker_terms
from .printing import Printer, LatexPrinter


class Higher:
    def __init__(self, expr, wrt, vars=None, kind="hessian"):
        if not isinstance(wrt, str):
            if len(wrt) != 1:
                raise DerivativeError(f"{kind} takes exactly one --wrt variable")
            wrt = wrt[0]
        self.kind, self.wrt = kind, wrt
        self.problem = p = Problem(expr, vars)
        x = p.target(wrt)
        self.x = x
        if kind == "hessian":
            if not p.root.is_scalar:
                raise DerivativeError("a Hessian needs a scalar function; for a vector function "
                                      "use `matdiff jacobian`")
            F = p.gradients([wrt])[wrt]
        else:
            if p.root.cols != 1 and p.root.rows != 1:
                raise DerivativeError("a Jacobian needs a scalar or vector function, got a matrix "
                                      f"({'×'.join(map(str, p.root.shape))})")
            if x.cols != 1 and x.rows != 1:
                raise DerivativeError(f"a Jacobian is taken with respect to a vector; {wrt} is a matrix "
                                      f"(use `matdiff hessian` or `grad`)")
            F = p.root
        self.F = F
        self.direction = ir.var("δ" + wrt, "matrix" if not x.cols == 1 else "vector", x.shape)
        self.dF = differential(F, x, self.direction)
        self.matrix = None
        self.kron = None
        if x.cols == 1:
            self.matrix = linear_matrix(self.dF, self.direction)
        else:
            self.kron = kronecker_terms(self.dF, self.direction)
        self.names = dict(p.names)
        self.names[self.direction] = "d" + wrt

    @property
    def shape(self):
        n = shape_of(self.x)
        if self.kind == "jacobian":
            return tuple(shape_of(self.F)) + tuple(n) if shape_of(self.F) else (1,) + tuple(n)
        if len(n) == 2:
            return (f"{n[0]}·{n[1]}", f"{n[0]}·{n[1]}")
        return tuple(n) + tuple(n)

    def _printer(self, latex=False):
        cls = LatexPrinter if latex else Printer
        return cls(self.names, "eye" if "I" in self.problem.variables else "I")

    def lines(self, fname="L", latex=False):
        pr = self._printer(latex)
        w = self.wrt
        if self.matrix is not None:
            if self.kind == "hessian":
                lhs = (f"\\frac{{\\partial^2 {fname}}}{{\\partial {w}^2}}" if latex
                       else f"∂²{fname}/∂{w}²")
            else:
                lhs = (f"\\frac{{\\partial {fname}}}{{\\partial {w}}}" if latex else f"∂{fname}/∂{w}")
            return [f"{lhs} = {pr(self.matrix)}"]
        dx = pr(self.direction)
        if ir.is_zero(self.dF):
            if self.kind == "jacobian":
                return [f"d{fname} = 0"]
            vec = f"∂²{fname}/∂vec({w})² = 0" if not latex else \
                f"\\frac{{\\partial^2 {fname}}}{{\\partial \\operatorname{{vec}}({w})^2}} = 0"
            return [f"d²{fname} = 0" if not latex else f"d^2{fname} = 0", vec]
        if self.kind == "jacobian":
            return [f"d{fname} = {pr(self.dF)}"]
        if self.x.cols == 1:
            t = "^{\\top}" if latex else "ᵀ"
            return [f"d^2{fname} = {dx}{t} {pr.paren(pr(self.dF))}" if latex
                    else f"d²{fname} = {dx}ᵀ{pr.paren(pr(self.dF))}"]
        if latex:
            out = [f"d^2{fname} = \\operatorname{{tr}}\\left({dx}^{{\\top}} {pr.paren(pr(self.dF))}\\right)"]
        else:
            out = [f"d²{fname} = tr({dx}ᵀ{pr.paren(pr(self.dF))})"]
        if self.kron:
            parts = []
            for c, A, B, commuted in self.kron:
                kron = (f"{pr.wrap(ir.transpose(B), 5)} \\otimes {pr.wrap(A, 5)}" if latex
                        else f"{pr.wrap(ir.transpose(B), 5)} ⊗ {pr.wrap(A, 5)}")
                if A.op == "eye" and B.op == "eye":
                    kron = "K" if commuted else "I"
                elif commuted:
                    kron = f"({kron})K"
                cs = pr(c)
                sign = {"1": "", "−1": "−", "-1": "-"}
                if cs in sign:
                    parts.append(sign[cs] + kron)
                else:
                    parts.append(f"{cs}{kron}" if commuted or kron in ("I", "K") else f"{cs}({kron})")
            lhs = (f"\\frac{{\\partial^2 {fname}}}{{\\partial \\operatorname{{vec}}({w})^2}}" if latex
                   else f"∂²{fname}/∂vec({w})²")
            line = f"{lhs} = " + " + ".join(parts)
            if any(k[3] for k in self.kron):
                line += ("\\quad (K\\operatorname{vec}(dX) = \\operatorname{vec}(dX^{\\top}))" if latex
                         else "   (K: the commutation matrix, K vec(dX) = vec(dXᵀ))")
            out.append(line)
        return out

    def numpy_source(self):
        return self.source("numpy")

    def source(self, backend="numpy"):
        """The module of value and the Hessian / Jacobian for `backend`
        ("numpy", "jax" or "torch")."""
        from .emit import higher_source
        return higher_source(self, backend)
