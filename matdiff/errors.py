"""One error family for every bad input; messages carry the source position."""


_WINDOW = 100  # longest source excerpt shown under a message


class MatdiffError(Exception):
    """Base of every error matdiff raises for bad input."""

    def __init__(self, message, source=None, span=None, option=None):
        """source: the user's text the error is in; span: (start, end) in it.
        option: the command-line option the text came from ('--wrt', '--var'):
        the text is then shown as the option was typed, `--var X:N×D`."""
        self.message = message
        self.source = source
        self.span = span
        self.option = option
        super().__init__(self._render())

    @property
    def column(self):
        return None if self.span is None else self.span[0] + 1

    def _render(self):
        if self.source is None or self.span is None:
            return self.message
        start, end = self.span
        if self.option is not None:
            pad = " " * (len(self.option) + 1)
            width = max(1, min(end, len(self.source)) - start)
            return (f"{self.message}\n  {self.option} {self.source}\n"
                    f"  {pad}{' ' * start}{'^' * width}")
        # Show only the line that holds the error (programs span several lines).
        line_start = self.source.rfind("\n", 0, start) + 1
        line_end = self.source.find("\n", start)
        if line_end < 0:
            line_end = len(self.source)
        line = self.source[line_start:line_end]
        col = start - line_start
        width = max(1, min(end, line_end) - start)
        lineno = self.source.count("\n", 0, start) + 1
        where = f"column {col + 1}" if lineno == 1 else f"line {lineno}, column {col + 1}"
        if len(line) > _WINDOW:  # a long line: show the part around the error
            left = max(0, min(col - _WINDOW // 3, len(line) - _WINDOW))
            shown = line[left:left + _WINDOW]
            width = min(width, _WINDOW - (col - left))
            line = ("…" if left else "") + shown + ("…" if left + _WINDOW < len(line) else "")
            col = col - left + (1 if left else 0)
        return f"{self.message} (at {where})\n  {line}\n  {' ' * col}{'^' * width}"


class ParseError(MatdiffError):
    """Syntax errors: unexpected or unknown characters, unbalanced brackets."""


class NameError_(MatdiffError):
    """Unknown functions, bad declarations, variables not in the expression."""


class ShapeError(MatdiffError):
    """Shapes that do not fit together."""


class DerivativeError(MatdiffError):
    """A gradient that cannot be taken (non-scalar function, no derivative)."""
