"""Text (Unicode, valid matdiff input) and LaTeX printers over the IR.

One printer, two styles. Precedence decides parentheses; shared nodes are
printed once per call (memo), and nodes bound to intermediate names print as
those names.
"""

import re
import unicodedata
from fractions import Fraction

from . import present
from .ops import registry
from .dims import Prod
from .errors import DerivativeError

ADD, NEG, HAD, PROD, APPLY, POSTFIX, ATOM = range(7)
# how a registered op's template binds (its entry's `prec`)
_PRECS = {"atom": ATOM, "postfix": POSTFIX, "hadamard": HAD}

_CHUNK = re.compile(r"^[^\W\d_]\d*$")
_WORD = r"(?:(?![𝟙ᵀ⁻⁰¹²³⁴⁵⁶⁷⁸⁹])\w)"
_NAME_TAIL = re.compile(_WORD + "+$")
_NAME_HEAD = re.compile("^" + _WORD + "+")

def _greek_names():
    """α -> alpha, Γ -> Gamma, …: the LaTeX command of each Greek letter, from
    its Unicode name. LaTeX has no omicron and no capitals that look Latin."""
    def word(ch):  # Unicode spells lambda LAMDA
        w = unicodedata.name(ch).split()[-1]
        return "LAMBDA" if w == "LAMDA" else w
    small = [chr(c) for c in range(ord("α"), ord("ω") + 1) if chr(c) not in "ος"]
    out = {ch: word(ch).lower() for ch in small}
    out.update({ch: word(ch).capitalize() for ch in "ΓΔΘΛΞΠΣΦΨΩ"})
    return out


_LATEX_GREEK = _greek_names()
_GREEK_WORDS = set(_LATEX_GREEK.values())


def _decimal(v):
    """The exact decimal of a fraction with a short terminating expansion, else None.
    Halves and quarters stay fractions (x/2 reads better than 0.5x)."""
    d = v.denominator
    if d in (1, 2, 4):
        return None
    twos = fives = 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    digits = max(twos, fives)
    if d != 1 or digits > 6:
        return None
    scaled = abs(v.numerator) * 10 ** digits // v.denominator
    text = f"{scaled // 10 ** digits}.{scaled % 10 ** digits:0{digits}d}"
    return ("-" if v.numerator < 0 else "") + text


def _fmt_number(v):
    if isinstance(v, Fraction):
        if v.denominator == 1:
            return str(v.numerator)
        return _decimal(v) or f"{v.numerator}/{v.denominator}"
    r = repr(float(v))
    return r[:-2] if r.endswith(".0") else r


def _kept_whole(word):
    """Would the parser read `word` as one name (M u as Mu, the Greek μ)?"""
    from .parser import is_greek
    return is_greek(word) or word in ("pi", "eye", "ones") or word.startswith("I_") \
        or word in registry.functions()


