"""The grading pipeline around nbgrader: release, check, autograde, feedback, grades CSV.

Run from the course root (the folder with ``nbgrader_config.py``)::

    python -m pruning_kit.autograde release              # solutions/ -> assignments/
    python -m pruning_kit.autograde check                # fails if assignments/ is stale
    python -m pruning_kit.autograde grade pruning        # submitted/ -> grades CSV + feedback

``make release`` and ``make grade ASSIGNMENT=pruning`` call these. Every
nbgrader step runs the real ``nbgrader`` command line with this Python's
``bin`` folder first on ``PATH`` (nbgrader shells out to ``alembic``).

What no submission can break:

- ``RobustExecute`` replaces nbgrader's ``Execute`` preprocessor (set in
  ``nbgrader_config.py``). When a cell kills the kernel (``os._exit``, a
  segfault, the out-of-memory killer) or hangs through the interrupt, that
  cell gets an error output (so it scores 0), a new kernel starts, the earlier
  non-test cells are replayed quietly (a cell that killed the kernel is never
  replayed), and grading continues with the next cell: functions that work
  still earn their points, and a test after the crash passes only if it
  really runs and passes. Past ``max_restarts`` every remaining graded cell
  gets an error output instead of silently counting as passed. The kernel
  also runs under an address-space limit, so a memory blow-up fails that
  student's cell instead of the grading machine.
- Before nbgrader runs, every submission is checked: a notebook that is not
  valid JSON, a missing notebook, deleted or edited cells and suspicious code
  (replacing ``torch.equal``, touching ``pruning_kit.grading``) each give a
  clear note for that student, and all other students are graded.
"""

import argparse
import csv
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient import NotebookClient
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute, OverwriteCells
from traitlets import Enum, Integer, Unicode

ASSIGNMENT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
KERNEL_DIED = "KernelDied"
NOT_RUN = "NotRun"


# ---------------------------------------------------------------------------
# Execution that survives a dying or stuck kernel

