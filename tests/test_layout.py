"""The package keeps its shape: the library apart from the course machinery, one home per idea.

The rules between modules are import-linter contracts in ``pyproject.toml``
(``[tool.importlinter]``), run here with ``lint-imports``:

- no library module imports ``pruning_kit.course``;
- the library imports no grading or serving software (nbgrader, nbclient, voila, jupyterhub);
- the compression library never imports the live explorers.

What import-linter cannot say (it sees modules, not names or running code) is checked here:

- ``import pruning_kit`` (and every library module) loads no grading software when it runs;
- no module imports another module's private name, except from ``_checks``;
- the shared argument checks are not written again in a module;
- every public name of the design's API contract imports;
- README's library map lists exactly the modules in the tree.
"""

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import pruning_kit as pk

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pruning_kit"
COURSE = PACKAGE / "course"
SHIM = PACKAGE / "grading.py"  # a stub that tells old notebooks to re-release


def library_modules():
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if COURSE not in p.parents and p != SHIM)


def module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def absolute(path, node):
    """The absolute module an ``ImportFrom`` node in ``path`` refers to."""
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path):
    """(imported module, imported name or None) pairs of a source file."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                yield absolute(path, node), alias.name


def test_importing_the_library_loads_no_grading_or_serving_software():
    code = ("import sys, pruning_kit as pk\n"
            f"for name in {list(pk.SUBMODULES)}:\n"
            "    getattr(pk, name)\n"
            "print(sorted(m for m in ('nbgrader', 'nbclient', 'voila', 'pruning_kit.course')"
            " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"})
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def lint_imports(root):
    """Run import-linter on the package under ``root`` with ``root``'s pyproject.toml."""
    command = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(command), "--no-cache", "--no-logo"], cwd=root,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)})


def contract_names():
    return [contract["name"] for contract
            in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]]


def test_import_contracts_hold():
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in contract_names():
        assert f"{name} KEPT" in done.stdout, done.stdout


PLANTED = [
    ("pruning_kit/prune.py", "from .course import checks",
     "The library never imports the course machinery"),
    ("pruning_kit/widgets/bits.py", "def _grade():\n    import nbgrader",
     "The library loads no grading or serving software"),
    ("pruning_kit/quant/uniform.py", "from ..widgets import bits",
     "The compression library never imports the live explorers"),
]


