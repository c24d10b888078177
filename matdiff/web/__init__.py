"""`matdiff serve`: the derivation page and its JSON endpoint.

derive.py   what a derivation request returns (also the CLI's --format json)
static/     the page (index.html, app.js, style.css) and the vendored KaTeX
The server itself is matdiff/serve.py.
"""
