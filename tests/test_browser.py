"""matdiff serve's page in headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright's Python package; `playwright install` is never run).

Skips only where /usr/bin/chromium is absent (.ci/run installs it). A
screenshot of each state goes to tests/artifacts/ (ignored by git);
MATDIFF_UPDATE_SCREENSHOT=1 also writes docs/serve.png, the README's.
"""

import os
import threading
from pathlib import Path

import pytest

from matdiff.serve import Limits, make_server, share_url

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
MISSION = {"expr": "-tr(Y^T log softmax(XW+b))", "wrt": ["W", "b"], "vars": ["Y:onehot"]}

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is absent (apt-get install chromium; "
                                       f".ci/run installs it)")


def artifact(name):
    ARTIFACTS.mkdir(exist_ok=True)
    ignore = ARTIFACTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return str(ARTIFACTS / name)


@pytest.fixture(scope="module")
def server():
    s = make_server(port=0, limits=Limits(timeout=20, workers=2), quiet=True)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield s
    s.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1000, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(20_000)
    pg.problems = []  # requests that leave this server, failed requests, script errors
    pg.on("request", lambda r: r.url.startswith(server.url) or r.url.startswith("blob:")
          or pg.problems.append("external request " + r.url))
    # (a request the page itself aborts, superseded while the user types, is no problem;
    # neither is the console's note of a 422, the answer to a bad expression)
    pg.on("requestfailed", lambda r: "ERR_ABORTED" in (r.failure or "")
          or pg.problems.append(f"failed {r.url}: {r.failure}"))
    pg.on("pageerror", lambda e: pg.problems.append(f"page error {e}"))
    pg.on("console", lambda m: m.type != "error" or "status of 422" in m.text
          or pg.problems.append("console " + m.text))
    yield pg
    ctx.close()


def expect(locator):
    from playwright.sync_api import expect
    return expect(locator)


def gradient_with_softmax(pg):
    g = pg.locator("#gradients .gradient .katex").filter(has_text="softmax")
    g.first.wait_for()
    return g


def type_inputs(pg, expr, wrt, vars):
    for sel, text in (("#expr", expr), ("#wrt", wrt), ("#vars", vars)):
        pg.fill(sel, "")
        pg.locator(sel).press_sequentially(text)


def test_typing_the_mission_example(page, server):
    page.goto(share_url(server.url, "x'x", ["x"]))
    page.locator("#gradients .katex").first.wait_for()
    assert "2x" in page.inner_text("#gradients .plain")
    type_inputs(page, MISSION["expr"], "W b", "Y:onehot")
    g = gradient_with_softmax(page)
    expect(g).to_have_count(2)  # ∂L/∂W and ∂L/∂b, typeset
    plain = page.locator("#gradients .plain").all_inner_texts()
    assert plain == ["∂L/∂W = Xᵀ(softmax(XW + 𝟙bᵀ) − Y)", "∂L/∂b = (softmax(XW + 𝟙bᵀ) − Y)ᵀ𝟙"]
    # the URL now reproduces the state
    url = page.url
    assert "wrt=W&wrt=b&var=Y%3Aonehot" in url and "expr=-tr%28Y%5ET+log+softmax" in url
    page.click("#steps summary")
    page.locator(".step .rule").first.wait_for()
    assert "log-softmax's differential" in page.locator(".step .rule").all_inner_texts()
    assert page.locator(".steps-wrt .step .katex").count() > 10  # the steps, typeset
    page.screenshot(path=artifact("serve_typed.png"), full_page=True)
    assert page.problems == []


def test_shared_url_reproduces_the_derivation(page, server):
    page.goto(share_url(server.url, **MISSION))
    g = gradient_with_softmax(page)
    assert g.count() == 2
    assert page.input_value("#expr") == MISSION["expr"]
    assert page.input_value("#wrt") == "W b" and page.input_value("#vars") == "Y:onehot"
    assert "def value_and_gradient" in page.inner_text("#code-body")
    page.click(".tabs [data-backend=torch]")
    assert "import torch" in page.inner_text("#code-body")
    page.click(".tabs [data-backend=jax]")
    assert "import jax" in page.inner_text("#code-body")
    with page.expect_download() as d:
        page.click("#download")
    assert d.value.suggested_filename == "matdiff_jax.py"
    assert "import jax" in Path(d.value.path()).read_text()
    # KaTeX's own fonts, from this server
    assert page.evaluate("document.fonts.load('16px KaTeX_Main').then(f => f.length)") > 0
    page.click(".tabs [data-backend=numpy]")
    page.screenshot(path=artifact("serve_shared.png"), full_page=False)
    if os.environ.get("MATDIFF_UPDATE_SCREENSHOT"):
        page.screenshot(path=str(ROOT / "docs" / "serve.png"), full_page=False)
    # copy buttons: a gradient's LaTeX, the module shown
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.locator(".copy-latex").first.click()
    expect(page.locator(".copy-latex").first).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()").startswith(
        "\\frac{\\partial L}{\\partial W} = X^{\\top}")
    page.click("#copy")
    expect(page.locator("#copy")).to_have_text("Copied")
    assert "def value_and_gradient" in page.evaluate("navigator.clipboard.readText()")
    assert page.problems == []


def test_bad_expression_is_highlighted(page, server):
    page.goto(share_url(server.url, **MISSION))
    gradient_with_softmax(page)
    type_inputs(page, "-tr(Y^T log sofmax(XW+b))", "W b", "Y:onehot")
    mark = page.locator("#error:not([hidden]) mark.error-span")
    mark.wait_for()
    assert mark.inner_text() == "sofmax"
    assert "unknown function 'sofmax'" in page.inner_text("#error .error-message")
    assert "invalid" in page.get_attribute("#expr", "class")
    page.screenshot(path=artifact("serve_error.png"))
    # an error in a --wrt name marks that name
    type_inputs(page, MISSION["expr"], "W Q", "Y:onehot")
    expect(page.locator("#error mark.error-span")).to_have_text("Q")
    assert "--wrt" in page.inner_text("#error .error-source")
    assert "invalid" in page.get_attribute("#wrt", "class")
    # and fixing it brings the gradients back
    page.fill("#wrt", "W")
    page.wait_for_selector("#error", state="hidden")
    expect(page.locator("#gradients .gradient")).to_have_count(1)
    assert gradient_with_softmax(page).count() == 1
    assert page.problems == []