def _nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def is_test_cell(cell):
    """True for an autograded test cell (a graded code cell that is not a solution).

    Args:
        cell: a notebook cell (dict-like).

    Example:
        >>> is_test_cell({"cell_type": "code", "metadata": {"nbgrader": {"grade": True,
        ...               "solution": False}}})
        True
    """
    meta = _nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _error_output(ename, message):
    return NotebookNode(output_type="error", ename=ename, evalue=message,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {message}"])


class RobustExecute(Execute):
    """nbgrader's Execute, restarting the kernel when a cell kills or wedges it.

    Configure in ``nbgrader_config.py`` (``c.Execute.timeout`` applies too)::

        c.RobustExecute.max_restarts = 10
        c.RobustExecute.memory_limit_mb = 8192
        c.RobustExecute.test_timeout = 30
    """

    max_restarts = Integer(
        10, help="Kernel restarts allowed per notebook before the remaining graded cells fail."
    ).tag(config=True)

    memory_limit_mb = Integer(
        8192, allow_none=True,
        help="Address-space limit of the kernel process in MiB (None: no limit). Linux only.",
    ).tag(config=True)

    test_timeout = Integer(
        None, allow_none=True,
        help="Timeout in seconds for autograded test cells (None: Execute.timeout). Tests call "
             "functions on tiny inputs, so a short limit makes hanging submissions cheap to grade "
             "while training cells keep the long Execute.timeout.",
    ).tag(config=True)

    preamble = Unicode(
        "import pruning_kit.grading",
        help="Code run quietly in every new kernel before any notebook cell.",
    ).tag(config=True)

    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        """Execute every code cell; see the class docstring for what happens on a crash."""
        # as ExecutePreprocessor.preprocess, with a kernel loop around the cells
        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        cells = self.nb.cells
        executed = []     # indices of cells run so far, in order (replayed after a restart)
        poisoned = set()  # cells that killed or wedged the kernel: never run again
        index = 0
        restarts = 0
        self.restart_log = []
        while index < len(cells):
            current = None
            with self.setup_kernel():
                try:
                    self._limit_memory()
                    info = self.wait_for_reply(self.kc.kernel_info())
                    if info:
                        self.nb.metadata["language_info"] = info["content"]["language_info"]
                    if self.preamble:
                        self._run_quietly(self.preamble)
                    for j in executed:
                        if j not in poisoned and not is_test_cell(cells[j]):
                            current = j
                            self._run_quietly(cells[j].source)
                    while index < len(cells):
                        current = index
                        self.preprocess_cell(cells[index], resources, index)
                        if any(o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError"
                               for o in cells[index].get("outputs", [])):
                            poisoned.add(index)  # interrupted after the timeout: don't replay
                        executed.append(index)
                        index += 1
                except (DeadKernelError, CellTimeoutError, _Wedged) as exc:
                    restarts += 1
                    died = not isinstance(exc, (CellTimeoutError, _Wedged))
                    if current == index:
                        cell = cells[index]
                        if died:
                            text = ("The kernel died while running this cell (os._exit, a crash, "
                                    "or running out of memory). Grading restarted the kernel, "
                                    "re-ran the earlier cells and went on with the next cell.")
                        else:
                            text = ("This cell did not stop after the timeout and the interrupt. "
                                    "Grading restarted the kernel, re-ran the earlier cells and "
                                    "went on with the next cell.")
                        cell.setdefault("outputs", []).append(_error_output(KERNEL_DIED, text))
                        poisoned.add(index)
                        executed.append(index)
                        index += 1
                    elif current is not None:
                        poisoned.add(current)  # a replayed cell died this time: skip it
                    self.restart_log.append((current, type(exc).__name__))
                    self.log.warning("Kernel %s at cell %s; restart %d of %d",
                                     "died" if died else "was stuck", current, restarts,
                                     self.max_restarts)
                    if restarts > self.max_restarts:
                        self._fail_remaining(cells, index, restarts)
                        index = len(cells)
        self.set_widgets_metadata()
        return self.nb, self.resources

    def _get_timeout(self, cell):
        if cell is not None and self.test_timeout and is_test_cell(cell):
            return self.test_timeout
        return super()._get_timeout(cell)

    def _fail_remaining(self, cells, start, restarts):
        text = (f"Not run: the kernel died or got stuck {restarts} times, more than the "
                f"{self.max_restarts} restarts grading allows.")
        for cell in cells[start:]:
            if is_test_cell(cell):
                cell["outputs"] = [_error_output(NOT_RUN, text)]

    def _run_quietly(self, source):
        """Run code without recording outputs; raise if the kernel dies or hangs."""
        msg_id = self.kc.execute(source, silent=True, store_history=False, allow_stdin=False)
        reply = self.wait_for_reply(msg_id)
        if reply is None:  # timed out (and was interrupted)
            raise _Wedged("a replayed cell timed out")
        return reply

    def _limit_memory(self):
        if not self.memory_limit_mb:
            return
        try:
            import resource
        except ImportError:  # pragma: no cover - not on Windows
            return
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        pid = getattr(process, "pid", None)
        if pid is None or not hasattr(resource, "prlimit"):
            return
        limit = int(self.memory_limit_mb) * 1024 * 1024
        try:
            resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))
        except (OSError, ValueError) as exc:  # pragma: no cover - e.g. a lower hard limit
            self.log.warning("Could not limit the kernel's memory: %s", exc)


class _Wedged(Exception):
    """A quietly replayed cell did not finish within the timeout."""


