"""nbgrader preprocessors that no submission can break.

``nbgrader_config.py`` puts them in place of nbgrader's own:

- :class:`RobustExecute` replaces ``Execute``. When a cell kills the kernel
  (``os._exit``, a segfault, the out-of-memory killer) or hangs through the
  interrupt, that cell gets an error output (so it scores 0), a new kernel
  starts, the earlier non-test cells are replayed quietly (a cell that killed
  the kernel is never replayed), and grading continues with the next cell:
  functions that work still earn their points, and a test after the crash
  passes only if it really runs and passes. Past ``max_restarts`` every
  remaining graded cell gets an error output instead of silently counting as
  passed. The kernel also runs under an address-space limit, so a memory
  blow-up fails that student's cell instead of the grading machine.
- :class:`RobustOverwriteCells` replaces ``OverwriteCells``: a deleted test
  cell is put back wherever its neighbours went.

Example:
    >>> is_test_cell({"cell_type": "markdown", "metadata": {}})
    False
"""

import re

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute, OverwriteCells
from traitlets import Enum, Integer, Unicode

KERNEL_DIED = "KernelDied"
NOT_RUN = "NotRun"


# ---------------------------------------------------------------------------
# Execution that survives a dying or stuck kernel

def nbgrader_meta(cell):
    """The ``nbgrader`` metadata of a cell ({} when it has none)."""
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
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


TIME_LIMIT = re.compile(r"^# grading time limit: (\d+) s\b", re.M)


def cell_time_limit(cell):
    r"""The time limit a locked cell declares (``# grading time limit: 120 s``), or None.

    Test cells call functions on tiny inputs and get a short limit; a test that
    trains (fine-tuning a student's sparsity plan, training their binarized
    network) declares its own. Only locked cells count: their source comes back
    from the gradebook when grading, so a student cannot raise a limit.

    Example:
        >>> cell_time_limit({"cell_type": "code", "source": "# grading time limit: 90 s\nx = 1",
        ...                  "metadata": {"nbgrader": {"locked": True}}})
        90
    """
    if not nbgrader_meta(cell).get("locked"):
        return None
    source = cell.get("source", "")
    match = TIME_LIMIT.search(source if isinstance(source, str) else "".join(source))
    return int(match.group(1)) if match else None


def _error_output(ename, message):
    return NotebookNode(output_type="error", ename=ename, evalue=message,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {message}"])


class RobustExecute(Execute):
    """nbgrader's Execute, restarting the kernel when a cell kills or wedges it.

    Configure in ``nbgrader_config.py`` (``c.Execute.timeout`` applies too)::

        c.RobustExecute.max_restarts = 10
        c.RobustExecute.memory_limit_mb = 8192
    """

    max_restarts = Integer(
        10, help="Kernel restarts allowed per notebook before the remaining graded cells fail."
    ).tag(config=True)

    memory_limit_mb = Integer(
        8192, allow_none=True,
        help="Address-space limit of the kernel process in MiB (None: no limit). Linux only.",
    ).tag(config=True)

    preamble = Unicode(
        "", help="Code run quietly in every new kernel before any notebook cell.",
    ).tag(config=True)

    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate").tag(config=True)

    kernel_provisioner = Unicode(
        "", help="The Jupyter kernel provisioner that starts each kernel, by its registered name "
                 "('pruning-kit-sandbox': the grading sandbox, see pruning_kit.course.sandbox); "
                 "'' keeps the kernelspec's own.",
    ).tag(config=True)

    def create_kernel_manager(self):
        """nbclient's kernel manager, its kernelspec pointing at ``kernel_provisioner``."""
        km = super().create_kernel_manager()
        if self.kernel_provisioner and km.kernel_spec is not None:
            km.kernel_spec.metadata["kernel_provisioner"] = {
                "provisioner_name": self.kernel_provisioner, "config": {}}
        return km

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
        declared = cell_time_limit(cell) if cell is not None else None
        if declared is not None:
            return declared
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
        provisioner = getattr(self.km, "provisioner", None)
        if getattr(provisioner, "sandboxed", False):
            return  # the sandbox set it when it started the kernel (c.Sandbox.memory_limit_mb)
        process = getattr(provisioner, "process", None)
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
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            return i
    return None


