"""The instructor's folder: present, consistent with the course, and out of the students' way.

- the syllabus, glossary, further reading and README exist, and every lesson has an
  answer key ``instructor/answers/NN_topic.md``;
- every glossary term the syllabus links to is defined, and so is each term the course
  promises (sparsity, density, PTQ, STE, ...);
- every link in the folder is well formed: web links have a scheme and a host, local
  links point at files that exist (and at anchors that exist);
- the syllabus names every lesson, states each assignment's points as the nbgrader
  source notebooks count them, and every ``pk.`` name in the folder exists in the kit;
- nbgrader never sees the folder: it is neither its source nor its release folder,
  holds no notebook, and none of its files is copied into ``solutions/`` or
  ``assignments/``.
"""

import importlib
import re
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTOR = ROOT / "instructor"
ANSWERS = INSTRUCTOR / "answers"
LESSONS = sorted(p.stem for p in (ROOT / "lessons").glob("*.ipynb") if re.match(r"\d\d_", p.name))
ASSIGNMENTS = sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb")
                     if p.stem == p.parent.name)
DOCUMENTS = ("README.md", "syllabus.md", "glossary.md", "further_reading.md")
# the terms the course promises to define (the glossary, for the instructor)
REQUIRED_TERMS = ("sparsity", "density", "pruning-rate", "compression-ratio", "macs", "ptq", "qat",
                  "ste", "ticket", "lottery-ticket", "rewinding", "saliency",
                  "structured-vs-unstructured", "per-channel", "zero-point", "scale",
                  "huffman-coding", "weight-sharing", "dynamic-int8", "static-int8")
LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
ANCHOR = re.compile(r"<a\s+id=\"([^\"]+)\"\s*>")


def markdown_files():
    return sorted(INSTRUCTOR.rglob("*.md"))