class RobustOverwriteCells(OverwriteCells):
    """nbgrader's OverwriteCells, re-adding deleted grade cells wherever their neighbours went.

    nbgrader 0.9 puts a deleted test cell back right after the cell that
    preceded it in the source, and fails with ``KeyError`` (the whole
    submission ungraded) when that cell was deleted too, e.g. a student who
    removed a function's cell and its test. Here each missing grade cell goes
    after the nearest earlier source cell still present (or first).
    """

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        order = [cell.name for cell in source_nb.source_cells]
        source = {cell.name: cell for cell in source_nb.source_cells}
        grade_cells = {cell.name: cell for cell in source_nb.grade_cells}
        solution_ids = {cell.name for cell in source_nb.solution_cells}
        for position, name in enumerate(order):
            if name not in grade_cells or _index_of(nb, name) is not None:
                continue
            self.log.warning("Missing grade cell %s encountered, adding to notebook", name)
            cell = self.missing_cell_transform(source[name], grade_cells[name].max_score,
                                               is_solution=name in solution_ids)
            insert_at = 0
            for earlier in reversed(order[:position]):
                found = _index_of(nb, earlier)
                if found is not None:
                    insert_at = found + 1
                    break
            nb.cells.insert(insert_at, cell)
        return nb, resources


def _index_of(nb, grade_id):
    for i, cell in enumerate(nb.cells):
        if _nbgrader_meta(cell).get("grade_id") == grade_id:
            return i
    return None


# ---------------------------------------------------------------------------
# Running the nbgrader command line

def _environment():
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def run_nbgrader(course_dir, *args, check=True):
    """Run ``nbgrader <args>`` in ``course_dir`` and return the finished process.

    The command runs with this Python's ``bin`` folder first on ``PATH`` (nbgrader
    calls ``alembic``) and one OpenMP thread per kernel unless set otherwise.

    Args:
        course_dir: the course root (holds ``nbgrader_config.py``).
        *args: the nbgrader subcommand and its arguments.
        check: raise ``RuntimeError`` with the log tail when nbgrader fails.

    Returns:
        ``subprocess.CompletedProcess`` with ``stdout`` (stderr merged into it).

    Example:
        >>> run_nbgrader("/nonexistent/course", "--version")
        Traceback (most recent call last):
        ...
        ValueError: course_dir must be an existing folder, got '/nonexistent/course'
    """
    course_dir = Path(course_dir)
    if not course_dir.is_dir():
        raise ValueError(f"course_dir must be an existing folder, got {str(course_dir)!r}")
    done = subprocess.run([sys.executable, "-m", "nbgrader", *map(str, args)], cwd=course_dir,
                          env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if check and done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-30:])
        raise RuntimeError(f"nbgrader {' '.join(map(str, args))} failed "
                           f"(exit {done.returncode}):\n{tail}")
    return done


def _config(course_dir):
    """source and release folder names as nbgrader_config.py sets them."""
    path = Path(course_dir) / "nbgrader_config.py"
    if not path.is_file():
        raise ValueError(f"course_dir must be a course root with an nbgrader_config.py, "
                         f"got {str(course_dir)!r}")
    text = path.read_text()

    def find(key, default):
        m = re.search(rf"c\.CourseDirectory\.{key}\s*=\s*['\"]([^'\"]+)['\"]", text)
        return m.group(1) if m else default

    return find("source_directory", "source"), find("release_directory", "release")


def assignments(course_dir="."):
    """The assignment names: the folders of the source directory (``solutions/``).

    Example:
        >>> import pruning_kit
        >>> assignments(Path(pruning_kit.__file__).parents[1])
        ['binarized', 'pruning']
    """
    source, _ = _config(course_dir)
    root = Path(course_dir) / source
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and ASSIGNMENT_NAME.match(p.name) and any(p.glob("*.ipynb")))


def _check_assignment(course_dir, assignment):
    if not isinstance(assignment, str) or not ASSIGNMENT_NAME.match(assignment):
        raise ValueError(f"assignment must be a folder name like 'pruning', got {assignment!r}")
    known = assignments(course_dir)
    if assignment not in known:
        raise ValueError(f"unknown assignment {assignment!r}; the source folder has {known}")


