"""The class report's cost: a class of 300 end to end, and the similarity check at scale.

Budget (DESIGN.md): a class of 300 reports in under a minute on 2 cores.

1. **300 students, the whole report** on the real ``pruning`` assignment: a temporary
   course with the repository's release, a sqlite gradebook holding 300 submissions
   (nbgrader's API: the cells, submission times, some written answers graded by
   hand), a check-result row per test cell (statuses and diagnosis codes drawn from
   the assignment's clause table), and 300 submitted notebooks whose answer cells
   hold synthetic code. Then ``build_report`` reads it all, draws the figures,
   compares the code and writes the page: the time printed is what an instructor
   waits for after ``make grade``.
2. **The similarity check alone** at 250, 500 and 1,000 synthetic submissions (nine
   answer cells of about ten statements each, as ``pruning`` has), each stage timed:
   fingerprinting (copydetect: tokenise, normalise, hash) grows with the amount of
   code, ``O(n)``; counting the fragments pairs share grows with the sum over
   fragments of (submissions sharing it)^2, each at most the common limit; the full
   comparisons grow with the pairs that share much. The exponent of each stage from
   500 to 1,000 projects it to 5,000.

The synthetic code: every statement of an answer cell is drawn from twenty shapes
with random names and constants, so two independent students share short
fragments by chance (as real students share idioms) and 1% of the students hand in
a copy of another's code with the names changed and two lines swapped (the pairs the
report must find: each copy with its source, and two copies of one source with each
other). Names don't matter to the fingerprints; shapes and constants do.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/class_report.py [--quick]

``--quick`` runs 60 students and 100/200 for the similarity (a smoke test).
"""

import datetime
import json
import warnings
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("MPLBACKEND", "Agg")

from pruning_kit.course import release, results  # noqa: E402
from pruning_kit.course.gradebook import ensure_gradebook, open_gradebook  # noqa: E402
from pruning_kit.course.report import build_report  # noqa: E402
from pruning_kit.course.report.gather import answer_cells  # noqa: E402
from pruning_kit.course.report.similarity import common_limit, similar_pairs  # noqa: E402

ASSIGNMENT = "pruning"
CLASS = 300
BUDGET_S = 60.0
SIZES = (250, 500, 1000)
PROJECT_TO = 5000
COPY_SHARE = 0.01

SHAPES = [
    "{a} = {b}.abs().flatten()",
    "{a} = torch.sort({b}, descending={flag})[{i}]",
    "if {a} > {c}:\n        {b} = {b} * {c}",
    "for {a} in range({n}):\n        {b}[{a}] = {b}[{a}] + {c}",
    "{a} = [{b}[{i}] for {i} in range({n})]",
    "{a} = round({c} * {b}.numel())",
    "{a} = torch.ones_like({b}) * {c}",
    "{a}.view(-1)[{b}[:{n}]] = {c}",
    "{a} = {{k: v.clone() for k, v in {b}.items()}}",
    "while {a} < {n}:\n        {a} += {i}",
    "{a} = torch.where({b} > {c}, {b}, torch.zeros_like({b}))",
    "{a} = max({b}, key=lambda t: t[{i}])",
    "{a} = sum(x.numel() for x in {b}.values()) + {n}",
    "{a}, {b} = {b}.kthvalue({n}), {c}",
    "{a} = ({b} >= {c}).float()",
    "{a} = {b}.reshape({n}, -1).norm(p={i}, dim=1)",
    "{a} = torch.cat([x.flatten() for x in {b}.values()])",
    "if not {c} <= {a} <= {n}:\n        raise ValueError('{a} out of range')",
    "{a} = {b}.detach().clone()",
    "{a} = list(zip({b}, range({n})))",
]
NAMES = ["w", "x", "t", "mask", "k", "n", "scores", "flat", "idx", "out", "vals", "thr",
         "weights", "result", "m", "order", "total", "cut", "keep", "layer"]


def statement(rng):
    shape = rng.choice(SHAPES)
    a, b, i = rng.sample(NAMES, 3)
    return shape.format(a=a, b=b, i=i, c=rng.choice(["0.5", "1", "2", "0.1", "3"]),
                        n=rng.randint(2, 9), flag=rng.choice(["True", "False"]))


def synthetic_answers(cells, students, seed=0):
    """``{student: {cell: code}}``: independent students, and 1% copies of another."""
    rng = random.Random(seed)
    answers = {}
    n = len(students)
    for student in students:
        answers[student] = {cell: f"def {cell}(*args):\n" + "\n".join(
            f"    {statement(rng)}" for _ in range(rng.randint(8, 12))) + "\n"
            for cell in cells}
    copiers = rng.sample(students, max(1, int(COPY_SHARE * n)))
    originals = [s for s in students if s not in set(copiers)]
    source_of = {}
    for copier in copiers:
        source = rng.choice(originals)
        source_of[copier] = source
        copied = {}
        for cell, code in answers[source].items():
            lines = code.splitlines()
            j = rng.randrange(1, len(lines) - 1)
            lines[j], lines[j + 1] = lines[j + 1], lines[j]
            text = "\n".join(lines) + "\n"
            for old in NAMES:  # renamed: names don't reach the fingerprints
                text = text.replace(f"{old} ", f"{old}_ ")
            copied[cell] = text
        answers[copier] = copied
    # expected pairs: each copier with its source, and copiers of the same source with each other
    groups = {}
    for copier, source in source_of.items():
        groups.setdefault(source, [source]).append(copier)
    copies = {tuple(sorted((a, b))) for group in groups.values() for a in group for b in group
              if a < b}
    return answers, copies