def links(path: Path):
    """(text, target) of every inline Markdown link outside code spans and fences."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    found = set(ANCHOR.findall(text))
    found |= {slug(m) for m in re.findall(r"^#{1,6}\s+(.*)$", text, flags=re.M)}
    return found


def glossary_terms() -> set[str]:
    return set(ANCHOR.findall((INSTRUCTOR / "glossary.md").read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", DOCUMENTS)
def test_instructor_document_exists(name):
    path = INSTRUCTOR / name
    assert path.is_file(), f"instructor/{name} is missing"
    assert len(path.read_text(encoding="utf-8").split()) > 100, f"instructor/{name} is a stub"


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_has_an_answer_key(lesson):
    key = ANSWERS / f"{lesson}.md"
    assert key.is_file(), (f"instructor/answers/{lesson}.md is missing: every lesson's "
                           "exercises need an answer key for instructors")
    assert key.read_text(encoding="utf-8").strip(), f"{key} is empty"


def test_the_readme_links_every_answer_key_and_document():
    targets = {target.split("#")[0] for _, target in links(INSTRUCTOR / "README.md")}
    expected = {f"answers/{lesson}.md" for lesson in LESSONS} | set(DOCUMENTS[1:])
    assert not expected - targets, f"instructor/README.md does not link {expected - targets}"


def test_every_glossary_term_the_syllabus_uses_is_defined():
    terms = glossary_terms()
    used = [target.split("#", 1)[1] for _, target in links(INSTRUCTOR / "syllabus.md")
            if target.startswith("glossary.md#")]
    assert len(used) >= 20, "the syllabus should link its terms to the glossary"
    undefined = sorted(set(used) - terms)
    assert not undefined, f"the syllabus links glossary terms that are not defined: {undefined}"


@pytest.mark.parametrize("term", REQUIRED_TERMS)
def test_the_glossary_defines(term):
    assert term in glossary_terms(), f"instructor/glossary.md has no entry <a id=\"{term}\">"


def test_glossary_entries_are_one_line_with_where_the_course_uses_them():
    for line in (INSTRUCTOR / "glossary.md").read_text(encoding="utf-8").splitlines():
        if ANCHOR.search(line):
            assert re.search(r"\*\*[^*]+\*\* — \S", line), f"no term and definition: {line}"
            assert "*Course:*" in line, f"the entry does not say where the course uses it: {line}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(INSTRUCTOR)))
def test_links_are_well_formed(path):
    problems = []
    for text, target in links(path):
        url = urlparse(target)
        if url.scheme in ("http", "https"):
            if not re.fullmatch(r"[a-z0-9.-]+\.[a-z]{2,}", url.netloc or ""):
                problems.append(f"[{text}]({target}): no host")
            continue
        if url.scheme or target.startswith("//") or not target:
            problems.append(f"[{text}]({target}): only http(s) and relative links")
            continue
        file_part, _, fragment = target.partition("#")
        local = (path.parent / file_part).resolve() if file_part else path
        if not local.exists():
            # answer keys arrive from the lessons' authors; their own test names them
            if local == ANSWERS or local.parent == ANSWERS and local.suffix == ".md":
                continue
            problems.append(f"[{text}]({target}): {local.relative_to(ROOT)} does not exist")
        elif fragment and local.suffix == ".md" and fragment not in anchors(local):
            problems.append(f"[{text}]({target}): no anchor #{fragment} in {local.name}")
    assert not problems, "\n".join(problems)


def test_further_reading_has_the_surveys_and_a_section_per_lesson():
    text = (INSTRUCTOR / "further_reading.md").read_text(encoding="utf-8")
    for arxiv in ("2003.03033", "2102.00554", "2103.13630"):     # Blalock, Hoefler, Gholami
        assert f"arxiv.org/abs/{arxiv}" in text
    for lesson in LESSONS:
        number = int(lesson[:2])
        assert re.search(rf"^## Lesson {number}\b", text, flags=re.M), (
            f"further_reading.md has no section '## Lesson {number} ...'")


def test_the_syllabus_schedules_every_lesson_and_assignment():
    text = (INSTRUCTOR / "syllabus.md").read_text(encoding="utf-8")
    missing = [lesson for lesson in LESSONS if f"`{lesson}`" not in text]
    assert not missing, f"the syllabus does not schedule {missing}"
    assert ASSIGNMENTS, "no nbgrader source notebooks found in solutions/"
    for name in ASSIGNMENTS:
        assert f"`{name}` released" in text and f"`{name}` due" in text, name


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_syllabus_states_the_points_nbgrader_counts(name):
    nb = nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)
    total = sum(cell.metadata.get("nbgrader", {}).get("points", 0) for cell in nb.cells
                if cell.metadata.get("nbgrader", {}).get("grade"))
    text = (INSTRUCTOR / "syllabus.md").read_text(encoding="utf-8")
    row = next((line for line in text.splitlines() if line.startswith(f"| `{name}` |")), None)
    assert row is not None, f"the syllabus's assignment table has no row for `{name}`"
    stated = re.search(r"\*\*(\d+)\*\*", row)
    assert stated and int(stated.group(1)) == total, (
        f"instructor/syllabus.md gives `{name}` {stated and stated.group(1)} points; "
        f"solutions/{name}/{name}.ipynb has {total}: update the syllabus")


def test_every_kit_name_the_folder_cites_exists():
    import pruning_kit as pk

    missing = []
    for path in markdown_files():
        for name in set(re.findall(r"\bpk\.((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)",
                                   path.read_text(encoding="utf-8"))):
            target = pk
            try:
                for part in name.split("."):
                    target = getattr(target, part)
            except AttributeError:
                missing.append(f"{path.name}: pk.{name}")
    assert not missing, f"names not in pruning_kit: {missing}"


def test_nbgrader_never_sees_the_instructor_folder():
    config = (ROOT / "nbgrader_config.py").read_text(encoding="utf-8")
    for trait in ("source_directory", "release_directory"):
        value = re.search(rf"CourseDirectory\.{trait}\s*=\s*['\"]([^'\"]+)", config)
        assert value and "instructor" not in value.group(1), (trait, value)
    assert not list(INSTRUCTOR.rglob("*.ipynb")), "a notebook under instructor/ could be mistaken " \
                                                  "for an assignment: write answer keys in Markdown"
    ours = {path.name: path.read_bytes() for path in INSTRUCTOR.rglob("*") if path.is_file()}
    for folder in ("solutions", "assignments"):
        assert not (ROOT / folder / "instructor").exists()
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.name in ours and path.suffix == ".md":
                assert path.read_bytes() != ours[path.name], (
                    f"{path.relative_to(ROOT)} is a copy of an instructor file")
    importlib.import_module("pruning_kit")   # the kit imports without the folder on the path


# How the source decks are cited: readers of the course do not have them, so a lesson,
# the instructor's documents, the README, the book and the kit's docstrings name the talk and the
# tutorial by author and title, never "the course's seeds" or "seed material".
SEED_CITATION = re.compile(r"course'?s? [`'\"]?seeds?\b[`'\"]?|seed (?:material|deck)s?\b|in the `seeds`",
                           flags=re.IGNORECASE)


def cited_texts():
    """(name, text) of every document a reader of the course may see."""
    for path in sorted((ROOT / "lessons").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        yield path.name, "\n".join(cell.source for cell in nb.cells)
    for folder, pattern in (("instructor", "**/*.md"), ("book", "**/*.md"), ("pruning_kit", "**/*.py")):
        for path in sorted((ROOT / folder).glob(pattern)):
            yield str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")
    yield "README.md", (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_source_decks_are_cited_by_name_never_as_seeds():
    offenders = [f"{name}: ...{text[max(0, m.start() - 40):m.end() + 40]!r}..."
                 for name, text in cited_texts() for m in SEED_CITATION.finditer(text)]
    assert not offenders, "cite the talk and the tutorial by author and title:\n" + "\n".join(offenders)
    texts = dict(cited_texts())
    for name in ("05_structured_pruning.ipynb", "instructor/further_reading.md"):
        assert "Gschoßmann" in texts[name] and "Learning for Self-Driving Cars" in texts[name], name
    for name in ("06_hyperparameters_under_pruning.ipynb", "instructor/further_reading.md",
                 "instructor/syllabus.md"):
        assert all(author in texts[name] for author in ("Matthiesen", "Ask", "Ödman")), name
        assert "Are Hyperparameters Overrated?" in texts[name], name


def test_quoted_figures_are_labelled_as_quoted():
    # lesson 5 quotes the tutorial's GPU/CPU table; it must say it did not measure it
    lesson = dict(cited_texts())["05_structured_pruning.ipynb"]
    table_section = lesson[lesson.index("The tutorial's VGG-16"):]
    assert re.search(r"quoted from the tutorial", table_section)
    assert re.search(r"not by this lesson", table_section)