def release(course_dir=".", names=None):
    """Regenerate the student versions with ``nbgrader generate_assignment``.

    Args:
        course_dir: the course root.
        names: assignment names (default: all in the source folder).

    Returns:
        list of the notebooks written.

    Example:
        >>> import pruning_kit
        >>> release(Path(pruning_kit.__file__).parents[1], ["lottery"])
        Traceback (most recent call last):
        ...
        ValueError: unknown assignment 'lottery'; the source folder has ['binarized', 'pruning']
    """
    names = list(names) if names else assignments(course_dir)
    for name in names:
        _check_assignment(course_dir, name)
    _, release_dir = _config(course_dir)
    # one nbgrader process for all of them when possible (each start costs seconds)
    targets = ["*"] if set(names) == set(assignments(course_dir)) else names
    for target in targets:
        run_nbgrader(course_dir, "generate_assignment", target, "--force")
    return [str(p) for name in names
            for p in sorted((Path(course_dir) / release_dir / name).glob("*.ipynb"))]


def _normalised(path):
    nb = json.loads(Path(path).read_text())
    return json.dumps(nb, indent=1, sort_keys=True).splitlines()


def stale_release(course_dir=".", names=None):
    """Differences between the committed release and what the solutions generate now.

    Generates every assignment into a temporary folder (the committed release
    folder is not touched) and compares notebooks and other files.

    Args:
        course_dir: the course root.
        names: assignment names (default: all).

    Returns:
        list of human-readable differences; empty when the release is up to date.

    Example:
        >>> stale_release("/nonexistent/course")
        Traceback (most recent call last):
        ...
        ValueError: course_dir must be a course root with an nbgrader_config.py, got '/nonexistent/course'
    """
    course_dir = Path(course_dir).resolve()
    names = list(names) if names else assignments(course_dir)
    source, release_dir = _config(course_dir)
    with tempfile.TemporaryDirectory(prefix="release-check-") as tmp:
        tmp = Path(tmp)
        shutil.copy(course_dir / "nbgrader_config.py", tmp / "nbgrader_config.py")
        for name in names:
            _check_assignment(course_dir, name)
            shutil.copytree(course_dir / source / name, tmp / source / name,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        run_nbgrader(tmp, "generate_assignment", "*", "--force")
        return release_differences(tmp / release_dir, course_dir / release_dir, names)


def release_differences(fresh_root, committed_root, names):
    """Compare two release folders assignment by assignment.

    Args:
        fresh_root: release folder just generated (``<course>/assignments``).
        committed_root: the committed release folder.
        names: assignment names to compare.

    Returns:
        list of human-readable differences (empty when identical).

    Example:
        >>> import pruning_kit
        >>> committed = Path(pruning_kit.__file__).parents[1] / "assignments"
        >>> release_differences(committed, committed, ["pruning", "binarized"])
        []
    """
    fresh_root, committed_root = Path(fresh_root), Path(committed_root)
    label = committed_root.name
    problems = []
    for name in names:
        fresh_dir, committed_dir = fresh_root / name, committed_root / name
        fresh = {p.relative_to(fresh_dir) for p in fresh_dir.rglob("*") if p.is_file()}
        committed = ({p.relative_to(committed_dir) for p in committed_dir.rglob("*")
                      if p.is_file() and ".ipynb_checkpoints" not in p.parts}
                     if committed_dir.is_dir() else set())
        for rel in sorted(fresh - committed):
            problems.append(f"{label}/{name}/{rel} is missing")
        for rel in sorted(committed - fresh):
            problems.append(f"{label}/{name}/{rel} is not generated from the solutions")
        for rel in sorted(fresh & committed):
            if rel.suffix == ".ipynb":
                a, b = _normalised(committed_dir / rel), _normalised(fresh_dir / rel)
            else:
                a, b = ((committed_dir / rel).read_bytes(),), ((fresh_dir / rel).read_bytes(),)
            if a != b:
                diff = ""
                if rel.suffix == ".ipynb":
                    diff = "\n".join(list(difflib.unified_diff(a, b, "committed", "generated",
                                                               n=1, lineterm=""))[:12])
                problems.append(f"{label}/{name}/{rel} differs from what the solutions "
                                f"generate\n{diff}".rstrip())
    return problems


# ---------------------------------------------------------------------------
# Checking submissions before nbgrader sees them

SUSPICIOUS = [
    (re.compile(r"\b(torch|np|numpy)\s*\.\s*(testing\s*\.\s*)?\w+\s*=(?!=)"),
     "assigns to a torch/numpy function"),
    (re.compile(r"setattr\s*\(\s*(torch|np|numpy|builtins|nn)\b"), "patches torch/numpy/builtins"),
    (re.compile(r"\bbuiltins\b"), "touches builtins"),
    (re.compile(r"pruning_kit\s*\.\s*grading|\bimport\s+grading\b|\bgrading\s*\.\s*\w+"),
     "touches pruning_kit.grading"),
    (re.compile(r"\b(pk|pruning_kit)\s*\.\s*(prune|quant|binary|lottery|structured)\s*\.\s*\w+"),
     "calls the course library's version"),
    (re.compile(r"__eq__|__torch_function__|__instancecheck__"), "defines comparison hooks"),
    (re.compile(r"\bos\s*\.\s*(_exit|kill)\b|\bsignal\s*\.\s*SIG"), "kills the process"),
    (re.compile(r"\bsys\s*\.\s*(modules|settrace|setprofile)\b|\bimportlib\b"),
     "changes the import system or tracing"),
    (re.compile(r"get_ipython\s*\(\s*\)\s*\.\s*(set_custom_exc|events|run_cell)"),
     "changes how the notebook runs"),
]


def _source_cells(course_dir, assignment):
    """{notebook name: {grade_id: cell}} from the release (what students received)."""
    source, release_dir = _config(course_dir)
    out = {}
    for path in sorted((Path(course_dir) / source / assignment).glob("*.ipynb")):
        released = Path(course_dir) / release_dir / assignment / path.name
        nb = json.loads((released if released.exists() else path).read_text())
        cells = {}
        for cell in nb["cells"]:
            meta = _nbgrader_meta(cell)
            if meta.get("grade_id"):
                cells[meta["grade_id"]] = cell
        out[path.stem] = cells
    return out


def _joined(source):
    return "".join(source) if isinstance(source, list) else str(source)


def _function_of(grade_id):
    m = re.match(r"^test_(.+)_(visible|hidden)$", grade_id)
    return m.group(1) if m else None


def preflight(course_dir, assignment, student):
    """Check one student's submission before autograding.

    Args:
        course_dir: the course root.
        assignment: the assignment name.
        student: the student id (folder name under ``submitted/``).

    Returns:
        ``(gradable, notes)``: ``gradable`` is False when nbgrader cannot read the
        notebook; ``notes`` are sentences for the student and the instructor.

    Example:
        >>> import pruning_kit
        >>> preflight(Path(pruning_kit.__file__).parents[1], "pruning", "nobody")
        (True, ['no pruning.ipynb submitted: scored 0'])
    """
    notes = []
    gradable = True
    folder = Path(course_dir) / "submitted" / student / assignment
    expected = _source_cells(course_dir, assignment)
    for name, source_cells in expected.items():
        path = folder / f"{name}.ipynb"
        if not path.exists():
            others = sorted(p.name for p in folder.glob("*.ipynb")) if folder.is_dir() else []
            hint = f" (found {', '.join(others)}: rename it to {name}.ipynb)" if others else ""
            notes.append(f"no {name}.ipynb submitted{hint}: scored 0")
            continue
        raw = path.read_bytes()
        try:
            nb = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            notes.append(f"{name}.ipynb is not UTF-8 text ({exc}); not graded. Save the notebook "
                         f"from Jupyter and submit it again")
            gradable = False
            continue
        except json.JSONDecodeError as exc:
            notes.append(f"{name}.ipynb is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}); not graded. Open it in Jupyter, save it, and submit it "
                         f"again (do not edit .ipynb files in a text editor)")
            gradable = False
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. cells without ids: nbgrader copes
                nbformat.validate(nbformat.from_dict(nb), version=4)
        except Exception as exc:  # nbformat.ValidationError, or a non-notebook JSON
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            notes.append(f"{name}.ipynb is JSON but not a valid notebook ({first}); not graded")
            gradable = False
            continue
        submitted = {}
        for cell in nb["cells"]:
            gid = _nbgrader_meta(cell).get("grade_id")
            if gid:
                submitted[gid] = cell
        for gid, cell in source_cells.items():
            meta = _nbgrader_meta(cell)
            if gid not in submitted:
                if is_test_cell(cell):
                    notes.append(f"test cell {gid} was deleted; nbgrader put the original back "
                                 f"and ran it")
                elif meta.get("solution") and not meta.get("grade"):
                    notes.append(f"the cell for {gid} was deleted: its tests score 0")
                elif meta.get("grade"):
                    notes.append(f"answer cell {gid} was deleted; restored empty")
                elif meta.get("locked"):
                    notes.append(f"read-only cell {gid} was deleted")
            elif meta.get("locked") and _joined(submitted[gid].get("source", "")) != _joined(
                    cell.get("source", "")):
                notes.append(f"read-only cell {gid} was edited; nbgrader restored the original")
        for i, cell in enumerate(nb["cells"]):
            if cell.get("cell_type") != "code" or _nbgrader_meta(cell).get("locked"):
                continue
            text = _joined(cell.get("source", ""))
            gid = _nbgrader_meta(cell).get("grade_id") or f"unnamed cell {i}"
            for pattern, why in SUSPICIOUS:
                m = pattern.search(text)
                if m:
                    notes.append(f"review: {gid} {why} ({m.group(0).strip()!r})")
                    break
    return gradable, notes


# ---------------------------------------------------------------------------
# Collecting grades

def _autograded_notebook(course_dir, assignment, student, name):
    return Path(course_dir) / "autograded" / student / assignment / f"{name}.ipynb"


def _execution_notes(path):
    notes = []
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if not is_test_cell(cell):
            continue
        gid = _nbgrader_meta(cell).get("grade_id")
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            if out.get("ename") == KERNEL_DIED:
                notes.append(f"{gid}: the kernel died or hung here; restarted, later cells graded")
            elif out.get("ename") == "CellTimeoutError":
                notes.append(f"{gid}: timed out")
            elif out.get("ename") == NOT_RUN:
                notes.append(f"{gid}: not run (too many kernel crashes)")
    return notes


def _collect(course_dir, assignment, students, notes_by_student):
    """Read scores from the gradebook into one row per student.

    Args:
        course_dir: the course root.
        assignment: the assignment name.
        students: student ids, in the order of the rows.
        notes_by_student: {student: (gradable, notes)} from ``preflight``.

    Returns:
        ``(columns, rows, autograded_max, manual_max)``: ``columns`` lists
        (key, label, max points) per function and written answer; each row is a
        dict with ``student``, ``status``, ``autograded``, ``manual`` (empty until
        graded by hand), per-part scores and ``notes``.
    """
    from nbgrader.api import Gradebook, MissingEntry

    db = f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}"
    rows = []
    with Gradebook(db) as gb:
        record = gb.find_assignment(assignment)
        parts = {}  # part -> max points (functions by their tests; answers by cell)
        manual = {}
        order = []
        for notebook in record.notebooks:
            for cell in sorted(notebook.grade_cells, key=lambda c: c.id):
                if cell.cell_type == "code":
                    key = _function_of(cell.name) or cell.name
                    if key not in parts:
                        order.append(key)
                    parts[key] = parts.get(key, 0) + cell.max_score
                else:
                    manual[cell.name] = cell.max_score
        auto_max = sum(parts.values())
        # order the parts as in the notebook
        source_order = [gid for cells in _source_cells(course_dir, assignment).values()
                        for gid in cells]
        position = {}
        for i, gid in enumerate(source_order):
            position.setdefault(_function_of(gid) or gid, i)
        order.sort(key=lambda k: position.get(k, 1e9))
        for student in students:
            gradable, notes = notes_by_student.get(student, (True, []))
            row = {"student": student, "autograded": 0.0, "notes": list(notes)}
            graded = [_autograded_notebook(course_dir, assignment, student, nb.name)
                      for nb in record.notebooks]
            ok = all(p.exists() for p in graded)
            for path in graded:
                if path.exists():
                    row["notes"] += _execution_notes(path)
            scores = {key: 0.0 for key in order}
            answers = {name: "" for name in manual}
            manual_total = 0.0
            if ok:
                for notebook in record.notebooks:
                    try:
                        sub = gb.find_submission_notebook(notebook.name, assignment, student)
                    except MissingEntry:
                        ok = False
                        continue
                    for grade in sub.grades:
                        cell = grade.cell
                        if cell.cell_type == "code":
                            key = _function_of(grade.name) or grade.name
                            scores[key] += grade.auto_score or 0.0
                        else:  # a written answer: graded by hand, or 0 when left blank
                            value = grade.manual_score
                            if value is None and not grade.needs_manual_grade:
                                value = grade.auto_score
                            if value is not None:
                                answers[grade.name] = value
                                manual_total += value
            if ok:
                row["status"] = "graded" + (" (review notes)" if any(
                    n.startswith("review:") for n in row["notes"]) else "")
            elif not gradable:
                row["status"] = "not graded: unreadable notebook"
            else:
                row["status"] = (f"not graded: nbgrader failed on this notebook (see "
                                 f"autograded/autograde_{assignment}.log)")
            row["autograded"] = sum(scores.values()) if ok else 0.0
            graded_by_hand = ok and all(v != "" for v in answers.values())
            row["manual"] = manual_total if graded_by_hand else ""
            row.update({k: (v if ok else 0.0) for k, v in scores.items()})
            row.update(answers)
            rows.append(row)
    columns = [(k, k, parts[k]) for k in order] + [(m, m, manual[m]) for m in manual]
    return columns, rows, auto_max, sum(manual.values())


