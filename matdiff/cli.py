"""The matdiff command line.

Bad input prints one MatdiffError message and exits 2, never a traceback.
The text, LaTeX and JSON paths import neither SymPy nor NumPy.
"""

import sys

import click

from . import __version__
from .errors import MatdiffError

FORMATS = ["text", "latex", "numpy", "jax", "torch", "sympy", "json"]
HIGHER_FORMATS = ["text", "latex", "numpy", "jax", "torch", "json"]  # hessian, jacobian: no SymPy form
CODE_FORMATS = ("numpy", "jax", "torch")  # a module; writing one imports no array library

EXAMPLES = """
\b
Examples:
  matdiff grad "-tr(Y^T log softmax(XW+b))" --wrt W --wrt b --var Y:onehot
  matdiff grad "x^T A x" --wrt x --var A:symmetric
  matdiff grad "||X W - Y||_F^2" --wrt W --format latex
  matdiff grad "sum(log(1 + exp(-y .* (X w))))" --wrt w --format numpy > kernel.py
  matdiff grad "-tr(Y^T log softmax(XW+b))" --wrt W --var Y:onehot --format jax
  matdiff check "logdet(X) - tr(A X)" --wrt X
  matdiff hessian "logsumexp(x)" --wrt x
  matdiff jacobian "softmax(W x)" --wrt x
  echo "Z = XW + b; L = -tr(Y^T log softmax(Z))" | matdiff grad - --wrt W --var Y:onehot
"""


class ExprCommand(click.Command):
    """EXPR may begin with '-' (the mission example does): such a first
    positional argument that is not an option is taken as the expression."""

    def parse_args(self, ctx, args):
        takes_value = {}
        for p in self.get_params(ctx):
            if isinstance(p, click.Option):
                for o in p.opts + p.secondary_opts:
                    takes_value[o] = not p.is_flag and not p.count
        out, i, seen_positional = [], 0, False
        while i < len(args):
            a = args[i]
            if a == "--":
                out.extend(args[i:])
                break
            name = a.split("=", 1)[0]
            if name in takes_value:
                out.append(a)
                if takes_value[name] and "=" not in a and i + 1 < len(args):
                    out.append(args[i + 1])
                    i += 1
            elif a.startswith("-") and a != "-" and not seen_positional:
                out.extend(["--expression", a])
                seen_positional = True
            else:
                if not a.startswith("-") or a == "-":
                    seen_positional = True
                out.append(a)
            i += 1
        return super().parse_args(ctx, out)


def _read_expr(expr, expression, file):
    given = [x for x in (expr, expression) if x is not None]
    if len(given) + (file is not None) > 1:
        raise click.UsageError("give the expression once: EXPR, - (stdin) or --file PATH")
    if expression is not None:
        return expression
    if file is not None:
        with open(file, encoding="utf-8") as f:
            return f.read()
    if expr is None:
        raise click.UsageError("missing EXPR (or - for stdin, or --file PATH)")
    if expr == "-":
        return sys.stdin.read()
    return expr


def _common(formats=FORMATS, steps=True):
    """The options every command parses. Those that do not apply to a command
    (`check` has no output format, only `grad` has --steps) are hidden from
    its --help and refused by _refuse, with a message that says so, rather
    than silently ignored."""
    def add(f):
        f = click.option("--steps", is_flag=True, hidden=not steps,
                         help="Print the derivation step by step (text).")(f)
        f = click.option("--format", "fmt", type=click.Choice(formats or FORMATS),
                         default="text", show_default=bool(formats), hidden=not formats,
                         help="Output format.")(f)
        f = click.option("--file", type=click.Path(exists=True, dir_okay=False),
                         help="Read the expression or program from a file.")(f)
        f = click.option("--var", "vars_", multiple=True, metavar="NAME:KIND[(DIMS)]",
                         help="Declare a variable: X:matrix(N,D) or X:N×D, Y:onehot, "
                              "S:symmetric(n), t:scalar.")(f)
        f = click.option("--wrt", multiple=True, required=True, metavar="NAME",
                         help="Differentiate with respect to NAME (repeatable).")(f)
        f = click.option("--expression", hidden=True)(f)
        f = click.argument("expr", required=False)(f)
        return f
    return add


def _given(ctx, name):
    from click.core import ParameterSource
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE,
                                              ParameterSource.ENVIRONMENT)


