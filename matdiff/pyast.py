"""Small constructors for Python `ast` trees, the form generated code is built in.

Code is never pasted together as text: every expression is a tree and
`ast.unparse` prints it, parenthesising by Python's own precedence, so
inlining any subexpression anywhere is safe. Each constructed node carries
`_h`, the height of its tree, so an emitter can bind a tall expression to a
name before Python's parser limits (about 200 nested parentheses) or the
unparser's recursion are reached.
"""

import ast

_BINOPS = {"+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div, "@": ast.MatMult,
           "**": ast.Pow, "//": ast.FloorDiv}


def height(node):
    return getattr(node, "_h", 1)


def _mark(node, *children):
    node._h = 1 + max((height(c) for c in children), default=0)
    return node


def name(ident):
    return _mark(ast.Name(id=ident, ctx=ast.Load()))


def store(ident):
    return ast.Name(id=ident, ctx=ast.Store())


def const(value):
    """A number; negative ones as a unary minus, so that `(-1.0) ** 2` stays grouped."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return neg(const(-value))
    return _mark(ast.Constant(value=value))


def attr(obj, *path):
    node = name(obj) if isinstance(obj, str) else obj
    for p in path:
        node = _mark(ast.Attribute(value=node, attr=p, ctx=ast.Load()), node)
    return node


def call(func, *args, **kwargs):
    """func: an expression, or a dotted path such as '_np.linalg.solve'."""
    if isinstance(func, str):
        head, *rest = func.split(".")
        func = attr(head, *rest)
    kws = [ast.keyword(arg=k, value=v) for k, v in kwargs.items()]
    return _mark(ast.Call(func=func, args=list(args), keywords=kws), func, *args,
                 *kwargs.values())


def binop(left, op, right):
    return _mark(ast.BinOp(left=left, op=_BINOPS[op](), right=right), left, right)


def neg(x):
    return _mark(ast.UnaryOp(op=ast.USub(), operand=x), x)


def subscript(x, index):
    return _mark(ast.Subscript(value=x, slice=index, ctx=ast.Load()), x, index)


def tuple_(*items):
    return _mark(ast.Tuple(elts=list(items), ctx=ast.Load()), *items)


def dict_(items):
    """{'k': v, ...} with string keys."""
    keys = [const(k) for k in items]
    return _mark(ast.Dict(keys=keys, values=list(items.values())), *keys, *items.values())


def full_slice():
    return _mark(ast.Slice())


def none():
    return const(None)


def assign(target, value):
    return ast.Assign(targets=[store(target)], value=value, lineno=0)


def ret(value):
    return ast.Return(value=value)


def function(fname, params, body, doc=None, positional=()):
    """def fname(q1, *, p1, p2): body  (params keyword-only, `positional` before them)."""
    args = [ast.arg(arg=p) for p in params]
    arguments = ast.arguments(posonlyargs=[], args=[ast.arg(arg=q) for q in positional],
                              kwonlyargs=args, kw_defaults=[None] * len(args), defaults=[])
    stmts = ([ast.Expr(value=ast.Constant(value=doc))] if doc else []) + list(body)
    return ast.FunctionDef(name=fname, args=arguments, body=stmts or [ast.Pass()],
                           decorator_list=[], returns=None)


def substitute(template, slots):
    """A copy of the (small) expression tree `template` with each Name in
    slots replaced by the given tree; the slot trees are shared, not copied."""
    if isinstance(template, ast.Name) and template.id in slots:
        return slots[template.id]
    if not isinstance(template, ast.AST):
        return template
    fields = {}
    for field, value in ast.iter_fields(template):
        if isinstance(value, list):
            fields[field] = [substitute(v, slots) for v in value]
        else:
            fields[field] = substitute(value, slots)
    out = type(template)(**fields)
    return _mark(out, *[c for c in ast.iter_child_nodes(out) if isinstance(c, ast.expr)])


def parse_expr(text):
    """An expression tree from fixed (never user-written) template text."""
    return substitute(ast.parse(text, mode="eval").body, {})


def unparse_module(stmts):
    module = ast.Module(body=list(stmts), type_ignores=[])
    ast.fix_missing_locations(module)
    return ast.unparse(module)