class Printer:
    latex = False

    def __init__(self, names=None, eye_name="I"):
        self.names = names or {}
        self.eye_name = eye_name
        self.memo = {}
        self.whole = set()  # printed names that splitting would break: need spaces
        self.sized = None  # 𝟙 / I / 0 leaves whose size nothing else in the text fixes
        self.shared = {}  # node -> its name in a `where` block
        self.defining = None  # the node whose definition is being printed
        # With a where block: node -> the nodes whose text its own text
        # contains (their names for shared parts), so that the definitions
        # the output reads are found without searching the text.
        self.parts = None
        self._open = []  # the nodes being printed, innermost last

    def spaced(self, n):
        if not _CHUNK.match(n):
            self.whole.add(n)
        return n

    def __call__(self, node):
        if self.sized is None:
            self.sized = unanchored_leaves(node)
        return self.p(node)[0]

    def p(self, node):
        parts = self.parts
        if parts is not None and self._open:
            parts[self._open[-1]].append(node)
        hit = self.memo.get(node)
        if hit is None:
            name = self.names.get(node)
            if name is None and node is not self.defining:
                name = self.shared.get(node)
            if name is not None:
                hit = (self.name(self.spaced(name)), ATOM)
            elif parts is None:
                hit = getattr(self, "p_" + node.op)(node)
            else:
                parts[node] = []
                self._open.append(node)
                try:
                    hit = getattr(self, "p_" + node.op)(node)
                finally:
                    self._open.pop()
            self.memo[node] = hit
        return hit

    def wrap(self, node, prec):
        s, q = self.p(node)
        return self.paren(s) if q < prec else s

    # -- style hooks -------------------------------------------------------
    def paren(self, s):
        return f"({s})"

    def name(self, n):
        return n

    def minus(self):
        return "−"

    def juxt(self, left, right):
        if not left:
            return right
        if not right:
            return left
        a = _NAME_TAIL.search(left[-48:])  # only the tail matters: linear, not quadratic
        b = _NAME_HEAD.match(right[:48])
        if a and b:
            ta, tb = a.group(0), b.group(0)
            if tb[0].isdigit() or "_" in ta or "_" in tb:
                return f"{left} {right}"
            if ta.isdigit():
                if tb[0] in "eE":
                    return f"{left} {right}"
            elif (self._whole_at(ta, tb) or tb in registry.functions() or right[len(tb):len(tb) + 1] == "("
                  or _kept_whole(ta + tb)):
                return f"{left} {right}"
        if left[-1].isdigit() and right[0] in ".":
            return f"{left} {right}"
        word = re.search(r"[^\W\d_]\w*$", a.group(0)) if a else None  # 3kt: the name kt
        if right[0] == "(" and word and re.fullmatch(r"[a-z][a-z0-9]+", word.group(0)):
            return f"{left} {right}"  # ts1(…), 3kt(…) would read as a call of `ts1`, `kt`
        return left + right

    def _whole_at(self, ta, tb):
        """Does ta end, or tb begin, with a name that must stay whole? The
        names are looked up by ta's suffixes and tb's prefixes (at most 48
        characters each) once there are more of them than that."""
        whole = self.whole
        if len(whole) <= len(ta) + len(tb):
            return any(ta.endswith(w) or tb.startswith(w) for w in whole)
        return any(ta[i:] in whole for i in range(len(ta))) or \
            any(tb[:j] in whole for j in range(1, len(tb) + 1))

    def had_sym(self):
        return " ⊙ "

    def ediv_sym(self):
        return " ⊘ "

    def call(self, fname, arg):
        return f"{fname}({arg})"

    def number(self, v):
        return _fmt_number(v)

    def power_text(self, base, expo, elementwise):
        return f"{base}{'.^' if elementwise else '^'}{expo}"

    def transpose_text(self, s):
        return s + "ᵀ"

    def div_text(self, num, den):
        return f"{num}/{den}"

    # -- leaves ------------------------------------------------------------
    def p_var(self, n):
        return self.name(self.spaced(n.attr[0])), ATOM

    def p_dim(self, n):
        return self.name(self.spaced(n.attr)), ATOM

    def p_pi(self, n):
        return ("\\pi" if self.latex else "π"), ATOM

    def p_const(self, n):
        v = n.attr
        if v < 0:
            return self.minus() + self.number(-v), NEG
        s = self.number(v)
        return s, (PROD if "/" in s else ATOM)

    def size(self, n, d):
        """The subscript _d on a leaf whose size the text does not otherwise fix."""
        if n not in self.sized:
            return ""
        d = str(d)
        return f"_{{{d}}}" if self.latex else f"_{d}"

    def p_ones(self, n):
        if n in self.sized and isinstance(n.attr, Prod):
            return self.kron_of_sized(n, "ones")
        return ("\\mathbf{1}" if self.latex else "𝟙") + self.size(n, n.attr), ATOM

    def p_eye(self, n):
        if n in self.sized and isinstance(n.attr, Prod):
            return self.kron_of_sized(n, "eye")
        return self.eye_name + self.size(n, n.attr), ATOM

    def kron_of_sized(self, n, op):
        """𝟙 or I of a size m·n that the text must show: 𝟙_m ⊗ 𝟙_n (a subscript
        is one name or number)."""
        glyph = ("\\mathbf{1}" if self.latex else "𝟙") if op == "ones" else \
            ("I" if self.latex else self.eye_name)
        sub = "_{{{}}}" if self.latex else "_{}"
        return self.kron_sym().join(glyph + sub.format(f) for f in n.attr.factors), HAD

    def kron_sym(self):
        return " \\otimes " if self.latex else " ⊗ "

    def dim_text(self, d):
        """A size as the text reads it back: N, 3, m_A·m_B."""
        from .dims import factors
        return ("\\cdot " if self.latex else "·").join(
            self.name(str(f)) if self.latex and not isinstance(f, int) else str(f)
            for f in factors(d))

    def p_zero(self, n):
        if self.latex:
            return "\\mathbf{0}", ATOM
        # a zero array keeps its shape when read back: 0𝟙, 0𝟙ᵀ, 0𝟙𝟙ᵀ
        r, c = n.shape
        col = "𝟙" + self.size(n, r) if r != 1 else ""
        row = "𝟙" + self.size(n, c) + "ᵀ" if c != 1 else ""
        return "0" + col + row, PROD

    # -- sums and products -------------------------------------------------
    def p_add(self, n):
        from .ir import split_coef, scale
        out = []
        for i, t in enumerate(present.terms(n)):
            c, core = split_coef(t)
            if c < 0:
                body = self.number(-c) if core is None else self.wrap(scale(-c, core), HAD)
                out.append((self.minus() if i == 0 else f" {self.minus()} ") + body)
            else:
                body = self.wrap(t, NEG) if i == 0 else self.wrap(t, HAD)
                out.append(body if i == 0 else f" + {body}")
        return "".join(out), ADD

    def p_mul(self, n):
        coef = Fraction(1)
        scal_num, scal_den, mat_num, mat_den = [], [], [], []
        for f in present.factors(n):
            if f.op == "const":
                coef = f.attr
                continue
            neg_pow = f.op == "pow" and f.args[1].op == "const" and f.args[1].attr < 0
            if neg_pow:
                from .ir import power, num
                inv_f = power(f.args[0], num(-f.args[1].attr))
                (scal_den if f.is_scalar else mat_den).append(inv_f)
            else:
                (scal_num if f.is_scalar else mat_num).append(f)
        sign = ""
        if coef < 0:
            sign, coef = self.minus(), -coef
        if isinstance(coef, Fraction) and _decimal(coef) is None:
            cnum, cden = coef.numerator, coef.denominator
        else:
            cnum, cden = coef, 1  # an integer, a short decimal or a float
        # element-wise part
        if mat_num or mat_den:
            parts = [self.wrap(f, PROD) for f in mat_num] or ["1"]
            body = self.had_sym().join(parts)
            for f in mat_den:
                body += self.ediv_sym() + self.wrap(f, PROD)
            many = len(mat_num) + len(mat_den) > 1 or (not mat_num)
            mat = body
        else:
            mat, many = "", False
        prefix = ""
        if cnum != 1 or (not scal_num and not mat):
            prefix = self.number(cnum)
        for f in scal_num:
            prefix = self.juxt(prefix, self.wrap(f, APPLY if not prefix else PROD)
                               if f.op != "matmul" else self.paren(self.p(f)[0]))
        if prefix and mat:
            text = self.juxt(prefix, self.paren(mat) if many else mat)
        else:
            text = prefix or mat
        prec = HAD if (many and not prefix) else PROD
        dens = []
        if cden != 1:
            dens.append(str(cden))
        dens += [self.wrap(f, POSTFIX) for f in scal_den]
        if dens:
            den = dens[0] if len(dens) == 1 else self.paren(self.juxt_all(dens))
            if len(dens) > 1 and self.latex:
                den = self.juxt_all(dens)
            num_text = text if prec >= PROD else self.paren(text)
            text, prec = self.div_text(num_text, den), PROD
        if sign:
            return sign + text, NEG
        return text, prec

    def juxt_all(self, parts):
        out = ""
        for s in parts:
            out = self.juxt(out, s)
        return out

    def p_matmul(self, n):
        args = n.args
        out = ""
        i = 0
        while i < len(args):
            j = i
            while j + 1 < len(args) and args[j + 1] is args[i]:
                j += 1
            s = self.wrap(args[i], ATOM if j > i else APPLY)
            if j > i:
                s = self.power_text(s, str(j - i + 1), False)
            out = self.juxt(out, s)
            i = j + 1
        return out, PROD

    def p_pow(self, n):
        base, e = n.args
        elementwise = not base.is_scalar
        if e.op == "const":
            v = e.attr
            if v < 0:
                from .ir import power, num
                return self.div_text("1", self.wrap(power(base, num(-v)), POSTFIX)), PROD
            es = self.number(v)
            es = es if (isinstance(v, Fraction) and v.denominator == 1) or not isinstance(v, Fraction) else self.paren(es)
        else:
            es = self.wrap(e, ATOM)
        return self.power_text(self.wrap(base, ATOM), es, elementwise), POSTFIX

    # -- postfix -------------------------------------------------------------
    def p_T(self, n):
        x = n.args[0]
        op = registry.op(x.op)
        if op is not None and op.get(self.template_key + "_T"):  # X⁻ᵀ
            return self.template(x, self.template_key + "_T")
        return self.transpose_text(self.wrap(x, ATOM)), POSTFIX

    # -- functions -------------------------------------------------------------
    def p_fn(self, n):
        # parameters after the argument: leaky_relu(X, 0.1)
        return self.call(self.fn_name(n.attr), ", ".join(self(a) for a in n.args)), ATOM

    def fn_name(self, fname):
        return registry.text_name(fname)

    template_key = "text"

    def __getattr__(self, name):
        """p_<op> of a registered op: its `text` / `latex` entry in rules/ops.toml."""
        if name.startswith("p_") and registry.op(name[2:]) is not None:
            return lambda n: self.template(n, self.template_key)
        raise AttributeError(name)

    def template(self, n, key):
        """n printed by its op's template `key`: {X}, {A}, {B} its arguments
        by the entry's names, {rows}, {cols} its size. The entry's `prec`
        says how it binds: "atom" (a call, the default: arguments bare),
        "postfix" (X⁻¹: arguments as atoms), "hadamard" (A ⊗ B: arguments
        as products)."""
        op = registry.op(n.op)
        tpl = op.get(key)
        if tpl is None:
            raise DerivativeError(f"the op {n.op!r} has no {key!r} entry to print it with")
        prec = _PRECS[op.get("prec", "atom")]
        names = op.get("args", ["X"])
        out = tpl
        for i, a in enumerate(n.args):
            slot = "{" + (names[i] if i < len(names) else names[-1]) + "}"
            if slot not in out:  # an argument the template does not show
                continue
            text = self(a) if prec == ATOM else self.wrap(a, ATOM if prec == POSTFIX else PROD)
            out = out.replace(slot, text)
        if "{rows}" in out or "{cols}" in out:
            out = out.replace("{rows}", self.dim_text(n.rows)).replace("{cols}", self.dim_text(n.cols))
        return out, prec

    def p_let(self, n):
        return self.name(self.spaced(n.attr)), ATOM



