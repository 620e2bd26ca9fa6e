"""The course machinery: what runs the assignments, apart from the compression library.

What students use:

- :mod:`.testing`: ``expect`` and the one-line verdicts of the visible test cells.

What grading uses (the instructor's grader package, ``grader/``, holds the hidden
tests, the reference solutions and the trusted checker that decides every test
cell; nothing here can show a hidden test or a reference):

- :mod:`.wire` and :mod:`.agent`: plain data across the grading boundary, and the
  student's side of it (a sandboxed process that runs the answer cells and answers
  the grader's calls);
- :mod:`.sandbox` and :mod:`.execute`: sandboxed kernels, nbgrader preprocessors that
  survive crashing, hanging and edited submissions;
- :mod:`.autograde` (``python -m pruning_kit.course grade pruning``, see
  :mod:`.__main__`), :mod:`.grades`, :mod:`.results` (what the checker found, per test
  cell), :mod:`.feedback`, :mod:`.release`, :mod:`.preflight`;
- a class: :mod:`.hub` (``make hub``, a JupyterHub from a roster), :mod:`.gradebook`
  (sqlite or PostgreSQL), :mod:`.parallel` (one process per student, a local pool or a
  Dask cluster), :mod:`.student_kit` (what students get), :mod:`.report` (what the class
  understood: one HTML page per assignment, ``make report``).

The compression library (``pruning_kit.prune``, ``pruning_kit.quant``, ...)
never imports from here, and ``import pruning_kit`` loads none of it: nbgrader
and nbclient are only imported when grading.
"""
