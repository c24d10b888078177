"""A derivation process of `matdiff serve`: `python -m matdiff.web.worker MAX_MEMORY MAX_OUTPUT`.

It reads one job a line on stdin, {"expr", "wrt", "vars", "steps", "code"},
and writes JSON lines on stdout: {"msg": "ready"} once warm, then for each
job {"msg": "main", "body": …} and, if steps were asked, {"msg": "steps",
"body": …, "recycle": …}, or {"msg": "error", "status": …, "body": …,
"recycle": …}. recycle: this process exits (it ran out of memory, or hit a
bug) and is to be replaced. The server kills it when a job outlives the time
limit; its address space is capped at its start-up size plus MAX_MEMORY.
"""

import json
import os
import sys
import time


def _address_space():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _cap_memory(max_memory):
    base = _address_space()
    if base is None or not max_memory:
        return
    try:
        import resource
        from ..deep import STACK_BYTES
        # matdiff.deep's worker thread reserves a STACK_BYTES stack: starting it
        # takes a little over twice that in address space (glibc; measured), not memory
        cap = base + 2 * STACK_BYTES + 256 * 2 ** 20 + max_memory
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, ValueError, OSError):
        pass


def _exhausted(e):
    """Out of memory, stack or address space (a new thread cannot start)."""
    return (isinstance(e, (MemoryError, RecursionError))
            or (isinstance(e, RuntimeError) and "can't start new thread" in str(e)))


def _error(type, message, field=None):
    return {"ok": False, "error": {"type": type, "field": field, "message": message}}


def handle(job, max_output, send):
    """Derive one job, sending its messages; True if this process should exit."""
    from ..errors import MatdiffError
    from . import derive

    def size(obj):
        return len(json.dumps(obj, ensure_ascii=False).encode("utf-8"))

    try:
        t0 = time.perf_counter()
        result, main = derive.derive_main(job["expr"], job["wrt"], job["vars"], job["code"])
        main["ok"] = True
        main["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        used = size(main)
        if used > max_output:
            send({"msg": "error", "status": 422, "recycle": False, "body": _error(
                "too_large", f"the result is {used:,} bytes, longer than the output limit "
                             f"of {max_output:,} bytes")})
            return False
    except MatdiffError as e:
        send({"msg": "error", "status": 422, "recycle": False,
              "body": {"ok": False, "error": derive.error_json(e, job["wrt"], job["vars"])}})
        return False
    except Exception as e:
        if _exhausted(e):
            send({"msg": "error", "status": 422, "recycle": True, "body": _error(
                "too_large", "the expression is too large or too deeply nested", "expr")})
        else:  # a bug of ours: reported, and this process replaced
            send({"msg": "error", "status": 500, "recycle": True, "body": _error(
                "internal", f"internal error ({type(e).__name__}: {e}); please report it")})
        return True
    send({"msg": "main", "body": main})
    if not job["steps"]:
        return False
    recycle = False
    try:
        steps = derive.derive_steps(result)
        if size(steps) + used > max_output:
            steps = {"error": f"the steps are longer than the output limit of "
                              f"{max_output:,} bytes"}
    except MatdiffError as e:
        steps = {"error": str(e)}
    except Exception as e:
        recycle = True
        steps = {"error": "the steps are too large to write out" if _exhausted(e) else
                 f"internal error in the steps ({type(e).__name__}: {e}); please report it"}
    send({"msg": "steps", "body": steps, "recycle": recycle})
    return recycle


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    max_memory, max_output = int(argv[0]), int(argv[1])
    out = sys.stdout.buffer

    def send(obj):
        out.write(json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n")
        out.flush()

    from . import derive
    try:  # load the rule tables before the first request
        derive.derive_main("-tr(Y^T log softmax(XW+b))", ["W"], ["Y:onehot"])
    except Exception:
        pass
    _cap_memory(max_memory)
    send({"msg": "ready"})
    for line in sys.stdin.buffer:
        try:
            job = json.loads(line)
        except ValueError:
            return
        if handle(job, max_output, send):
            return


if __name__ == "__main__":
    main()