class LatexPrinter(Printer):
    latex = True

    def __init__(self, names=None, eye_name="I"):
        super().__init__(names, "I")

    def paren(self, s):
        return f"\\left({s}\\right)"

    def name(self, n):
        m = re.fullmatch(r"([^\W\d_]+?)_?(\d+)", n)
        base, sub = (m.group(1), m.group(2)) if m else (n, None)
        if "_" in base and sub is None:
            base, sub = base.split("_", 1)
        if base in _LATEX_GREEK:
            base = "\\" + _LATEX_GREEK[base]
        elif base in _GREEK_WORDS or base.lower() in _GREEK_WORDS and base[0].isupper():
            base = "\\" + base
        elif len(base) > 1:
            base = f"\\mathrm{{{base}}}"
        if sub is not None and len(sub) > 1 and not sub.isdigit():
            sub = f"\\mathrm{{{sub}}}"
        return base if sub is None else f"{base}_{{{sub}}}"

    def minus(self):
        return "-"

    def juxt(self, left, right):
        if not left:
            return right
        if not right:
            return left
        if left[-1].isalpha() and (right[0].isalnum() or right[0] == "\\"):
            return f"{left} {right}"
        if left[-1].isdigit() and right[0].isdigit():
            return f"{left} \\cdot {right}"
        return f"{left} {right}" if right[0] == "\\" and left[-1].isalpha() else left + right

    def had_sym(self):
        return " \\odot "

    def ediv_sym(self):
        return " \\oslash "

    template_key = "latex"

    def p_fn(self, n):
        tpl = registry.elementwise()[n.attr]["latex"]
        for pname, p in zip(registry.params(n.attr), n.args[1:]):
            tpl = tpl.replace("{" + pname + "}", self(p))
        return tpl.replace("{x}", self(n.args[0])), ATOM

    def call(self, fname, arg):
        return f"{fname}\\left({arg}\\right)"

    def number(self, v):
        s = _fmt_number(v)
        if "/" in s:
            a, b = s.split("/")
            return f"\\frac{{{a}}}{{{b}}}"
        return s

    def power_text(self, base, expo, elementwise):
        return f"{base}^{{\\circ {expo}}}" if elementwise else f"{base}^{{{expo}}}"

    def transpose_text(self, s):
        return s + "^{\\top}"

    def div_text(self, num, den):
        return f"\\frac{{{num}}}{{{den}}}"

    def p_const(self, n):
        v = n.attr
        if v < 0:
            return "-" + self.number(-v), NEG
        return self.number(v), ATOM

    def p_eye(self, n):
        if n in self.sized and isinstance(n.attr, Prod):
            return self.kron_of_sized(n, "eye")
        return "I" + self.size(n, n.attr), ATOM


