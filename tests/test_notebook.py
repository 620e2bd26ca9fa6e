"""pk.notebook: computed sentences and tables on a lesson's page."""
import pandas as pd
import pytest

import pruning_kit as pk
from pruning_kit import notebook


@pytest.fixture
def shown(monkeypatch):
    """What the notebook would display, in order."""
    items = []
    monkeypatch.setattr(notebook, "_display", items.append)
    return items


def test_say_displays_the_sentence_as_markdown(shown):
    pk.notebook.say("Pruning keeps **26,661** weights: $10\\times$ fewer.")
    assert [type(item).__name__ for item in shown] == ["Markdown"]
    assert shown[0].data == "Pruning keeps **26,661** weights: $10\\times$ fewer."


def test_a_table_hides_the_index_and_formats_each_column():
    frame = pd.DataFrame({"sparsity": [0.5, 0.9], "kept": [133305, 26661], "note": ["a", "b"]},
                         index=[7, 8])
    html = pk.notebook.table(frame, {"sparsity": "{:.0%}", "kept": "{:,}"},
                             caption="Kept weights").to_html()
    assert "90%" in html and "133,305" in html and "Kept weights" in html
    assert "0.900000" not in html and "133305" not in html
    assert ">7<" not in html and ">8<" not in html      # no index column


def test_show_table_displays_the_styled_table(shown):
    frame = pd.DataFrame({"bits": [8, 4]})
    pk.notebook.show_table(frame, {"bits": "{:d} bits"})
    assert len(shown) == 1 and "8 bits" in shown[0].to_html()


@pytest.mark.parametrize("call, message", [
    (lambda: pk.notebook.say(3.5), "text must be a str"),
    (lambda: pk.notebook.table([1, 2]), "frame must be a pandas DataFrame"),
    (lambda: pk.notebook.table(pd.DataFrame({"a": [1]}), {"b": "{:.1f}"}),
     "columns the table does not have: ['b']; its columns are ['a']"),
    (lambda: pk.notebook.table(pd.DataFrame({"a": [1]}), "{:.1f}"), "formats must be a dict"),
    (lambda: pk.notebook.table(pd.DataFrame({"a": [1]}), {"a": 3}), "formats['a'] must be"),
    (lambda: pk.notebook.table(pd.DataFrame({"a": [1]}), caption=1), "caption must be a str"),
])
def test_bad_input_says_what_is_allowed(call, message, shown):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        call()
    assert shown == []


def test_the_frame_is_left_as_it_was():
    frame = pd.DataFrame({"sparsity": [0.5, 0.9]}, index=[3, 4])
    before = frame.copy()
    pk.notebook.table(frame, {"sparsity": "{:.0%}"})
    pd.testing.assert_frame_equal(frame, before)
