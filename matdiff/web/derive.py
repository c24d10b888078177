"""What a derivation returns, as JSON-ready dicts.

`grad_json` is the output of `matdiff grad --format json`: the CLI prints it,
and `POST /api/derive` returns it with the page's extras (`derive_main`):
the gradients as the text / LaTeX printouts show them (one shared `where`
block), the generated modules, and the `--steps` derivation (`derive_steps`,
a separate phase because its text grows fastest with the input).

Nothing here imports NumPy or SymPy.
"""

from ..errors import MatdiffError

BACKENDS = ("numpy", "jax", "torch")
_PUBLIC_NAMES = {"NameError_": "UnknownNameError"}  # as exported by `matdiff`
_STEPS_HEADER = "— with respect to "


def _dim(d):
    return d if isinstance(d, int) else str(d)


def grad_json(src, result, grads=None):
    """`matdiff grad SRC --format json`: {"expression", "variables", "gradients"}."""
    if grads is None:
        grads = [result.gradient(w) for w in result.wrt]
    return {
        "expression": src,
        "variables": result.variables_json(),
        "gradients": {g.name: {"text": g.text, "latex": g.latex,
                               "shape": [_dim(d) for d in g.shape]}
                      for g in grads},
    }


def function_name(result):
    return result.function_name()


def derive_main(src, wrt, vars, backends=BACKENDS):
    """(result, dict): grad_json plus "function", "display" (the printouts of
    `--format text` / `latex`: each gradient's line and one where block) and
    "code" (the module of each backend; "code_errors" for a backend that fails)."""
    from ..api import Result
    from ..printing import LatexPrinter
    result = Result(src, list(wrt), list(vars))
    grads = [result.gradient(w) for w in result.wrt]
    out = grad_json(src, result, grads)
    fname = function_name(result)
    lp = LatexPrinter()
    bodies_t, defs_t = result.printout(latex=False)
    bodies_l, defs_l = result.printout(latex=True)
    out["function"] = fname
    out["display"] = {
        "text": [f"∂{fname}/∂{g.name} = {b}" for g, b in zip(grads, bodies_t)],
        "latex": [f"\\frac{{\\partial {lp.name(fname)}}}{{\\partial {lp.name(g.name)}}} = {b}"
                  for g, b in zip(grads, bodies_l)],
        "where_text": [[k, v] for k, v in defs_t],
        "where_latex": [[k, v] for k, v in defs_l],
    }
    code, errors = {}, {}
    if grads:
        for b in backends:
            try:
                code[b] = result.source(b)
            except MatdiffError as e:
                errors[b] = str(e)
    out["code"] = code
    if errors:
        out["code_errors"] = errors
    return result, out


def derive_steps(result):
    """The `--steps` derivation (Result.steps()) as {"text": what --steps prints,
    "function", "function_latex", "sections": [{"wrt", "steps": [{"kind", "text",
    "latex", "rules", "rule"}]}]}. kind: "form" (dL = …), "rule" (an expansion
    d(Z) = …), "rewrite" (a named rewrite, before = after), "adjoint" (∂L/∂Z
    of an intermediate), "result" (∂L/∂X = G);
    rules: the identities the step cites, rule: them joined by "; " (or null)."""
    d = result.steps(function_name(result))
    out = {"text": d.text(), "function": "", "function_latex": "", "sections": []}
    section, wrt = None, iter(result.wrt)
    for s in d.steps:
        if s.kind == "function":
            out["function"], out["function_latex"] = s.text, s.latex
        elif s.kind == "header":
            name = next(wrt, None)
            if name is None:
                name = s.text[len(_STEPS_HEADER):].rstrip(":")
            section = {"wrt": name, "steps": []}
            out["sections"].append(section)
        elif section is not None:
            section["steps"].append({"kind": s.kind, "text": s.text, "latex": s.latex,
                                     "rules": list(s.rules),
                                     "rule": "; ".join(s.rules) or None})
    return out


def error_json(e, wrt=(), vars=()):
    """A MatdiffError as {"type", "message", "rendered" (the CLI's text, with
    the caret), "field" ("expr", "wrt" or "var"), "index" (which --wrt / --var),
    "source" (the text the error is in), "span" ([start, end) in code points),
    "line", "column" (1-based)}."""
    typ = type(e).__name__
    out = {"type": _PUBLIC_NAMES.get(typ, typ), "message": e.message, "rendered": str(e),
           "field": "expr", "index": None, "source": e.source, "span": None,
           "line": None, "column": None}
    if e.option == "--wrt":
        out["field"] = "wrt"
        out["index"] = next((i for i, w in enumerate(wrt) if w == e.source), None)
    elif e.option == "--var":
        out["field"] = "var"
        out["index"] = next((i for i, v in enumerate(vars) if v == e.source), None)
    elif e.option:
        out["field"] = e.option.lstrip("-")
    if e.span is not None and e.source is not None:
        start, end = e.span
        out["span"] = [start, max(end, start + 1)]
        out["line"] = e.source.count("\n", 0, start) + 1
        out["column"] = start - (e.source.rfind("\n", 0, start) + 1) + 1
    return out