# Core ops whose result has the shape of their (first) argument: the
# argument's size is fixed wherever the result's is (T with its two
# dimensions swapped). A registered op keeps its argument's shape when it has
# one argument of its own shape (softmax, X⁻¹).
_SHAPE_KEEPING = {"fn", "pow", "let"}


def _keeps_shape(n):
    return n.op in _SHAPE_KEEPING or (
        len(n.args) == 1 and registry.op(n.op) is not None and n.shape == n.args[0].shape)


def _fixed_from_argument(n, a, det_a):
    """Which of a registered op's (rows, cols) its one argument's printed size
    fixes: a result dimension that is one of the argument's (diag(v) is n×n
    for the n-vector v; the diagonal of X; logsumexp's rows)."""
    if len(n.args) != 1:
        return (False, False)
    def known(d):
        return any(k and d == ad for ad, k in zip(a.shape, det_a))
    return (known(n.rows), known(n.cols))


def _topo(roots):
    """Nodes reachable from any of roots, every argument before its users: one
    traversal for all the results (each result's own would cost O(k²) for k)."""
    from .diff import topo_order
    return topo_order(*roots) if roots else []


def unanchored_leaves(root, cut=()):
    """The 𝟙, I and 0 leaves of root whose size nothing in the printed text fixes.

    Bottom-up, a node's (rows, cols) are determined when variables fix them
    (z𝟙ᵀ has its rows from z, not its cols). Top-down, the result's own shape
    is known to the reader (a gradient has its variable's shape); the terms
    of a sum or element-wise product share its shape; in a matrix product a
    factor's rows are fixed by its left neighbour's cols and its cols by its
    right neighbour's rows (the chain's ends by the product's own); T swaps;
    shape-keeping ops pass theirs on. Nothing passes through sum, tr, det, …:
    `sum(I_n)`, `sum(z𝟙_nᵀ)`. A part in `cut` is printed as a definition of its
    own (a `where` block): it fixes only what its own variables fix.
    """
    roots = root if isinstance(root, list) else [root]
    order = _topo(roots)
    det = {}
    for n in order:
        one = (n.rows == 1, n.cols == 1)
        a = [det[x] for x in n.args]
        if n.op == "var" or n.is_scalar:
            d = (True, True)
        elif n.op in ("add", "mul"):
            big = [det[x] for x in n.args if not x.is_scalar]
            d = (any(r for r, _ in big), any(c for _, c in big))
        elif n.op == "matmul":
            d = (a[0][0], a[-1][1])
        elif n.op == "T":
            d = (a[0][1], a[0][0])
        elif n.op in _SHAPE_KEEPING:
            d = a[0]
        elif registry.op(n.op) is not None:
            d = _fixed_from_argument(n, n.args[0], a[0]) if n.args else (False, False)
        else:
            d = (False, False)
        det[n] = (d[0] or one[0], d[1] or one[1])
    fixed = {r: (True, True) for r in roots}
    sized = set()
    for n in reversed(order):
        fr, fc = fixed[n] if n not in cut else (False, False)
        rows, cols = fr or det[n][0], fc or det[n][1]
        if (n.op == "ones" and not rows) or (n.op == "eye" and not (rows or cols)) \
                or (n.op == "zero" and not (rows and cols)):
            sized.add(n)
        kids = {}  # arg index -> (rows, cols) this occurrence fixes; sum, tr, …: nothing
        if n.op in ("add", "mul"):
            kids = {i: (rows, cols) for i in range(len(n.args))}
        elif n.op == "matmul":
            last = len(n.args) - 1
            kids = {i: (rows if i == 0 else det[n.args[i - 1]][1],
                        cols if i == last else det[n.args[i + 1]][0]) for i in range(last + 1)}
        elif n.op == "T":
            kids = {0: (cols, rows)}
        elif _keeps_shape(n):
            kids = {0: (rows, cols)}
        kids = [(x, *kids.get(i, (False, False))) for i, x in enumerate(n.args)]
        for x, r, c in kids:
            # a shared node prints the same everywhere: fixed only if fixed in
            # every place it occurs (Pᵀ𝟙𝟙ᵀ: the second 𝟙 is not)
            pr, pc = fixed.get(x, (True, True))
            fixed[x] = (pr and r, pc and c)
    return sized


