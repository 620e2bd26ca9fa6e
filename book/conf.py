"""Sphinx configuration of the course book (`make book`; see tools/build_book.py).

The pages are the lessons, already executed by tools/execute_lessons.py, rendered by
MyST-NB with the Sphinx Book Theme. Everything a page needs is copied into the site:
MathJax 3 (SVG output: no web fonts to fetch) comes from the PyPI package
sphinx-mathjax-offline, the theme ships its own fonts and icons, so the folder reads
offline from disk.
"""

import datetime
import importlib.metadata
import importlib.util
import json
import platform
import shutil
from pathlib import Path

import sphinx

project = "Neural-network compression, hands on"
author = "the course authors"
copyright = f"{datetime.date.today().year}, {author}"

extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": True,     # the executed notebook, from the site's own _sources
    "use_fullscreen_button": False,
    # One search box, in the sidebar: the PyData theme would add a second one to the header
    "navbar_persistent": [],
}
html_last_updated_fmt = "%Y-%m-%d"
html_context = {"default_mode": "light"}   # a page opened from disk has no stored choice yet

# ---- notebooks: executed beforehand, shown as they ran
nb_execution_mode = "off"
nb_output_stderr = "remove"          # warnings of the libraries, not part of the lesson
nb_render_markdown_format = "myst"   # the lessons' computed prose contains $math$
myst_enable_extensions = ["dollarmath", "amsmath", "substitution"]
myst_heading_anchors = 3
nb_ipywidgets_js = {}                # widgets are made static before the build: no CDN script
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

# ---- math: a local MathJax 3 with SVG output
MATHJAX_FILES = ("tex-svg-full.js", "ui")
mathjax_path = "mathjax/tex-svg-full.js"       # relative to _static
_mathjax_config = {"tex": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]},
                   "svg": {"fontCache": "global"}}
if sphinx.version_info >= (9,):
    mathjax4_config = _mathjax_config           # Sphinx 9 names its MathJax setting so
else:
    mathjax3_config = _mathjax_config


def _packaged_mathjax() -> Path:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("the book needs MathJax from the PyPI package sphinx-mathjax-offline: "
                           "run `make setup` (or pip install -e '.[dev]')")
    return Path(spec.origin).parent / "static" / "mathjax"


def _copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    source, target = _packaged_mathjax(), Path(app.outdir) / "_static" / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    for name in MATHJAX_FILES:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, dirs_exist_ok=True)
        else:
            shutil.copy2(source / name, target / name)


# ---- what the book says about its own build
myst_substitutions = {
    "built_on": datetime.date.today().isoformat(),
    "machine": f"{platform.machine()} {platform.system()}, Python {platform.python_version()}, "
               f"PyTorch {importlib.metadata.version('torch')}",
}


# ---- every figure described (tools/build_book.py writes figure_alts.json: image hash -> text)
def _describe_figures(app, doctree):
    from docutils import nodes

    alts_file = Path(app.srcdir) / "figure_alts.json"
    alts = json.loads(alts_file.read_text(encoding="utf-8")) if alts_file.is_file() else {}
    for image in doctree.findall(nodes.image):
        digest = Path(image.get("uri", "")).name.split(".")[0]
        if digest in alts:
            image["alt"] = alts[digest]


def setup(app):
    _packaged_mathjax()                  # fail at the start, not after the whole build
    app.connect("build-finished", _copy_mathjax)
    app.connect("doctree-read", _describe_figures)
