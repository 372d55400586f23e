"""What the tests/py_*.py scripts share: optional modules (a script without them is skipped, exit
77), one "ok   NAME" or "FAIL NAME: DETAIL" line per check, and the exit status (1 when any check
failed)."""
import importlib
import sys

failures = []


def optional(*names):
    """The named modules, or exit 77 (ctest: skipped) when one is missing."""
    try:
        return [importlib.import_module(name) for name in names]
    except ImportError as e:
        print(f"skipped: {e}")
        sys.exit(77)


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(name)


def finish():
    sys.exit(1 if failures else 0)
