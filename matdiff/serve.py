"""`matdiff serve`: the derivation page and `POST /api/derive`, on the
standard library's ThreadingHTTPServer.

Every request is bounded. The handler thread checks the request itself
(body and expression length, the number and length of names, JSON); the
derivation runs in a worker process from a small pool, which the handler
kills (and replaces) when the time limit passes; the worker's address space
is capped, and it refuses a response longer than the output limit. The
`--steps` derivation is a second phase with the same deadline: when it does
not fit, the gradients come back without it. User text is only ever parsed
by matdiff, never evaluated.

    server = make_server(port=0, limits=Limits(timeout=2))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ... server.url ...
    server.close()
"""

import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

STATIC = Path(__file__).parent / "web" / "static"
FIELDS = ("expr", "wrt", "vars", "steps", "code")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".woff2": "font/woff2", ".png": "image/png",
          "": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8"}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "font-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'")


@dataclass
class Limits:
    """The bounds on each request (all configurable; `matdiff serve --timeout`)."""
    max_body: int = 64 * 1024        # bytes of the request body
    max_expr: int = 20_000           # characters of the expression or program
    max_names: int = 64              # --wrt names plus --var declarations
    max_name: int = 200              # characters of one --wrt name or --var declaration
    timeout: float = 10.0            # seconds of derivation (gradients, code and steps)
    max_output: int = 2 * 1024 * 1024  # bytes of the response
    max_memory: int = 1024 ** 3      # bytes a worker may allocate beyond its start-up size
    workers: int = 2                 # derivation processes
    queue_timeout: float = 30.0      # seconds a request waits for a free worker


class RequestError(Exception):
    def __init__(self, status, type, message, field=None):
        super().__init__(message)
        self.status, self.type, self.message, self.field = status, type, message, field

    def json(self):
        return {"ok": False, "error": {"type": self.type, "message": self.message,
                                       "field": self.field}}


def _names(obj, key, limits):
    """A list of strings from a JSON list (or one string; for vars a {name: kind} object)."""
    if obj is None:
        return []
    if isinstance(obj, str):
        obj = [obj]
    elif key == "vars" and isinstance(obj, dict):
        if not all(isinstance(v, str) for v in obj.values()):
            raise RequestError(400, "bad_request", "each kind in 'vars' must be a string", key)
        obj = [f"{k}:{v}" for k, v in obj.items()]
    if not isinstance(obj, list) or not all(isinstance(x, str) for x in obj):
        raise RequestError(400, "bad_request", f"'{key}' must be a list of strings", key)
    out = [x.strip() for x in obj if x.strip()]
    for x in out:
        if len(x) > limits.max_name:
            raise RequestError(413, "too_long", f"a '{key}' entry is {len(x):,} characters "
                               f"long; the limit is {limits.max_name:,}", key)
    return out


