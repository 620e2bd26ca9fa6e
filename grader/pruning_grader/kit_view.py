"""The grading view of ``pruning_kit``: the kit without the code that does graded work.

While an assignment is graded, the student's process (:mod:`.boundary`) imports
``pruning_kit`` from a copy of the package in which every kit function or
class that would do a graded function's work (the assignment's ``kit`` list)
is a stub raising ``KitRefused``. The copy is what the sandbox binds where the
kit's package is, so the real code is not on disk for that process: keeping a
reference, copying a code object or re-importing a module cannot bring it back.

Functions keep their names and become ``def name(*args, **kwargs): raise
KitRefused(...)``; classes keep their names and bases and lose their bodies (a
constructor, ``forward``, ``backward`` and ``apply`` that raise). The message
names the kit function and the graded function under test (the student's
process sets ``pruning_kit._grading_view.UNDER_TEST``).

Example:
    >>> import pruning_kit, tempfile
    >>> view = build_view(["pruning_kit.prune.magnitude"], tempfile.mkdtemp())
    >>> "def magnitude(*args, **kwargs)" in (view / "pruning_kit" / "prune.py").read_text()
    True
"""

from __future__ import annotations

import ast
import hashlib
import shutil
import tempfile
from pathlib import Path

import pruning_kit

GRADING_VIEW_MODULE = '''"""Present only in the grading view of pruning_kit (see pruning_grader.kit_view)."""

UNDER_TEST = "the function being graded"


class KitRefused(Exception):
    """A kit function or class that would do a graded function's work, called while grading."""


def refuse(path):
    shown = "pk." + path[len("pruning_kit."):] if path.startswith("pruning_kit.") else path
    raise KitRefused(
        f"{shown} is not available while {UNDER_TEST} is graded: write {UNDER_TEST} yourself "
        f"with plain torch ({shown} is the course's version, for the lessons)")
'''


def _kit_dir() -> Path:
    return Path(pruning_kit.__file__).resolve().parent


def _stub_function(name, path, lineno):
    return ast.parse(
        f"def {name}(*args, **kwargs):\n"
        f"    from pruning_kit._grading_view import refuse\n"
        f"    refuse({path!r})\n").body[0]


def _stub_class(node, path):
    body = ast.parse(
        "def __init__(self, *args, **kwargs):\n"
        "    from pruning_kit._grading_view import refuse\n"
        f"    refuse({path!r})\n"
        "@staticmethod\n"
        "def forward(*args, **kwargs):\n"
        "    from pruning_kit._grading_view import refuse\n"
        f"    refuse({path!r})\n"
        "@staticmethod\n"
        "def backward(*args, **kwargs):\n"
        "    from pruning_kit._grading_view import refuse\n"
        f"    refuse({path!r})\n"
        "@classmethod\n"
        "def apply(cls, *args, **kwargs):\n"
        "    from pruning_kit._grading_view import refuse\n"
        f"    refuse({path!r})\n").body
    return ast.ClassDef(name=node.name, bases=node.bases, keywords=node.keywords, body=body,
                        decorator_list=[], type_params=getattr(node, "type_params", []))


def _where(path: str, kit: Path):
    """(source file, attribute name) that define the kit object named by ``path``."""
    import importlib

    module_name, _, attr = path.rpartition(".")
    module = importlib.import_module(module_name)
    obj = getattr(module, attr, None)
    if obj is None:
        raise ValueError(f"kit entry {path!r} names nothing: {module_name} has no {attr!r}")
    while hasattr(obj, "__wrapped__"):
        obj = obj.__wrapped__
    defined_in = getattr(obj, "__module__", module_name)
    real = importlib.import_module(defined_in)
    source = Path(real.__file__).resolve()
    if kit not in source.parents:
        raise ValueError(f"kit entry {path!r} is defined outside pruning_kit ({source})")
    return source, getattr(obj, "__name__", attr), f"{module_name}.{attr}"


def build_view(paths, dest) -> Path:
    """Write the grading view of ``pruning_kit`` under ``dest``; returns ``dest``.

    Args:
        paths: dotted paths of kit functions and classes to remove
            (``"pruning_kit.prune.magnitude"``); each is stubbed where it is
            defined, so every name it is re-exported under refuses too.
        dest: a folder; ``dest/pruning_kit`` is written.

    Raises:
        ValueError: a path that names nothing in the kit, or something defined outside it.
    """
    kit = _kit_dir()
    dest = Path(dest)
    target = dest / "pruning_kit"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(kit, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (target / "_grading_view.py").write_text(GRADING_VIEW_MODULE)
    by_file = {}
    for path in sorted(set(paths)):
        source, name, shown = _where(path, kit)
        by_file.setdefault(source, {})[name] = shown
    for source, names in by_file.items():
        tree = ast.parse(source.read_text())
        found = set()
        for index, node in enumerate(tree.body):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
                tree.body[index] = _stub_function(node.name, names[node.name], node.lineno)
                found.add(node.name)
            elif isinstance(node, ast.ClassDef) and node.name in names:
                tree.body[index] = _stub_class(node, names[node.name])
                found.add(node.name)
        missing = set(names) - found
        if missing:
            raise ValueError(f"{sorted(missing)} are not defined at the top level of {source}")
        ast.fix_missing_locations(tree)
        (target / source.relative_to(kit)).write_text(ast.unparse(tree) + "\n")
    return dest


_VIEWS = {}


def view_for(paths) -> Path:
    """The grading view for ``paths``, built once per process in a temporary folder."""
    kit = _kit_dir()
    digest = hashlib.sha256("\n".join(sorted(set(paths))).encode())
    for source in sorted(kit.rglob("*.py")):
        digest.update(str(source.relative_to(kit)).encode())
        digest.update(source.read_bytes())
    key = digest.hexdigest()[:16]
    if key not in _VIEWS or not (_VIEWS[key] / "pruning_kit").is_dir():
        folder = Path(tempfile.mkdtemp(prefix=f"pk-view-{key}-"))
        folder.chmod(0o755)  # the student process runs as another user
        _VIEWS[key] = build_view(paths, folder)
    return _VIEWS[key]
