"""What the tests/py_*.py scripts share: one "ok   NAME" or "FAIL NAME: DETAIL" line per check,
and the exit status (1 when any check failed)."""
import sys

failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(name)


def finish():
    sys.exit(1 if failures else 0)