@pytest.mark.parametrize("path,line,contract", PLANTED, ids=[c for _, _, c in PLANTED])
def test_import_contracts_fail_on_a_planted_forbidden_import(tmp_path, path, line, contract):
    assert contract in contract_names()
    shutil.copytree(PACKAGE, tmp_path / "pruning_kit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    assert lint_imports(tmp_path).returncode == 0
    planted = tmp_path / path
    planted.write_text(planted.read_text() + "\n" + line + "\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert f"{contract} BROKEN" in done.stdout, done.stdout
    assert done.stdout.count("BROKEN") == 1, done.stdout


def test_private_names_cross_module_borders_only_from_checks():
    offenders = []
    for path in library_modules() + sorted(COURSE.rglob("*.py")):
        here = module_name(path)
        for mod, name in imports(path):
            if not mod.startswith("pruning_kit") or mod == here:
                continue
            if name and name.startswith("_") and not name.startswith("__") \
                    and mod != "pruning_kit._checks":
                offenders.append(f"{here} imports {name} from {mod}")
        # module._private attribute access on an imported sibling module
        tree = ast.parse(path.read_text())
        siblings = {alias.asname or alias.name for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.level
                    for alias in node.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in siblings and node.attr.startswith("_") \
                    and not node.attr.startswith("__") and node.value.id != "_checks":
                offenders.append(f"{here} uses {node.value.id}.{node.attr}")
    assert not offenders, offenders


SHARED_CHECKS = {"_check_model", "_check_int", "_check_fraction", "_check_seed", "_check_choice",
                 "_check_positive_int", "_check_bool", "_check_tensor", "_as_data"}


def test_shared_argument_checks_are_not_written_again():
    offenders = []
    for path in library_modules():
        if path.name == "_checks.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in SHARED_CHECKS:
                offenders.append(f"{module_name(path)}.{node.name}")
            # the hand-written int check: if isinstance(x, bool) or not isinstance(x, int): raise
            if isinstance(node, ast.If) and any(isinstance(n, ast.Raise) for n in node.body):
                text = ast.unparse(node.test)
                if re.match(r"isinstance\((\w+), bool\) or not isinstance\(\1, (int|numbers)",
                            text):
                    offenders.append(f"{module_name(path)} line {node.lineno}: {text[:60]}")
    assert not offenders, offenders


def test_one_error_type_that_is_both_value_and_type_error():
    from pruning_kit._checks import InvalidParameterError

    with pytest.raises(ValueError):
        pk.prune.magnitude(pk.models.lenet_300_100(), 1.5)
    with pytest.raises(TypeError):
        pk.prune.magnitude(pk.models.lenet_300_100(), "a lot")
    with pytest.raises(InvalidParameterError, match="must be"):
        pk.train.fit(pk.models.lenet_300_100(), pk.data.load("digits")[0], epochs=-1)


CONTRACT = {
    "data": ["load", "loader", "TensorData", "as_dataset", "DataLike", "DATASETS"],
    "models": ["lenet_300_100", "lenet5", "vgg", "resnet", "conv", "autoencoder", "prunable"],
    "train": ["fit", "evaluate", "evaluate_loss", "seed_everything", "Recipe"],
    "prune": ["magnitude", "random", "snip_scores", "snip", "sparsity", "layer_sparsity",
              "finalize", "masks", "apply_masks", "clone", "iterative", "prunable_layers",
              "stored_weight"],
    "lottery": ["imp", "reinit_control", "random_prune_control", "TicketRound"],
    "structured": ["l1_filter_prune", "report", "alpha_prune", "AlphaSchedule",
                   "iterative_filter_prune", "NotPlainStackError"],
    "quant": ["quantize_affine", "dequantize_affine", "quantize_symmetric", "fake_quantize",
              "fake_quantize_model", "qat_vs_ptq", "kmeans_share", "deep_compress", "int8",
              "huffman_code", "binarize", "SignSTE", "BinaryLinear", "BinaryConv2d",
              "binarized_mlp"],
    "metrics": ["count_params", "macs", "latency_ms", "size_bytes"],
    "widgets": ["sparsity_explorer", "bits_explorer", "ticket_explorer", "filter_explorer",
                "grid_explorer"],
    "sensitivity": ["sensitivity_study", "grid_search", "summary", "confidence_ellipse"],
}


@pytest.mark.parametrize("module", sorted(CONTRACT))
def test_every_public_name_of_the_contract_imports(module):
    missing = [name for name in CONTRACT[module] if not hasattr(getattr(pk, module), name)]
    assert not missing


def test_old_released_notebooks_are_told_to_re_release():
    done = subprocess.run([sys.executable, "-c", "import pruning_kit.grading"],
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert "ImportError" in done.stderr and "make release" in done.stderr


def tree_modules():
    """Every module and package of pruning_kit, as README's map names them."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        if path == SHIM or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(PACKAGE)
        if rel.name == "__init__.py":
            if rel.parent != Path("."):
                names.add(str(rel.parent) + "/")
        elif rel.name != "__main__.py":
            names.add(str(rel))
    return names


def test_readme_library_map_matches_the_tree():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```\npruning_kit/\n(.*?)```", readme, re.S)
    assert block, "README has no library map (a code block starting with pruning_kit/)"
    listed, parents = set(), []  # parents: (indent, "quant/") of the folders above a line
    for line in block.group(1).splitlines():
        match = re.match(r"( *)([a-z0-9_]+(?:\.py|/))", line)
        if not match:
            continue
        indent = len(match.group(1))
        while parents and parents[-1][0] >= indent:
            parents.pop()
        path = "".join(folder for _, folder in parents) + match.group(2)
        listed.add(path)
        if path.endswith("/"):
            parents.append((indent, match.group(2)))
    assert listed == tree_modules(), (sorted(listed - tree_modules()),
                                      sorted(tree_modules() - listed))
