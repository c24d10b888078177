"""Run deeply recursive work safely: a thread with a big C stack and a high
recursion limit.

Parsing, inference, derivation and printing recurse once per nesting level,
several frames a level. Pure-Python calls cost no C stack since 3.11, but a
call through C (getattr'd methods are fine; str.join over a generator, repr,
sorted keys are not) does, and the main thread's 8 MB stack would overflow
before a useful limit. A worker thread gets its own large stack, so the
limit can be raised without risking a crash.

    run_deep(fn, *args, **kwargs)   # fn's result, or fn's exception re-raised

Nested calls (fn itself calling run_deep) run inline in the same worker.
"""

import sys
import threading

STACK_BYTES = 2 ** 30       # address space only: pages are committed as they are used
RECURSION_LIMIT = 200_000   # 20 frames a level at the parser's nesting cap; 5 KB of C stack a frame

_local = threading.local()
_lock = threading.Lock()
_active = 0
_saved_limit = None


def in_deep():
    """True inside a run_deep worker."""
    return getattr(_local, "deep", False)


def run_deep(fn, *args, **kwargs):
    if in_deep():
        return fn(*args, **kwargs)
    box = {}

    def work():
        _local.deep = True
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # re-raised in the caller's thread, SystemExit too
            box["error"] = e

    global _active, _saved_limit
    with _lock:
        if _active == 0:
            _saved_limit = sys.getrecursionlimit()
        # The limit is per interpreter, not per thread: the callers' threads
        # only wait while it is high.
        sys.setrecursionlimit(max(_saved_limit, RECURSION_LIMIT))
        _active += 1
        old = threading.stack_size(STACK_BYTES)
        try:
            worker = threading.Thread(target=work, name="matdiff-deep", daemon=True)
            worker.start()
        except BaseException:
            _release()
            raise
        finally:
            threading.stack_size(old)
    try:
        worker.join()
    finally:
        with _lock:
            _release()
    if "error" in box:
        raise box.pop("error")
    return box.get("value")


def _release():
    global _active
    _active -= 1
    if _active == 0:
        sys.setrecursionlimit(_saved_limit)