def _refuse(ctx, fmt, steps, wrt):
    """A flag that does not apply to this command is a usage error."""
    cmd = ctx.info_name
    if cmd == "check":
        if _given(ctx, "fmt"):
            raise click.UsageError("--format does not apply to check (it prints the error of "
                                   "each gradient; use grad --format for the formulas)")
        if steps:
            raise click.UsageError("--steps does not apply to check (use grad --steps)")
    elif cmd in ("hessian", "jacobian"):
        if steps:
            raise click.UsageError(f"--steps does not apply to {cmd} (grad --steps prints the "
                                   f"derivation of the gradient)")
        if len(dict.fromkeys(wrt)) != 1:
            raise click.UsageError(f"{cmd} takes one --wrt variable, got "
                                   f"{len(dict.fromkeys(wrt))}: {', '.join(dict.fromkeys(wrt))}")
    elif steps and fmt not in ("text", "latex"):
        raise click.UsageError(f"--steps prints the derivation as text or LaTeX; it does not "
                               f"combine with --format {fmt}")


class Group(click.Group):
    """Bad input exits 2 with its message however the group is invoked."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MatdiffError as e:
            click.echo(f"matdiff: error: {e}", err=True)
            ctx.exit(2)


@click.group(cls=Group, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="matdiff")
def cli():
    """matdiff: closed-form gradients of scalar functions of matrices,
    derived with the matrix-differential method."""


def _function_name(problem):
    from .api import function_name
    return function_name(problem)


@cli.command(cls=ExprCommand, epilog=EXAMPLES)
@_common()
@click.pass_context
@click.option("--inline", is_flag=True,
              help="Print each gradient written out in full, without a where block.")
@click.option("--rewrites", is_flag=True,
              help="Also print (to stderr) the named rewrites that fired, with counts.")
def grad(ctx, expr, expression, wrt, vars_, file, fmt, steps, inline, rewrites):
    """Gradient of the scalar EXPR with respect to each --wrt variable."""
    _refuse(ctx, fmt, steps, wrt)
    if inline and (steps or fmt not in ("text", "latex")):
        raise click.UsageError("--inline applies to the text and latex formats")
    src = _read_expr(expr, expression, file)
    from .api import Result
    if rewrites:
        from . import ir
        with ir.trace_rewrites() as fired:
            result = Result(src, list(wrt), list(vars_))
        counts = {}
        for name in fired:
            counts[name] = counts.get(name, 0) + 1
        for name, k in counts.items():
            click.echo(f"rewrite: {name}" + (f"  ×{k}" if k > 1 else ""), err=True)
    else:
        result = Result(src, list(wrt), list(vars_))
    fname = _function_name(result.problem)
    if steps:
        from .steps import derivation
        click.echo(derivation(result, fname, latex=fmt == "latex"))
        return
    if fmt in CODE_FORMATS:
        click.echo(result.source(fmt), nl=False)
        return
    grads = [result.gradient(w) for w in result.wrt]
    if fmt in ("text", "latex"):
        # one `where` block for the parts the gradients share (--inline: none)
        from .printing import LatexPrinter, where_lines
        latex = fmt == "latex"
        bodies, defs = result.printout(latex=latex, inline=inline)
        lp = LatexPrinter()
        for g, body in zip(grads, bodies):
            if latex:
                click.echo(f"\\frac{{\\partial {lp.name(fname)}}}{{\\partial {lp.name(g.name)}}} = {body}")
            else:
                click.echo(f"∂{fname}/∂{g.name} = {body}")
        for line in where_lines(defs, latex=latex):
            click.echo(line)
    elif fmt == "sympy":
        for g in grads:
            click.echo(f"∂{fname}/∂{g.name} = {g.sympy}")
    elif fmt == "json":
        import json
        from .web.derive import grad_json  # what `matdiff serve`'s /api/derive returns too
        click.echo(json.dumps(grad_json(src, result, grads), ensure_ascii=False, indent=2))


@cli.command(cls=ExprCommand, epilog=EXAMPLES)
@_common(formats=(), steps=False)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed for the data.")
@click.option("--tol", type=float, default=1e-5, show_default=True,
              help="Largest relative error accepted.")
@click.pass_context
def check(ctx, expr, expression, wrt, vars_, file, fmt, steps, seed, tol):
    """Compare the generated gradient with central differences at random data."""
    _refuse(ctx, fmt, steps, wrt)
    src = _read_expr(expr, expression, file)
    from .check import check_gradient
    ok, lines = check_gradient(src, list(wrt), list(vars_), seed=seed, tol=tol)
    for line in lines:
        click.echo(line)
    if not ok:
        sys.exit(1)


def _higher(ctx, kind, expr, expression, wrt, vars_, file, fmt, steps):
    _refuse(ctx, fmt, steps, wrt)
    src = _read_expr(expr, expression, file)
    from .higher import Higher
    h = Higher(src, list(wrt), list(vars_), kind)
    fname = _function_name(h.problem)
    if fmt in CODE_FORMATS:
        click.echo(h.source(fmt), nl=False)
    elif fmt == "json":
        import json
        click.echo(json.dumps({"expression": src, "wrt": h.wrt, "kind": kind,
                               "shape": [str(d) for d in h.shape],
                               "text": h.lines(fname), "latex": h.lines(fname, latex=True)},
                              ensure_ascii=False, indent=2))
    else:
        for line in h.lines(fname, latex=(fmt == "latex")):
            click.echo(line)


@cli.command(cls=ExprCommand, epilog=EXAMPLES)
@_common(formats=HIGHER_FORMATS, steps=False)
@click.pass_context
def hessian(ctx, expr, expression, wrt, vars_, file, fmt, steps):
    """Hessian of the scalar EXPR: the n×n matrix for a vector, the second
    differential (and its Kronecker form on vec(X)) for a matrix."""
    _higher(ctx, "hessian", expr, expression, wrt, vars_, file, fmt, steps)


@cli.command(cls=ExprCommand, epilog=EXAMPLES)
@_common(formats=HIGHER_FORMATS, steps=False)
@click.pass_context
def jacobian(ctx, expr, expression, wrt, vars_, file, fmt, steps):
    """Jacobian ∂f/∂x (m×n) of the vector EXPR with respect to the vector x."""
    _higher(ctx, "jacobian", expr, expression, wrt, vars_, file, fmt, steps)


@cli.command(epilog="""
\b
Examples:
  matdiff serve --open
  matdiff serve --port 9000 --timeout 20
