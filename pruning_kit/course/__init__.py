"""The course machinery: what runs the assignments, apart from the compression library.

- :mod:`.checks`: the checks behind the assignments' test cells, one module
  per assignment on a shared trusted core;
- :mod:`.execute`: nbgrader preprocessors that survive crashing, hanging and
  edited submissions;
- :mod:`.autograde`: release, check and grade from the command line
  (``python -m pruning_kit.course grade pruning``);
- a class: :mod:`.hub` (``make hub``, a JupyterHub from a roster), :mod:`.gradebook`
  (sqlite or PostgreSQL), :mod:`.parallel` (one process per student, a local pool or
  a Dask cluster), :mod:`.report` (what the class understood: one HTML page per
  assignment, ``make report``).

The compression library (``pruning_kit.prune``, ``pruning_kit.quant``, ...)
never imports from here, and ``import pruning_kit`` loads none of it: nbgrader
and nbclient are only imported when grading.
"""
