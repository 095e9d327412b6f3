"""Two threads parsing at once (Streamlit compiling a page, numpy reading a .npy header) must not fail
on the Pythons whose AST constructor shares state between threads (semiad.threadsafe_ast)."""
from __future__ import annotations

import ast
import difflib
import gc
import random
import threading
from pathlib import Path

import semiad  # noqa: F401  (installs the lock, as every semiad process does)
from semiad import threadsafe_ast

SOURCE = Path(threadsafe_ast.__file__).with_name("represent.py").read_text()


def churn(phase: str, info: dict) -> None:
    """A collector callback that runs Python code: it lets another thread in mid-parse."""
    a, b = ([f"{random.randint(0, 9)}\n" for _ in range(50)] for _ in range(2))
    list(difflib.unified_diff(a, b))


def test_parallel_parses_never_fail():
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                ast.parse(SOURCE)
                ast.literal_eval("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}")
        except SystemError as e:  # "AST constructor recursion depth mismatch" on an unguarded 3.11.7
            errors.append(e)

    gc.callbacks.append(churn)
    try:
        threads = [threading.Thread(target=work) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        gc.callbacks.remove(churn)
    assert errors == []


def test_the_lock_is_installed_exactly_where_python_needs_it():
    assert threadsafe_ast.affected((3, 11, 7)) and threadsafe_ast.affected((3, 12, 1))
    assert not threadsafe_ast.affected((3, 11, 8)) and not threadsafe_ast.affected((3, 12, 2))
    wrapped = getattr(ast.parse, "__wrapped__", None) is not None
    assert wrapped == threadsafe_ast.affected()
    threadsafe_ast.install()  # idempotent: never a lock around a lock
    assert getattr(getattr(ast.parse, "__wrapped__", None), "__wrapped__", None) is None