""")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; the default answers this machine only.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--timeout", type=click.FloatRange(0.1, 3600), default=10.0, show_default=True,
              help="Seconds a derivation may take.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Derivation processes.")
def serve(port, host, open_browser, timeout, workers):
    """The derivation in a browser: a local page (KaTeX, steps, code) and
    POST /api/derive, which returns what grad --format json prints. Ctrl-C stops it."""
    from .serve import main as serve_main
    serve_main(host=host, port=port, open_browser=open_browser, timeout=timeout,
               workers=workers)


def _other_command(e):
    """'--seed applies to check only' rather than click's guess at a near name."""
    if not isinstance(e, click.NoSuchOption) or e.ctx is None:
        return None
    owners = [name for name, cmd in cli.commands.items()
              if any(e.option_name in p.opts for p in cmd.params if not getattr(p, "hidden", False))]
    if not owners:
        return None
    return f"{e.option_name} does not apply to {e.ctx.info_name} (only to {', '.join(owners)})"


def main(argv=None):
    # Every stage recurses once per nesting level: run in a deep worker.
    from .deep import run_deep
    args = sys.argv[1:] if argv is None else list(argv)
    # A server's loop runs in the main thread, where Ctrl-C arrives and stops it.
    direct = bool(args) and args[0] == "serve"
    try:
        if direct:
            rc = cli.main(args=args, prog_name="matdiff", standalone_mode=False)
        else:
            rc = run_deep(cli.main, args=argv, prog_name="matdiff", standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)  # ctx.exit(n) comes back as the return value here
    except MatdiffError as e:
        click.echo(f"matdiff: error: {e}", err=True)
        sys.exit(2)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("matdiff: aborted", err=True)
        sys.exit(2)
    except click.UsageError as e:
        # One line: what is wrong, and where to read about it.
        where = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        click.echo(f"matdiff: error: {_other_command(e) or e.format_message()}{where}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        click.echo(f"matdiff: error: {e.format_message()}", err=True)
        sys.exit(2)
    except (RecursionError, MemoryError):
        click.echo("matdiff: error: the expression is too large or too deeply nested", err=True)
        sys.exit(2)
    except OSError as e:
        click.echo(f"matdiff: error: {e.strerror or e}: {getattr(e, 'filename', '')}", err=True)
        sys.exit(2)
    except Exception as e:  # a bug of ours: still one line, never a traceback
        click.echo(f"matdiff: error: internal error ({type(e).__name__}: {e}); please report it",
                   err=True)
        sys.exit(2)
    sys.exit(0)


if __name__ == "__main__":
    main()
