"""`make book`: the lessons, executed, as a static site that a browser reads from disk.

The test builds the book the way `make book` does, for one lesson only (the build is
the same for every lesson; executing all seven would double the lesson tests' time),
into a temporary folder: lesson 01, whose magnitude-rule equation is wider than the
column at its natural size. The executed lesson comes from ``_build/executed/`` when an
earlier `make book` left a copy whose key still matches the lesson and the kit; else
it is executed once here. Headless Chromium then opens the lesson's page straight from
the folder (``file://``) with every other request aborted, as a reader would, and the
page must show:

- equations typeset by MathJax (``mjx-container`` elements with SVG, no ``$$`` or
  ``\\(`` left in the text);
- figures as ``<img>`` elements that decoded (natural width > 0), each with a real
  description as its ``alt`` text (what it plots against what, its legend), never its
  file path; tables as tables;
- the prose the lesson computed (Markdown outputs) and the static stand-in of its
  explorer;
- no element wider than the text column (wide equations shrink, long code lines wrap);
- one search box;
- no request that had to leave the folder, and no local file missing.
"""

import re
import sys
from pathlib import Path

import pytest

from support.browser import CHROMIUM_FLAGS  # (the chromium fixture: conftest.py)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import build_book  # noqa: E402  (tools/ is put on the path just above)
import figure_alt  # noqa: E402

LESSON = "01_magnitude_pruning"    # equations (one wider than the column), figures, tables,
                                   # computed prose, an explorer
# Elements whose right edge passes the article's, outermost first.
WIDER_THAN_THE_COLUMN = """() => {
  const article = document.querySelector('article');
  const right = article.getBoundingClientRect().right;
  const past = el => el.getBoundingClientRect().width > 0
                     && el.getBoundingClientRect().right > right + 1;
  return Array.from(article.querySelectorAll('*'))
    .filter(el => past(el) && !past(el.parentElement))
    .map(el => `${el.tagName.toLowerCase()}.${el.getAttribute('class') || ''} `
               + `${Math.round(el.getBoundingClientRect().width)} px`);
}"""
SEARCH_BOXES = """() => Array.from(document.querySelectorAll(
    '.search-button-field, input[type=search], form.bd-search'))
    .filter(el => el.getBoundingClientRect().width > 0).length"""


def test_a_figure_is_described_by_its_titles_labels_and_legend():
    import doctest

    import matplotlib
    import torch
    from matplotlib.figure import Figure

    from pruning_kit import plots

    assert doctest.testmod(figure_alt).failed == 0
    matplotlib.use("Agg")
    fig = Figure(figsize=(12, 4))
    left, right = fig.subplots(1, 2)
    plots.weight_histogram(torch.linspace(-1, 1, 500), pruned_threshold=0.2, axes=left,
                           label="fc1", title="before pruning")
    plots.layer_sparsity_bars({"fc1": 0.9, "fc2": 0.5}, axes=right, overall=0.8)
    fig.suptitle("Where the weights go")
    assert figure_alt.describe(fig) == (
        "Figure: Where the weights go. 2 panels. 1) before pruning: a histogram of number of "
        "weights against weight value (dimensionless); legend: fc1; pruned band |w| ≤ τ = 0.2 "
        "(20.0% of weights). 2) a bar chart of sparsity (% of weights pruned) against layer; "
        "legend: whole network (80.0%); sparsity.")


def test_the_book_gives_each_figure_its_description_by_image_hash():
    import base64
    import hashlib

    from nbformat.v4 import new_code_cell, new_notebook, new_output

    png = base64.b64encode(b"\x89PNG picture").decode()
    described = new_output("display_data", data={"image/png": png},
                           metadata={"image/png": {"alt": "Figure: a line plot of y against x."}})
    bare = new_output("display_data", data={"image/png": base64.b64encode(b"other").decode()})
    nb = new_notebook(cells=[new_code_cell("plt.plot(x, y)", outputs=[described]),
                             new_code_cell("# the loss curve\nshow(loss)", outputs=[bare])])
    alts = build_book.figure_alts(nb)
    assert alts[hashlib.sha256(b"\x89PNG picture").hexdigest()] == \
        "Figure: a line plot of y against x."
    assert alts[hashlib.sha256(b"other").hexdigest()] == "A figure drawn by the code “the loss curve”."


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """The book with one lesson, built into a temporary folder; its output folder."""
    out = tmp_path_factory.mktemp("book") / "book"
    index = build_book.build([LESSON], out=out, log=lambda *_: None)
    assert index.is_file()
    return out


