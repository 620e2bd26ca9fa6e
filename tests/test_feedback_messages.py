"""Failure messages say what is wrong first, in a sentence a terminal shows whole.

``nbgrader validate`` in a terminal cuts lines at about 90 characters, after
``AssertionError: ``. So the first sentence of every message a test cell raises
(up to its first ". " or ": ") is at most 80 characters and never opens with a
long description of the call (``global_magnitude_masks({'fc1': (2, 2)...``).
Checked on every conceptual mistake of the in-process tables (``MISTAKES`` of
``test_grading.py`` and any ``*MISTAKES*`` table of ``test_checks_*.py``), on
the released stubs and on the submissions that hand the work to the kit.
"""

import importlib
import re

import pytest

from pruning_kit.course.checks import ASSIGNMENTS, core
from pruning_kit.course.execute import TIME_LIMIT

import test_grading as grading  # noqa: E402 - tests/ is on sys.path under pytest
from kit_wrappers import WRAPPERS  # noqa: E402

TABLE_MODULES = ("test_grading", "test_checks_pruning", "test_checks_binarized")
GRADED = {name for names in ASSIGNMENTS.values() for name in names}


def mistake_tables():
    """{(module.table, name, label): implementation} of every mistake table found."""
    found = {}
    for module_name in TABLE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        for attr, table in vars(module).items():
            if "MISTAKES" not in attr or not isinstance(table, dict):
                continue
            for key, value in table.items():
                if not (isinstance(key, tuple) and len(key) == 2 and key[0] in GRADED):
                    continue
                source = value if isinstance(value, str) else (
                    value[0] if isinstance(value, (tuple, list)) and value
                    and isinstance(value[0], str) else None)
                if source is not None:
                    found[(f"{module_name}.{attr}", key[0], key[1])] = source
    return found


MISTAKE_SOURCES = mistake_tables()


def trains(name):
    """True if the hidden tests of ``name`` declare a grading time limit (they train): slow."""
    test = grading.cell_source(grading.assignment_of(name), f"test_{name}_hidden")
    return TIME_LIMIT.search(test) is not None


def params(keys, name_of):
    """``pytest.param`` per key, marked slow where the graded function's tests train."""
    return [pytest.param(*key, marks=[pytest.mark.slow] if trains(name_of(key)) else [])
            for key in keys]


def leading_call(message, name):
    """The call description ``message`` opens with (``name(...)``, ``the x of name(...)``), or None."""
    match = re.match(rf"^(\S+ of )?{re.escape(name)}(\.\w+)?\(", message)
    if match is None:
        return None
    depth = 0
    for i in range(match.end() - 1, len(message)):
        depth += {"(": 1, ")": -1}.get(message[i], 0)
        if depth == 0:
            return message[:i + 1]
    return message


def assert_short_first(message, name, where):
    first = core.first_sentence(message)
    assert len(first) <= core.FIRST_SENTENCE, (
        f"{where}: the first sentence has {len(first)} characters (at most "
        f"{core.FIRST_SENTENCE}): {first!r}\nfull message: {message!r}")
    call = leading_call(message, name)
    assert not (call and len(call) > core.LONG_CALL), (
        f"{where}: the message opens with a long description of the call: {message!r}")


def test_the_tables_are_found():
    assert any(table.startswith("test_grading.") for table, _, _ in MISTAKE_SOURCES)


@pytest.mark.parametrize("table,name,label",
                         params(sorted(MISTAKE_SOURCES), lambda key: key[1]))
def test_mistake_messages_put_a_short_sentence_first(table, name, label):
    results = grading.run_tests(name, MISTAKE_SOURCES[(table, name, label)])
    messages = {kind: m for kind, m in results.items() if m}
    assert messages, f"{table} {name} / {label}: no test failed"
    for kind, message in messages.items():
        assert_short_first(message, name, f"{name} ({label}), {kind} tests")


@pytest.mark.parametrize("name", params([(n,) for n in sorted(GRADED)], lambda key: key[0]))
def test_stub_and_kit_messages_put_a_short_sentence_first(name):
    assignment = grading.assignment_of(name)
    sources = {"released stub": grading.stub(grading.cell_source(assignment, name))}
    if name in WRAPPERS.get(assignment, {}):
        sources["kit wrapper"] = WRAPPERS[assignment][name]
    for label, source in sources.items():
        for kind, message in grading.run_tests(name, source).items():
            assert message, f"{name} ({label}) passed its {kind} tests"
            assert_short_first(message, name, f"{name} ({label}), {kind} tests")


def test_explain_moves_a_long_call_to_the_end():
    long_call = "global_magnitude_masks({'fc1': (2, 2), 'fc2': (2, 2)}, sparsity=0.5)"
    message = core.explain(long_call, ": the zeros are not at the smallest abs(weight)")
    assert message.startswith("global_magnitude_masks: the zeros are not")
    assert message.endswith(f"abs(weight). Call: {long_call}")
    assert core.first_sentence(message) == "global_magnitude_masks:"
    assert core.explain("f(x)", " raised ValueError: x") == "f(x) raised ValueError: x"
    assert core.explain("the mask of magnitude_mask(weight of shape (2, 3), sparsity=0.5)",
                        " has dtype torch.bool").startswith("the mask of magnitude_mask has dtype")