def _tree_sizes(order):
    """Printed size of each node as a tree (shared parts counted each time)."""
    size = {}
    for n in order:
        size[n] = 1 + sum(size[a] for a in n.args)
    return size


# A result whose tree has more nodes than this names its large shared parts.
WHERE_TOTAL = 80
WHERE_PART = 4


class Namer:
    """Names for the parts of a `where` block, as the seeds write them: δ for a
    back-propagated signal (the adjoint of a forward node), with the layer's
    index when the node shows one (the digits of the intermediate Z2, or of
    the weight W2 it multiplies), h for a forward value shared by the
    results; otherwise δ1, δ2, … in order."""

    def __init__(self, adjoints=None, forward=(), reserved=()):
        self.of = {}
        for node, g in (adjoints or {}).items():
            self._adjoint(g, node)
            if g.op == "mul" and not g.is_scalar:  # (…)/N: the δ is the part without 1/N
                from .ir import mul
                rest = [f for f in g.args if not f.is_scalar]
                if rest and len(rest) < len(g.args):
                    self._adjoint(mul(*rest), node)
        self.forward = set(forward)
        self.taken = set(reserved)
        self.k = 0

    def _adjoint(self, g, node):
        """g is node's adjoint; of the nodes sharing one adjoint (z3 − t and the
        intermediate z3 in ½‖z3 − t‖²), the one that shows a layer names it."""
        prev = self.of.get(g)
        if prev is None or (_layer(prev) is None and _layer(node) is not None):
            self.of[g] = node

    def __call__(self, node):
        base, idx = "δ", None
        if node in self.of:
            idx = _layer(self.of[node])
        elif node in self.forward:
            base, idx = "h", _layer(node)
        if idx is not None and f"{base}{idx}" not in self.taken:
            return self._take(f"{base}{idx}")
        while True:
            self.k += 1
            if f"δ{self.k}" not in self.taken:
                return self._take(f"δ{self.k}")

    def _take(self, name):
        self.taken.add(name)
        return name