def parse_request(body, limits):
    """The request body -> {"expr", "wrt", "vars", "steps", "code"}, or RequestError."""
    if len(body) > limits.max_body:
        raise RequestError(413, "too_long", f"the request is {len(body):,} bytes; the limit "
                           f"is {limits.max_body:,}")
    try:
        obj = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RequestError(400, "bad_json", f"the request body is not UTF-8 ({e.reason} at "
                           f"byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise RequestError(400, "bad_json", f"the request body is not JSON: {e.msg} "
                           f"(line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise RequestError(400, "bad_json", "the request body is nested too deeply") from None
    if not isinstance(obj, dict):
        raise RequestError(400, "bad_request", 'the request must be a JSON object '
                           '{"expr": …, "wrt": […], "vars": […]}')
    unknown = [k for k in obj if k not in FIELDS]
    if unknown:
        hint = " (did you mean 'vars'?)" if unknown[0] == "var" else ""
        raise RequestError(400, "bad_request", f"unknown field '{unknown[0]}'{hint}; the "
                           f"fields are {', '.join(FIELDS)}", unknown[0])
    expr = obj.get("expr")
    if not isinstance(expr, str):
        raise RequestError(400, "bad_request", "'expr' (the expression or program, a "
                           "string) is required", "expr")
    if len(expr) > limits.max_expr:
        raise RequestError(413, "too_long", f"the expression is {len(expr):,} characters "
                           f"long; the limit is {limits.max_expr:,}", "expr")
    wrt, vars_ = _names(obj.get("wrt"), "wrt", limits), _names(obj.get("vars"), "vars", limits)
    if len(wrt) + len(vars_) > limits.max_names:
        raise RequestError(413, "too_long", f"{len(wrt) + len(vars_)} names and declarations; "
                           f"the limit is {limits.max_names}", "wrt")
    steps = obj.get("steps", True)
    if not isinstance(steps, bool):
        raise RequestError(400, "bad_request", "'steps' must be true or false", "steps")
    from .web.derive import BACKENDS
    code = obj.get("code", True)
    if isinstance(code, bool):
        code = list(BACKENDS) if code else []
    if (not isinstance(code, list)
            or not all(isinstance(c, str) and c in BACKENDS for c in code)):
        raise RequestError(400, "bad_request", f"'code' must be true, false or a list of "
                           f"{', '.join(BACKENDS)}", "code")
    return {"expr": expr, "wrt": wrt, "vars": vars_, "steps": steps,
            "code": list(dict.fromkeys(code))}


# ---------------------------------------------------------------- workers

class _Worker:
    """A `python -m matdiff.web.worker` process and its JSON-lines pipes."""

    def __init__(self, limits):
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)  # the directory holding matdiff/
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "matdiff.web.worker", str(limits.max_memory),
             str(limits.max_output)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True)
        self.fd = self.proc.stdout.fileno()
        self.buf = b""

    def send(self, job):
        self.proc.stdin.write(json.dumps(job, ensure_ascii=False).encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def recv(self, timeout):
        """The next message, or TimeoutError; EOFError if the process ended."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def wait_ready(self, timeout):
        try:
            return self.recv(timeout).get("msg") == "ready"
        except (TimeoutError, EOFError, OSError, ValueError):
            return False

    def kill(self):
        try:
            self.proc.kill()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


class Pool:
    """`workers` derivation processes; a job that outlives its deadline has
    its process killed and replaced."""

    def __init__(self, limits):
        self.limits = limits
        self.idle = queue.Queue()
        self.closed = False
        self._all = set()
        self._lock = threading.Lock()
        starting = [self._new() for _ in range(max(1, limits.workers))]
        for w in starting:
            if w.wait_ready(60):
                self.idle.put(w)
            else:
                self._drop(w)
                self._replace()

    def _new(self):
        w = _Worker(self.limits)
        with self._lock:
            self._all.add(w)
        return w

    def _drop(self, w):
        with self._lock:
            self._all.discard(w)
        w.kill()

    def _replace(self):
        """Start a worker in the background; it joins the idle queue when warm."""
        def start():
            delay = 0.1
            while not self.closed:
                w = self._new()
                if w.wait_ready(60):
                    if self.closed:
                        self._drop(w)
                    else:
                        self.idle.put(w)
                    return
                self._drop(w)
                time.sleep(delay)
                delay = min(5.0, delay * 2)
        threading.Thread(target=start, name="matdiff-serve-respawn", daemon=True).start()

    def run(self, job):
        """(status, response dict) for a parsed request."""
        limits = self.limits
        waited_until = time.monotonic() + limits.queue_timeout
        while True:
            try:
                w = self.idle.get(timeout=max(0.0, waited_until - time.monotonic()))
            except queue.Empty:
                return 503, {"ok": False, "error": {"type": "busy", "field": None, "message":
                             f"every worker is busy (waited {limits.queue_timeout:g} s); "
                             f"try again"}}
            if w.proc.poll() is None:
                break
            self._drop(w)  # it died while idle (killed from outside): use another
            self._replace()
        deadline = time.monotonic() + limits.timeout
        main = None
        try:
            w.send(job)
            while True:
                msg = w.recv(deadline - time.monotonic())
                kind = msg.get("msg")
                if kind == "main":
                    main = msg["body"]
                    if job["steps"]:
                        continue
                    self.idle.put(w)
                    return 200, main
                if msg.get("recycle"):
                    self._drop(w)
                    self._replace()
                else:
                    self.idle.put(w)
                if kind == "steps":
                    main["steps"] = msg["body"]
                    return 200, main
                return msg["status"], msg["body"]
        except TimeoutError:
            self._drop(w)
            self._replace()
            if main is not None:  # the gradients came back, the steps did not
                main["steps"] = {"error": f"the steps took longer than the time limit "
                                          f"of {limits.timeout:g} s"}
                return 200, main
            return 504, {"ok": False, "error": {"type": "timeout", "field": None, "message":
                         f"the derivation took longer than the time limit of "
                         f"{limits.timeout:g} s"}}
        except (EOFError, OSError, ValueError, KeyError):
            self._drop(w)
            self._replace()
            return 500, {"ok": False, "error": {"type": "internal", "field": None, "message":
                         "the derivation process stopped unexpectedly; please report the "
                         "input"}}

    def close(self):
        self.closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for w in workers:
            w.kill()


# ---------------------------------------------------------------- HTTP

def _static_files():
    files = {}
    for p in STATIC.rglob("*"):
        if p.is_file() and p.suffix in _TYPES and p.name != "index.html":
            files["/static/" + p.relative_to(STATIC).as_posix()] = p
    return files


class Handler(BaseHTTPRequestHandler):
    timeout = 60  # seconds of silence from a client before its connection is dropped
    def version_string(self):
        return "matdiff-serve"

    def log_message(self, format, *args):
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def _send(self, status, body, ctype, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, obj):
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8",
                   [("Cache-Control", "no-store")])

    def _host_ok(self):
        """Bound to the loopback, answer only to loopback host names (no DNS rebinding)."""
        allowed = self.server.allowed_hosts
        if allowed is None:
            return True
        if self.headers.get("Host", "") in allowed:
            return True
        self._json(403, {"ok": False, "error": {"type": "forbidden", "field": None,
                         "message": "this server answers only to 127.0.0.1 and localhost"}})
        return False

    def do_GET(self):
        if not self._host_ok():
            return
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            body = (STATIC / "index.html").read_bytes()
            self._send(200, body, _TYPES[".html"], [("Content-Security-Policy", _CSP),
                                                   ("Cache-Control", "no-cache")])
        elif path in self.server.static:
            p = self.server.static[path]
            cache = "max-age=86400" if "/katex/" in path else "no-cache"
            self._send(200, p.read_bytes(), _TYPES[p.suffix], [("Cache-Control", cache)])
        elif path == "/api/health":
            self._json(200, {"ok": True})
        elif path == "/favicon.ico":
            self._send(204, b"", "text/plain")
        else:
            self._json(404, {"ok": False, "error": {"type": "not_found", "field": None,
                             "message": f"no page {path}: the page is /, the API POST /api/derive"}})

    do_HEAD = do_GET

    def _drain(self, n):
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 16))
            if not chunk:
                return
            n -= len(chunk)

    def do_POST(self):
        if not self._host_ok():
            return
        if urlsplit(self.path).path != "/api/derive":
            self._json(404, {"ok": False, "error": {"type": "not_found", "field": None,
                             "message": "POST /api/derive is the API"}})
            return
        limits = self.server.limits
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        try:
            length = int(self.headers.get("Content-Length", ""))
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._json(411, {"ok": False, "error": {"type": "bad_request", "field": None,
                             "message": "a Content-Length header is required"}})
            return
        if length > limits.max_body:
            self.close_connection = True
            self._drain(min(length, 16 * limits.max_body))  # so the client reads the answer
            self._json(413, RequestError(413, "too_long", f"the request is {length:,} bytes; "
                       f"the limit is {limits.max_body:,}").json())
            return
        body = self.rfile.read(length)
        if ctype != "application/json":
            self._json(415, {"ok": False, "error": {"type": "bad_request", "field": None,
                             "message": "send the request as Content-Type: application/json"}})
            return
        status, obj = self.server.derive(body)
        self._json(status, obj)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that went away (the page aborts a request superseded by typing)
        or fell silent is no error of ours: one line, not a traceback."""
        e = sys.exc_info()[1]
        if isinstance(e, (ConnectionError, TimeoutError)):
            if not self.quiet:
                sys.stderr.write(f"{client_address[0]} - connection closed "
                                 f"({type(e).__name__})\n")
            return
        super().handle_error(request, client_address)

    def __init__(self, host="127.0.0.1", port=8765, limits=None, quiet=False):
        self.limits = limits or Limits()
        self.quiet = quiet
        self.static = _static_files()
        super().__init__((host, port), Handler)
        port = self.server_address[1]
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
        loopback = host in ("127.0.0.1", "localhost", "::1")
        self.allowed_hosts = ({f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")}
                              if loopback else None)
        try:
            self.pool = Pool(self.limits)
        except BaseException:
            self.server_close()
            raise

    def serve_forever(self, poll_interval=0.5):
        self._serving = True
        super().serve_forever(poll_interval)

    def derive(self, body):
        """(status, response) for a request body (bytes): what POST /api/derive answers."""
        try:
            job = parse_request(body, self.limits)
        except RequestError as e:
            return e.status, e.json()
        return self.pool.run(job)

    def close(self):
        """Stop serving (if serve_forever runs), close the socket, stop the workers."""
        if getattr(self, "_serving", False):
            self.shutdown()
        self.server_close()
        self.pool.close()


def share_url(base, expr, wrt=(), vars=()):
    """The page's URL for these inputs, as the page writes it: ?expr=…&wrt=W&var=Y:onehot."""
    from urllib.parse import urlencode
    query = [("expr", expr)] + [("wrt", w) for w in wrt] + [("var", v) for v in vars]
    return base.rstrip("/") + "/?" + urlencode(query)


def make_server(host="127.0.0.1", port=8765, limits=None, quiet=False):
    return Server(host, port, limits, quiet)


def main(host="127.0.0.1", port=8765, open_browser=False, timeout=None, workers=None):
    limits = Limits()
    if timeout is not None:
        limits.timeout = timeout
    if workers is not None:
        limits.workers = workers
    server = make_server(host, port, limits)
    try:  # Ctrl-C from the moment the address is printed stops it cleanly
        print(f"matdiff serve: {server.url} (Ctrl-C stops)", file=sys.stderr, flush=True)
        if open_browser:
            import webbrowser
            threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C: the way to stop a server, not an error
        print("matdiff serve: stopped", file=sys.stderr, flush=True)
    finally:
        server.server_close()
        server.pool.close()