@pytest.mark.e2e
def test_the_book_is_a_folder_of_pages(book):
    page = book / "lessons" / f"{LESSON}.html"
    assert page.is_file(), sorted(p.name for p in (book / "lessons").iterdir())
    html = page.read_text(encoding="utf-8")
    assert f"lessons/{LESSON}.html" in (book / "index.html").read_text(encoding="utf-8")
    assert "_static/mathjax/tex-svg-full.js" in html
    assert not re.search(r"<script[^>]+src=\"(https?:)?//", html), "a script comes from the web"
    assert list((book / "_images").glob("*.png")), "no figure was written as an image file"


@pytest.mark.e2e
@pytest.mark.browser
def test_a_lesson_page_renders_offline_with_equations_figures_and_tables(book, chromium,
                                                                        tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    page_url = (book / "lessons" / f"{LESSON}.html").as_uri()
    left, failed, errors = [], [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})

            def route(request_route):
                url = request_route.request.url
                if url.startswith(("file://", "data:", "blob:")):
                    request_route.continue_()
                else:
                    left.append(url)
                    request_route.abort()

            page.route("**/*", route)
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(page_url, wait_until="load", timeout=60_000)

            # MathJax typesets after load: wait until it says it is done
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
                " && document.querySelectorAll('mjx-container svg').length > 0",
                timeout=60_000)
            page.evaluate("() => { MathJax.startup.promise.then(() => {"
                          " document.body.dataset.typeset = 'done'; }); }")
            page.wait_for_selector("body[data-typeset='done']", state="attached",
                                   timeout=60_000)
            article = page.locator("article")
            text = article.inner_text()
            equations = page.locator("mjx-container").count()
            display = page.locator("mjx-container[display='true']").count()
            images = page.evaluate(
                "() => Array.from(document.querySelectorAll('article img')).map("
                "img => ({src: img.getAttribute('src'), complete: img.complete,"
                " width: img.naturalWidth, alt: img.getAttribute('alt') || ''}))")
            too_wide = page.evaluate(WIDER_THAN_THE_COLUMN)
            search_boxes = page.evaluate(SEARCH_BOXES)
            tables = page.locator("article table").count()
            # computed prose: the lesson's Markdown outputs, rendered as paragraphs
            prose = page.locator("article .cell_output p").all_inner_texts()
            page.screenshot(path=tmp_path / "book.png", full_page=False)
        finally:
            browser.close()

    assert not left, f"the page asked the network for {left}"
    assert not failed, f"local files the page needs are missing: {failed}"
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert equations >= 10 and display >= 1, (equations, display)
    assert "$$" not in text and "\\(" not in text and "\\[" not in text, "raw TeX left"
    figures = [i for i in images if "_images/" in (i["src"] or "")]
    assert len(figures) >= 3, images
    broken = [i["src"] for i in images if not i["complete"] or i["width"] == 0]
    assert not broken, f"images that did not load: {broken}"
    undescribed = [i for i in images if len(i["alt"].split()) < 6 or i["src"] in i["alt"]
                   or i["alt"].endswith((".png", ".jpg", ".svg"))]
    assert not undescribed, f"images without a real description: {undescribed}"
    described = [i["alt"] for i in figures]
    assert all(" against " in alt or "explorer" in alt for alt in described), described
    assert not too_wide, f"elements wider than the text column: {too_wide}"
    assert search_boxes == 1, f"{search_boxes} search boxes on the page"
    assert tables >= 2
    assert len(prose) >= 3, f"the lesson's computed Markdown is missing: {prose}"
    assert not [p for p in prose if "**" in p or "$" in p], "computed Markdown left unrendered"
    assert "Interactive explorer" in text
    assert (tmp_path / "book.png").stat().st_size > 10_000