def _layer(node):
    """The layer index a node shows: Z2 (a named intermediate), or the digits
    of the nearest variable that ends in digits (X W2 + b2, σ(H1 W2))."""
    if node.op == "let":
        digits = re.search(r"\d+$", node.attr)
        return digits.group(0) if digits else None
    level = [node]
    for _ in range(3):
        found = [re.search(r"\d+$", n.attr[0]) for n in level if n.op == "var"]
        found = [m.group(0) for m in found if m]
        if found:
            return max(found, key=int)
        level = [a for n in level for a in n.args if n.op != "let"]
    return None


def shared_parts(roots, names=None, namer=None, lets=False):
    """{node: name} for the subexpressions a `where` block defines: used at
    least twice in the results' trees (a result used inside another counts)
    and large once their own named parts count as one, when the results
    together are too large to print inline. Short answers stay inline; so
    output grows linearly with the DAG.

    With `lets`, the program's intermediates that the results read (`names`:
    the definitions the text prints by name) are parts too, under their own
    names: the text's where block comes after the program's bindings, SymPy's
    pairs stand alone (and written out, an intermediate of layer l would
    hold all l − 1 before it: quadratic in depth)."""
    names = names or {}
    namer = namer or Namer()
    order = _topo(roots)
    size = _tree_sizes(order)
    if sum(size[r] for r in roots) <= WHERE_TOTAL:
        return {}
    uses = {}
    for n in order:
        for a in n.args:
            uses[a] = uses.get(a, 0) + 1
    for r in roots:
        uses[r] = uses.get(r, 0) + 1
    out = {}
    left = {}  # printed size once the named parts inside are one name each
    for n in order:
        left[n] = 1 + sum(1 if (a in out or a in names) else left[a] for a in n.args)
        if n in names:
            if lets:
                out[n] = names[n]
        elif uses.get(n, 0) >= 2 and left[n] >= WHERE_PART and n.op != "let":
            out[n] = namer(n)
    return out


