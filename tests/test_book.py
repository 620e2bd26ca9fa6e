"""`make book`: the lessons, executed, as a static site that a browser reads from disk.

The test builds the book the way `make book` does, for one lesson only (the build is
the same for every lesson; executing all seven would double the lesson tests' time),
into a temporary folder. The executed lesson comes from ``_build/executed/`` when an
earlier `make book` left a copy whose key still matches the lesson and the kit; else
it is executed once here. Headless Chromium then opens the lesson's page straight from
the folder (``file://``) with every other request aborted, and the page must show:

- equations typeset by MathJax (``mjx-container`` elements with SVG, no ``$$`` or
  ``\\(`` left in the text);
- figures as ``<img>`` elements that decoded (natural width > 0), tables as tables;
- the prose the lesson computed (Markdown outputs) and the static stand-in of its
  explorer;
- no request that had to leave the folder, and no local file missing.
"""

import re
import sys
from pathlib import Path

import pytest

from browser_support import CHROMIUM_FLAGS, chromium  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import build_book  # noqa: E402  (tools/ is put on the path just above)

LESSON = "00_compression_overview"    # equations, figures, tables, computed prose, an explorer


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
                " width: img.naturalWidth}))")
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
    assert tables >= 2
    assert len(prose) >= 3, f"the lesson's computed Markdown is missing: {prose}"
    assert not [p for p in prose if "**" in p or "$" in p], "computed Markdown left unrendered"
    assert "Interactive explorer" in text
    assert (tmp_path / "book.png").stat().st_size > 10_000
