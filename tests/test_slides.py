"""`make slides LESSON=01`: a lesson as reveal.js slides that open offline.

The deck is exported without executing the lesson (fast); what is checked is what
would break a lecture in a room without network: every script, style sheet, font and
image the deck loads is a file beside it, never a URL.
"""

import doctest
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import build_slides  # noqa: E402  (tools/ is put on the path just above)
import execute_lessons  # noqa: E402
import static_widgets  # noqa: E402


class AssetLinks(HTMLParser):
    """Every URL a page loads by itself: scripts, style sheets, images, media, frames."""

    def __init__(self):
        super().__init__()
        self.urls, self.inline = [], []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "video", "audio", "source", "embed") \
                and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href") and "stylesheet" in (attrs.get("rel") or "") \
                or tag == "link" and attrs.get("rel") in ("icon", "preload", "modulepreload"):
            self.urls.append(attrs["href"])
        self._in_style = tag in ("style", "script")

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.inline.append(data)


def remote(url: str) -> bool:
    return bool(urlparse(url).scheme not in ("", "file", "data") or url.startswith("//"))


def css_urls(text: str) -> list[str]:
    """URLs a style sheet or a script pulls in: @import, url(...), ES module imports."""
    found = re.findall(r"@import\s+(?:url\()?\s*['\"]?([^'\")\s;]+)", text)
    found += re.findall(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)", text)
    found += re.findall(r"\bimport\s+[\w{}*,\s]+\s+from\s+['\"]([^'\"]+)['\"]", text)
    return found


@pytest.fixture(scope="module")
def deck(tmp_path_factory):
    """Lesson 01 exported as slides without running it; (html path, html text)."""
    out = tmp_path_factory.mktemp("slides")
    path = build_slides.build("01", out=out, execute=False, log=lambda *_: None)
    return path, path.read_text(encoding="utf-8")


def test_the_deck_is_written_beside_its_assets(deck):
    path, html = deck
    assert path.name == "01_magnitude_pruning.slides.html"
    assert "Reveal.initialize" in html
    assert (path.parent / "reveal.js" / "dist" / "reveal.js").is_file()
    assert (path.parent / "mathjax" / build_slides.MATHJAX_FILES[0]).is_file()


def test_the_deck_loads_only_local_files(deck):
    path, html = deck
    page = AssetLinks()
    page.feed(html)
    assert page.urls, "the parser found no asset at all"
    remote_urls = [u for u in page.urls if remote(u)]
    assert not remote_urls, f"the deck loads {remote_urls} from the network"
    inline = [u for text in page.inline for u in css_urls(text)
              if remote(u) and not u.startswith("data:")]
    assert not inline, f"inline styles or scripts fetch {inline}"
    missing = [u for u in page.urls if not u.startswith("data:")
               and not (path.parent / urlparse(u).path).exists()]
    assert not missing, f"the deck links {missing}, which are not beside it"
    # the style sheets it links must not fetch fonts from the web either (some reveal.js
    # themes import Google Fonts)
    for url in page.urls:
        if url.endswith(".css"):
            sheet = path.parent / urlparse(url).path
            imported = [u for u in css_urls(sheet.read_text(errors="replace")) if remote(u)]
            assert not imported, f"{url} fetches {imported}"


def test_every_heading_starts_a_slide_and_code_comes_as_fragments(deck):
    path, html = deck
    nb = nbformat.read(ROOT / "lessons" / "01_magnitude_pruning.ipynb", as_version=4)
    level_two = sum(1 for c in nb.cells if c.cell_type == "markdown"
                    for line in c.source.splitlines() if re.match(r"^#{1,2}\s", line))
    sections = html.count("<section")
    assert sections >= level_two, (sections, level_two)
    assert 'class="fragment"' in html


def test_slide_metadata_rules():
    nb = new_notebook(cells=[
        new_markdown_cell("# Title\nintro\n## First\ntext\n```\n# not a heading\n```"),
        new_code_cell("x = 1"),
        new_markdown_cell("### Detail"),
        new_markdown_cell("more text")])
    build_slides.add_slide_metadata(nb)
    kinds = [(c.cell_type, c.metadata["slideshow"]["slide_type"]) for c in nb.cells]
    assert kinds == [("markdown", "slide"), ("markdown", "slide"), ("code", "fragment"),
                     ("markdown", "subslide"), ("markdown", "-")]
    assert nb.cells[1].source.endswith("```")       # the fence stayed with its heading


def test_slide_metadata_set_by_an_author_is_kept():
    cell = new_markdown_cell("## Heading", metadata={"slideshow": {"slide_type": "skip"}})
    nb = build_slides.add_slide_metadata(new_notebook(cells=[cell, new_code_cell("x")]))
    assert nb.cells[0].metadata["slideshow"]["slide_type"] == "skip"
    assert "slideshow" not in nb.cells[1].metadata


def test_widgets_become_their_last_picture_and_readout():
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
    state = {
        "box": {"model_name": "VBoxModel", "state": {
            "children": ["IPY_MODEL_style", "IPY_MODEL_slider", "IPY_MODEL_menu",
                         "IPY_MODEL_readout", "IPY_MODEL_image"]}},
        "style": {"model_name": "HTMLModel", "state": {"value": "<style>.x{}</style>"}},
        "slider": {"model_name": "IntSliderModel", "state": {"description": "pruned %",
                                                             "value": 90}},
        "menu": {"model_name": "DropdownModel", "state": {
            "description": "criterion", "_options_labels": ["global", "random"], "index": 1}},
        "readout": {"model_name": "HTMLModel", "state": {"value": "accuracy <b>91.0%</b>"}},
        "image": {"model_name": "ImageModel", "state": {"format": "png"},
                  "buffers": [{"path": ["value"], "encoding": "base64", "data": png}]},
    }
    view = {"model_id": "box", "version_major": 2, "version_minor": 0}
    nb = new_notebook(cells=[new_code_cell("ex", outputs=[new_output(
        "display_data", data={static_widgets.WIDGET_VIEW: view, "text/plain": "VBox()"})])],
        metadata={"widgets": {static_widgets.WIDGET_STATE: {"state": state}}})
    static_widgets.make_static(nb)
    html_output, image_output = nb.cells[0].outputs
    html = html_output["data"]["text/html"]
    assert "pruned %: 90" in html and "criterion: random" in html
    assert "accuracy <b>91.0%</b>" in html and "<style>" not in html
    assert image_output["data"]["image/png"] == png
    assert "widgets" not in nb.metadata


def test_unknown_lesson_names_say_which_exist():
    with pytest.raises(execute_lessons.LessonError, match="01_magnitude_pruning"):
        execute_lessons.lessons(["99"])


def test_make_slides_asks_for_a_lesson():
    done = subprocess.run(["make", "-s", "-o", ".venv/.installed", "slides"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "LESSON=01" in done.stderr


@pytest.mark.parametrize("module", [build_slides, static_widgets, execute_lessons],
                         ids=lambda m: m.__name__)
def test_docstring_examples_of_the_tools(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
