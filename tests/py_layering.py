"""The house's one-way data flow: a module includes only the modules listed before it
(core, io, stats, sim, nn, flow, train, recon, report), and nothing includes cli."""
import pathlib
import re
import sys

ORDER = ["core", "io", "stats", "sim", "nn", "flow", "train", "recon", "report"]
root = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else ".")
include = re.compile(r'#include\s+"fieldflow/(\w+)/')
faults = []
for module in ORDER:
    allowed = set(ORDER[: ORDER.index(module) + 1])
    for folder in (root / "src" / module, root / "include" / "fieldflow" / module):
        for path in sorted(folder.glob("*.[ch]pp")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                m = include.search(line)
                if m and m.group(1) not in allowed:
                    faults.append(f"{path.relative_to(root)}:{number}: {module} must not include {m.group(1)}")
for fault in faults:
    print(fault)
print(f"{0 if faults else 1} passed, {1 if faults else 0} failed")
sys.exit(1 if faults else 0)
