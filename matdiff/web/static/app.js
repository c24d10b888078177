// matdiff serve: the page. It posts the inputs to /api/derive as the user
// types (debounced), typesets the answer with KaTeX and keeps the inputs in
// the URL (?expr=…&wrt=W&wrt=b&var=Y:onehot), so a derivation can be shared.
"use strict";

(function () {
  var EXAMPLE = {expr: "-tr(Y^T log softmax(XW+b))", wrt: ["W", "b"], vars: ["Y:onehot"]};
  var DEBOUNCE_MS = 250;
  var FILES = {numpy: "numpy", jax: "jax", torch: "torch"};

  var $ = function (id) { return document.getElementById(id); };
  var exprEl = $("expr"), wrtEl = $("wrt"), varsEl = $("vars");
  var state = {seq: 0, timer: null, controller: null, last: null, backend: "numpy"};

  // ---- inputs <-> lists <-> URL

  function splitNames(text) {
    return text.split(/[\s,;]+/).filter(Boolean);
  }

  // declarations are separated by spaces, commas or semicolons outside brackets:
  // "Y:onehot X:matrix(N, D)" -> ["Y:onehot", "X:matrix(N, D)"]
  function splitDecls(text) {
    var out = [], cur = "", depth = 0;
    for (var i = 0; i < text.length; i++) {
      var c = text[i];
      if (c === "(" || c === "[") depth++;
      if ((c === ")" || c === "]") && depth > 0) depth--;
      if (depth === 0 && /[\s,;]/.test(c)) {
        if (cur) out.push(cur);
        cur = "";
      } else {
        cur += c;
      }
    }
    if (cur) out.push(cur);
    return out;
  }

  function current() {
    return {expr: exprEl.value, wrt: splitNames(wrtEl.value), vars: splitDecls(varsEl.value)};
  }

  function query(s) {
    var p = new URLSearchParams();
    p.append("expr", s.expr);
    s.wrt.forEach(function (w) { p.append("wrt", w); });
    s.vars.forEach(function (v) { p.append("var", v); });
    return "?" + p.toString();
  }

  function fromURL() {
    var p = new URLSearchParams(window.location.search);
    if (!p.has("expr")) return EXAMPLE;
    var wrt = [], vars = [];
    p.getAll("wrt").forEach(function (w) { wrt = wrt.concat(splitNames(w)); });
    p.getAll("var").forEach(function (v) { vars = vars.concat(splitDecls(v)); });
    return {expr: p.get("expr"), wrt: wrt, vars: vars};
  }

  function fill(s) {
    exprEl.value = s.expr;
    wrtEl.value = s.wrt.join(" ");
    varsEl.value = s.vars.join(" ");
  }

  // ---- rendering helpers

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function tex(latex, display) {
    var e = el(display ? "div" : "span", display ? "math" : "math-inline");
    if (window.katex) {
      window.katex.render(latex, e, {displayMode: !!display, throwOnError: false});
    } else {
      e.textContent = latex;  // KaTeX failed to load: show the source
    }
    return e;
  }

  function status(text, cls) {
    var s = $("status");
    s.textContent = text;
    s.className = "status" + (cls ? " " + cls : "");
  }

  // ---- errors, with the offending span marked

  function showError(err) {
    var box = $("error");
    box.querySelector(".error-message").textContent = err.message;
    var src = box.querySelector(".error-source");
    src.textContent = "";
    [exprEl, wrtEl, varsEl].forEach(function (e) { e.classList.remove("invalid"); });
    var field = {expr: exprEl, wrt: wrtEl, var: varsEl, vars: varsEl}[err.field];
    if (field) field.classList.add("invalid");
    if (err.source != null && err.span) {
      var chars = Array.from(err.source);  // spans count code points (𝟙 is one)
      var a = Math.min(err.span[0], chars.length), b = Math.min(err.span[1], chars.length);
      var prefix = {wrt: "--wrt ", var: "--var "}[err.field] || "";
      if (prefix) src.appendChild(el("span", "option", prefix));
      src.appendChild(document.createTextNode(chars.slice(0, a).join("")));
      var mark = el("mark", "error-span", chars.slice(a, b).join("") || " ");
      mark.title = err.message;
      src.appendChild(mark);
      src.appendChild(document.createTextNode(chars.slice(b).join("")));
      src.hidden = false;
    } else {
      src.hidden = true;
    }
    box.dataset.type = err.type;
    box.hidden = false;
    $("result").classList.add("stale");
    status(err.type === "timeout" || err.type === "too_large" || err.type === "busy"
      ? "limit: " + err.type : "error", "bad");
  }

  function clearError() {
    $("error").hidden = true;
    [exprEl, wrtEl, varsEl].forEach(function (e) { e.classList.remove("invalid"); });
  }

  // ---- the result

  function showVariables(r, wrt) {
    var box = $("variables");
    box.textContent = "";
    var names = Object.keys(r.variables || {});
    if (!names.length) return;
    box.appendChild(el("span", "hint", "variables: "));
    names.forEach(function (n) {
      var v = r.variables[n];
      var b = el("button", "chip" + (wrt.indexOf(n) >= 0 ? " on" : ""), n);
      b.type = "button";
      b.title = v.kind + ", " + (v.shape.length ? v.shape.join("×") : "scalar") +
        (wrt.indexOf(n) >= 0 ? " (click: do not differentiate)" : " (click: differentiate)");
      b.addEventListener("click", function () {
        var list = splitNames(wrtEl.value);
        var i = list.indexOf(n);
        if (i >= 0) list.splice(i, 1); else list.push(n);
        wrtEl.value = list.join(" ");
        schedule(0);
      });
      box.appendChild(b);
    });
  }

  var STEPS_TEX_MAX = 60000;  // characters of steps typeset; longer ones stay text

  function showSteps(steps) {
    var body = $("steps-body");
    body.textContent = "";
    if (!steps) { body.appendChild(el("p", "hint", "(not asked)")); return; }
    if (steps.error) { body.appendChild(el("p", "hint", steps.error)); return; }
    var useTex = steps.text.length <= STEPS_TEX_MAX;
    function math(latex, text) {
      var m = useTex && latex ? tex(latex, false) : el("code", "", text);
      m.title = text;
      return m;
    }
    var f = el("div", "step-function");
    f.appendChild(math(steps.function_latex, steps["function"]));
    body.appendChild(f);
    steps.sections.forEach(function (sec, k) {
      var d = el("details", "steps-wrt");
      d.open = k === 0;
      d.appendChild(el("summary", "", "with respect to " + sec.wrt));
      var ol = el("ol", "step-list");
      sec.steps.forEach(function (st) {
        var li = el("li", "step kind-" + st.kind);
        li.appendChild(math(st.latex, st.text));
        (st.rules || []).forEach(function (r) { li.appendChild(el("span", "rule", r)); });
        ol.appendChild(li);
      });
      d.appendChild(ol);
      body.appendChild(d);
    });
    var plain = el("details", "steps-text");
    plain.appendChild(el("summary", "", "as text (matdiff grad --steps)"));
    plain.appendChild(el("pre", "", steps.text));
    body.appendChild(plain);
  }

  function showCode() {
    var r = state.last;
    var code = (r && r.code) || {};
    document.querySelectorAll(".tabs [role=tab]").forEach(function (b) {
      var on = b.dataset.backend === state.backend;
      b.setAttribute("aria-selected", on ? "true" : "false");
      b.disabled = !(b.dataset.backend in code);
    });
    var text = code[state.backend];
    if (text === undefined) {
      var errs = (r && r.code_errors) || {};
      text = errs[state.backend] ? "# " + errs[state.backend] : "# no gradient asked";
    }
    $("code-body").firstChild.textContent = text;
  }

  function showResult(r, asked) {
    clearError();
    state.last = r;
    var res = $("result");
    res.classList.remove("stale");
    var grads = $("gradients");
    grads.textContent = "";
    var d = r.display;
    d.latex.forEach(function (line, i) {
      var g = el("div", "gradient");
      g.appendChild(tex(line, true));
      var row = el("div", "plain-row");
      row.appendChild(el("div", "plain", d.text[i]));
      var b = el("button", "copy-latex", "Copy LaTeX");
      b.type = "button";
      b.addEventListener("click", function () { copyText(line, b, "Copy LaTeX"); });
      row.appendChild(b);
      g.appendChild(row);
      grads.appendChild(g);
    });
    if (!d.latex.length) {
      grads.appendChild(el("p", "hint", "Choose the variables to differentiate with respect to " +
        "(click one above, or type it under \u201cwith respect to\u201d)."));
    }
    var where = $("where");
    where.textContent = "";
    if (d.where_latex.length) {
      where.appendChild(el("span", "where-label", "where"));
      var rows = d.where_latex.map(function (kv) { return kv[0] + " &= " + kv[1]; });
      where.appendChild(tex("\\begin{aligned} " + rows.join(" \\\\ ") + " \\end{aligned}", true));
      var plain = d.where_text.map(function (kv) { return kv[0] + " = " + kv[1]; });
      where.appendChild(el("div", "plain", plain.join("\n")));
    }
    showVariables(r, asked.wrt);
    showSteps(r.steps);
    showCode();
    res.hidden = false;
    status("derived in " + r.elapsed_ms + " ms", "ok");
  }

  // ---- requests

  function derive() {
    var s = current();
    var q = query(s);
    window.history.replaceState(null, "", q);
    $("share").href = q;
    if (!s.expr.trim()) {
      clearError();
      $("result").hidden = true;
      status("type an expression, e.g. " + EXAMPLE.expr);
      return;
    }
    var seq = ++state.seq;
    if (state.controller) state.controller.abort();
    state.controller = window.AbortController ? new AbortController() : null;
    status("deriving\u2026", "busy");
    fetch("/api/derive", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({expr: s.expr, wrt: s.wrt, vars: s.vars}),
      signal: state.controller ? state.controller.signal : undefined
    }).then(function (resp) {
      return resp.json();
    }).then(function (r) {
      if (seq !== state.seq) return;  // a newer request is on its way
      if (r.ok) showResult(r, s); else showError(r.error);
    }).catch(function (e) {
      if (seq !== state.seq || (e && e.name === "AbortError")) return;
      showError({type: "network", message: "no answer from the server (" + e + ")"});
    });
  }

  function schedule(ms) {
    clearTimeout(state.timer);
    state.timer = setTimeout(derive, ms === undefined ? DEBOUNCE_MS : ms);
  }

  // ---- copy and download

  function copyText(text, button, label) {
    function done(ok) {
      var old = label || "Copy";
      button.textContent = ok ? "Copied" : "Copy failed";
      setTimeout(function () { button.textContent = old; }, 1200);
    }
    function fallback() {
      var t = el("textarea");
      t.value = text;
      t.setAttribute("readonly", "");
      t.style.position = "fixed";
      t.style.opacity = "0";
      document.body.appendChild(t);
      t.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(t);
      done(ok);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    } else {
      fallback();
    }
  }

  function download(text, name) {
    var url = URL.createObjectURL(new Blob([text], {type: "text/x-python"}));
    var a = el("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    document.body.removeChild(a);
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  // ---- wiring

  document.querySelectorAll(".tabs [role=tab]").forEach(function (b) {
    b.addEventListener("click", function () { state.backend = b.dataset.backend; showCode(); });
  });
  $("copy").addEventListener("click", function () {
    copyText($("code-body").textContent, $("copy"));
  });
  $("download").addEventListener("click", function () {
    download($("code-body").textContent, "matdiff_" + FILES[state.backend] + ".py");
  });
  [exprEl, wrtEl, varsEl].forEach(function (e) {
    e.addEventListener("input", function () { schedule(); });
  });
  exprEl.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) schedule(0);
  });

  fill(fromURL());
  schedule(0);
})();