def print_depth(roots, named):
    """How many IR levels printing roots recurses through: a node of `named`
    (a where-block part, a definition the program names) or an intermediate
    prints as its name, so the walk stops there (a part's own definition
    starts again below it). A deep network's where block prints shallow."""
    depth = {}
    for n in _topo(roots):
        depth[n] = 1 + max((1 if (a in named or a.op == "let") else depth[a] for a in n.args),
                           default=0)
    return max(depth.values(), default=0)


def print_results(printer, roots, namer=None, inline=False, shared=None):
    """([body of each root], [(name, definition)]): one `where` block shared by
    all the results, its definitions in dependency order (`shared`: the parts,
    when the caller has chosen them with shared_parts)."""
    if inline:
        shared = {}
    elif shared is None:
        shared = shared_parts(roots, printer.names, namer)
    printer.shared = shared
    if printer.sized is None:
        printer.sized = unanchored_leaves(list(roots), printer.shared)
    printer.parts = {} if printer.shared else None
    try:
        bodies = [printer(r) for r in roots]
        defs = []
        for n in _topo(roots):
            if n in printer.shared:
                printer.defining = n
                printer.memo.pop(n, None)
                defs.append((n, printer.name(printer.shared[n]), printer.p(n)[0]))
                printer.memo.pop(n, None)
                printer.defining = None
        used = _used_parts(roots, printer.parts, printer.shared) if defs else set()
    finally:
        printer.parts = None
    return bodies, [(k, v) for n, k, v in defs if n in used]


def _used_parts(roots, parts, shared):
    """The shared nodes whose names the bodies print, directly or through the
    definitions that they read: a shared part may end up printed inside a
    form that does not show it whole (1/h folded into a division, the core of
    (…)/N), and a definition nobody reads must not stand in the block.
    `parts` says which nodes each printed node's text contains (a shared
    node's: its definition's); one walk, linear in the printed DAG."""
    used, seen = set(), set()
    stack = list(roots)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in shared:
            used.add(n)
        stack.extend(parts.get(n, ()))
    return used


def print_where(printer, node, reserved=(), namer=None):
    """(body, [(name, definition)]) of one result."""
    bodies, defs = print_results(printer, [node], namer or Namer(reserved=reserved))
    return bodies[0], defs


def where_lines(defs, latex=False):
    """The `where` block under the results."""
    if not defs:
        return []
    if latex:
        rows = " \\\\ ".join(f"{k} &= {v}" for k, v in defs)
        return [f"\\text{{where}}\\quad \\begin{{aligned}} {rows} \\end{{aligned}}"]
    width = max(len(k) for k, _ in defs)
    return [f"  where {k.ljust(width)} = {v}" if i == 0 else f"        {k.ljust(width)} = {v}"
            for i, (k, v) in enumerate(defs)]


def to_text(node, names=None, eye_name="I", reserved=()):
    body, defs = print_where(Printer(names, eye_name), node, reserved)
    return "\n".join([body] + where_lines(defs))


def to_latex(node, names=None, reserved=()):
    body, defs = print_where(LatexPrinter(names), node, reserved)
    return " \\quad ".join([body] + where_lines(defs, latex=True))
