"""Replace the source of one cell of a notebook, found by its nbgrader grade id or its index.

The notebook file keeps its JSON layout (one-space indents, as Jupyter writes it) and every other
cell byte for byte, so a diff shows only the edited cell.

Usage:
    .venv/bin/python tools/edit_cell.py solutions/pruning/pruning.ipynb test_magnitude_mask_visible < new.py
    .venv/bin/python tools/edit_cell.py lessons/01_magnitude_pruning.ipynb 27 < cell.md
    .venv/bin/python tools/edit_cell.py NOTEBOOK GRADE_ID --show     # print the cell's source
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def find(nb, key):
    if key.isdigit():
        return int(key)
    for index, cell in enumerate(nb["cells"]):
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == key:
            return index
    raise SystemExit(f"no cell with grade id {key!r}")


def main(argv):
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    path, key = Path(argv[0]), argv[1]
    nb = json.loads(path.read_text(encoding="utf-8"))
    index = find(nb, key)
    if argv[2:] == ["--show"]:
        print("".join(nb["cells"][index]["source"]), end="")
        return
    text = sys.stdin.read().rstrip("\n")
    lines = text.splitlines(keepends=True)
    nb["cells"][index]["source"] = lines
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