def _write_csv(path, columns, rows, auto_max, manual_max):
    """Write one row per student: status, autograded score, each part, notes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (["student_id", "status", f"autograded ({auto_max:g})",
               f"manual ({manual_max:g}, empty until graded)"]
              + [f"{label} ({points:g})" for _, label, points in columns] + ["notes"])
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            manual = f"{row['manual']:g}" if row["manual"] != "" else ""
            writer.writerow([row["student"], row["status"], f"{row['autograded']:g}", manual]
                            + [(f"{row[k]:g}" if isinstance(row[k], float) else row[k])
                               for k, _, _ in columns]
                            + ["; ".join(row["notes"])])
    return path


def _ensure_gradebook(course_dir, assignment):
    """Record the assignment in gradebook.db if ``make release`` never ran here."""
    from nbgrader.api import Gradebook, MissingEntry

    db_path = Path(course_dir) / "gradebook.db"
    if db_path.exists():
        with Gradebook(f"sqlite:///{db_path.resolve()}") as gb:
            try:
                if gb.find_assignment(assignment).notebooks:
                    return False
            except MissingEntry:
                pass
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        run_nbgrader(course_dir, "generate_assignment", assignment, "--force",
                     f"--CourseDirectory.release_directory={tmp}")
    return True


def grade(course_dir=".", assignment="pruning", csv_path=None, feedback=True, out=sys.stdout):
    """Autograde every submission of one assignment; write the grades CSV and HTML feedback.

    Args:
        course_dir: the course root (``submitted/<student>/<assignment>/`` lives here).
        assignment: the assignment name.
        csv_path: where to write the CSV (default ``autograded/grades_<assignment>.csv``).
        feedback: also run ``nbgrader generate_feedback`` (HTML under ``feedback/``).
        out: where to print the summary table.

    Returns:
        list of row dicts, one per student (see ``_collect``).

    Example:
        >>> import pruning_kit
        >>> grade(Path(pruning_kit.__file__).parents[1], "lottery")
        Traceback (most recent call last):
        ...
        ValueError: unknown assignment 'lottery'; the source folder has ['binarized', 'pruning']
    """
    course_dir = Path(course_dir)
    _check_assignment(course_dir, assignment)
    start = time.perf_counter()
    submitted = course_dir / "submitted"
    students = sorted(p.name for p in submitted.iterdir()
                      if (p / assignment).is_dir()) if submitted.is_dir() else []
    if not students:
        raise ValueError(f"no submissions: expected folders submitted/<student>/{assignment}/ "
                         f"under {course_dir.resolve()}")
    _ensure_gradebook(course_dir, assignment)
    notes = {s: preflight(course_dir, assignment, s) for s in students}
    log_dir = course_dir / "autograded"
    log_dir.mkdir(exist_ok=True)
    done = run_nbgrader(course_dir, "autograde", assignment, "--force", check=False)
    (log_dir / f"autograde_{assignment}.log").write_text(done.stdout)
    gradable = [s for s in students if notes[s][0]]
    if done.returncode != 0 and gradable and not any(
            (log_dir / s / assignment).is_dir() for s in gradable):
        tail = "\n".join(done.stdout.splitlines()[-20:])
        raise RuntimeError(f"nbgrader autograde failed for every submission:\n{tail}")
    if feedback:
        fb = run_nbgrader(course_dir, "generate_feedback", assignment, "--force", check=False)
        (log_dir / f"feedback_{assignment}.log").write_text(fb.stdout)
    columns, rows, auto_max, manual_max = _collect(course_dir, assignment, students, notes)
    csv_path = Path(csv_path) if csv_path else log_dir / f"grades_{assignment}.csv"
    _write_csv(csv_path, columns, rows, auto_max, manual_max)
    elapsed = time.perf_counter() - start
    width = max(len(r["student"]) for r in rows)
    print(f"{assignment}: {len(rows)} submissions in {elapsed:.1f} s "
          f"(autograded out of {auto_max:g}; {manual_max:g} more points to grade by hand)", file=out)
    for row in rows:
        print(f"  {row['student']:<{width}}  {row['autograded']:>5g}  {row['status']}", file=out)
        for note in row["notes"]:
            print(f"  {'':<{width}}         - {note}", file=out)
    print(f"grades: {csv_path}", file=out)
    if feedback:
        print(f"feedback: {course_dir / 'feedback'}/<student>/{assignment}/*.html", file=out)
    return rows


def main(argv=None):
    """Command line: ``release``, ``check`` or ``grade ASSIGNMENT``; returns the exit status.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        0 on success, 1 when ``check`` finds a stale release, 2 on a usage error.

    Example:
        >>> main(["--course-dir", "/nonexistent/course", "grade", "pruning"])
        2
    """
    parser = argparse.ArgumentParser(prog="python -m pruning_kit.autograde",
                                     description="Release and autograde the course assignments.")
    parser.add_argument("--course-dir", default=".", help="course root (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_release = sub.add_parser("release", help="regenerate the release folder from the solutions")
    p_release.add_argument("assignments", nargs="*")
    p_check = sub.add_parser("check", help="exit 1 if the release folder is out of date")
    p_check.add_argument("assignments", nargs="*")
    p_grade = sub.add_parser("grade", help="autograde submitted/, write CSV and feedback")
    p_grade.add_argument("assignment")
    p_grade.add_argument("--csv", default=None, help="CSV path (default autograded/grades_A.csv)")
    p_grade.add_argument("--no-feedback", action="store_true", help="skip the HTML feedback")
    args = parser.parse_args(argv)
    try:
        if args.command == "release":
            for path in release(args.course_dir, args.assignments):
                print(f"wrote {path}")
        elif args.command == "check":
            problems = stale_release(args.course_dir, args.assignments)
            for problem in problems:
                print(problem)
            if problems:
                print("The release is out of date: run `make release` and commit assignments/.")
                return 1
            print("assignments/ is up to date with solutions/")
        else:
            grade(args.course_dir, args.assignment, csv_path=args.csv,
                  feedback=not args.no_feedback)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
