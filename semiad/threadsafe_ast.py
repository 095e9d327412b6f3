"""One `ast.parse` at a time on the Pythons whose AST constructor is not thread-safe.

CPython before 3.11.8 (and 3.12.0–3.12.1) keeps the AST constructor's recursion depth in state
shared by all threads (gh-106905, fixed by python/cpython#113035). When two threads parse at once
and the garbage collector lets the other one run mid-way, one of them fails with "SystemError: AST
constructor recursion depth mismatch". In semiad two threads do parse at once: Streamlit compiles a
page's script with `ast.parse`, and `numpy.load` reads every .npy header with `ast.literal_eval`,
in the app's script threads and in the in-process worker alike. A user met it as an error on a page.

`install()` puts a lock around `ast.parse` (which `literal_eval` and Streamlit call through the
module), on affected versions only. A re-entrant lock: a collector callback may parse again.
"""
from __future__ import annotations

import ast
import sys
import threading
from typing import Any

_lock = threading.RLock()


def affected(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> bool:
    """Whether this Python's AST constructor shares its recursion depth between threads."""
    return version < (3, 11, 8) or (3, 12, 0) <= version < (3, 12, 2)


def install() -> None:
    """Serialise `ast.parse` for the whole process (idempotent; a no-op on fixed Pythons)."""
    if not affected() or getattr(ast.parse, "__wrapped__", None) is not None:
        return
    original = ast.parse

    def parse(*args: Any, **kwargs: Any) -> ast.AST:
        with _lock:
            return original(*args, **kwargs)

    parse.__wrapped__ = original  # type: ignore[attr-defined]
    parse.__doc__ = original.__doc__
    ast.parse = parse