def timed_similarity(cells, n):
    answers, copies = synthetic_answers(cells, [f"s{i:05d}" for i in range(n)])
    run = {}
    start = time.perf_counter()
    pairs = similar_pairs(answers, {}, run=run)
    total = time.perf_counter() - start
    found = {p.students for p in pairs}
    return total, run, len(found & copies), len(copies), len(found - copies)


def make_class(root, size, seed=1):
    """The course, gradebook, check results and submitted notebooks of ``size`` students."""
    import shutil

    rng = random.Random(seed)
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, root / "solutions" / ASSIGNMENT,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text())
    release.release(root, [ASSIGNMENT])
    students = [f"student{i:03d}" for i in range(size)]
    ensure_gradebook(root, ASSIGNMENT, students)
    url = f"sqlite:///{root / 'gradebook.db'}"
    from pruning_grader.nbgrader import load_assignment

    registry = load_assignment(ASSIGNMENT)
    codes = {}
    for clause in registry.clauses:
        codes.setdefault(clause.function, []).append(clause.diagnosis)
    released = json.loads((root / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
                          .read_text())
    cells = [gid for gid in answer_cells(released) if gid in registry.functions]
    answers, _ = synthetic_answers(cells, students, seed=seed)
    due = datetime.datetime(2030, 1, 10, 12, 0)
    with open_gradebook(url) as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=due)
        cells = [c for nb in gb.find_assignment(ASSIGNMENT).notebooks for c in nb.grade_cells]
        tests = [(c.name, c.max_score) for c in cells if c.name.startswith("test_")]
        written = {c.name for c in cells if not c.name.startswith("test_")}
        for k, student in enumerate(students):
            late = datetime.timedelta(hours=rng.choice([0] * 19 + [3]))
            submission = gb.add_submission(ASSIGNMENT, student,
                                           timestamp=due - datetime.timedelta(hours=1) + late)
            for grade in submission.notebooks[0].grades:
                if grade.name in written and k % 3 == 0:
                    grade.manual_score = rng.choice([0.0, 1.0, 2.0])
        gb.db.commit()
    for student in students:
        nb = json.loads(json.dumps(released))
        for cell in nb["cells"]:
            gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if gid in answers[student]:
                cell["source"] = answers[student][gid]
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb))
        rows = []
        for grade_id, most in tests:
            function = registry.function_of(grade_id)
            roll = rng.random()
            status, diagnosis, points = "passed", None, most
            if roll < 0.25:
                status, points = "failed", 0.0
                diagnosis = rng.choice(codes.get(function, [None]))
            elif roll < 0.27:
                status, points, diagnosis = "crashed", 0.0, f"{function}/crashed"
            rows.append({"grade_id": grade_id, "function": function, "status": status,
                         "diagnosis": diagnosis, "points": points, "max_points": most,
                         "message": f"{function}: {status} ({student})", "seconds": 0.1})
        results.record(url, ASSIGNMENT, student, ASSIGNMENT, rows)
    return url


def exponent(t1, t2, n1, n2):
    return math.log(max(t2, 1e-9) / max(t1, 1e-9)) / math.log(n2 / n1)


def main(argv):
    quick = "--quick" in argv
    # nbgrader 0.9's add_submission trips SQLAlchemy 2's autoflush warnings; the rows are right
    warnings.filterwarnings("ignore", message=".*not in session.*")
    size = 60 if quick else CLASS
    sizes = (100, 200) if quick else SIZES
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores)")
    with tempfile.TemporaryDirectory(prefix="class-report-") as tmp:
        root = Path(tmp) / "course"
        start = time.perf_counter()
        make_class(root, size)
        made = time.perf_counter() - start
        start = time.perf_counter()
        path = build_report(root, ASSIGNMENT)
        took = time.perf_counter() - start
        print(f"class of {size}: made in {made:.1f} s; report in {took:.1f} s "
              f"({path.stat().st_size / 1e6:.1f} MB page), budget {BUDGET_S:g} s: "
              f"{'OK' if took < BUDGET_S else 'OVER'}")
    cells = [f"cell{j}" for j in range(9)]
    print(f"\nsimilarity alone (9 answer cells of 8-12 statements, {COPY_SHARE:.0%} copies):")
    print(f"{'n':>6} {'total s':>8} {'fingerprints':>12} {'candidates':>10} {'compare':>8} "
          f"{'compared':>9} {'copies found':>13} {'other pairs':>11} {'common limit':>12}")
    measured = []
    for n in sizes:
        total, run, found, planted, others = timed_similarity(cells, n)
        seconds = run["seconds"]
        measured.append((n, total, seconds))
        print(f"{n:>6} {total:>8.1f} {seconds['fingerprints']:>12.1f} "
              f"{seconds['candidates']:>10.2f} {seconds['compare']:>8.2f} "
              f"{run['candidates']:>9} {f'{found}/{planted}':>13} {others:>11} "
              f"{run['common_limit']:>12}")
    (n1, t1, s1), (n2, t2, s2) = measured[-2], measured[-1]
    projected = 0.0
    print(f"\nprojection to {PROJECT_TO} from {n1} -> {n2} "
          f"(each stage: time x (n ratio)^exponent):")
    for stage in ("fingerprints", "candidates", "compare"):
        e = exponent(s1[stage], s2[stage], n1, n2)
        guess = s2[stage] * (PROJECT_TO / n2) ** max(e, 1.0 if stage == "fingerprints" else e)
        projected += guess
        print(f"  {stage:<12} exponent {e:4.2f}: {guess:7.1f} s")
    print(f"  total at {PROJECT_TO} (common limit {common_limit(PROJECT_TO)}): "
          f"about {projected:.0f} s; whole-run exponent {exponent(t1, t2, n1, n2):.2f} "
          f"(2 = every pair compared)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
