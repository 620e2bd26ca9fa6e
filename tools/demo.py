"""``make demo``: a notebook presented with Voilà, ready when the lecturer opens the page.

Voilà runs the notebook and shows only its text and widgets. This starts it with
the course's settings (``jupyter_config/demo``):

- a **preheated kernel**: Voilà runs the notebook as soon as the server starts and
  keeps the result ready, so opening (or reloading) the page shows the sliders at
  once instead of after the kernel started, imported PyTorch and built the
  explorers; after each page Voilà prepares the next kernel in the background;
- a page template without requests to a CDN (the ``pk-demo`` template: Voilà's
  ``lab`` template minus its Font Awesome link, which its own bundle already
  holds), so the page loads offline without a failed request;
- nbgrader's JupyterLab extension left out: it needs JupyterLab and fails in Voilà;
- one OpenMP thread per kernel, which answers fastest for the course's small
  networks on a laptop.

Usage:
    .venv/bin/python tools/demo.py                                   # make demo
    .venv/bin/python tools/demo.py lessons/03_snip.ipynb --port 8867  # make demo DEMO=... DEMO_PORT=...
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "lessons" / "demo_live.ipynb"
PORT = 8866
CONFIG = Path("jupyter_config") / "demo"


def _prepend(path: Path, current: str | None) -> str:
    return str(path) + (os.pathsep + current if current else "")


def environment(root: Path = ROOT, base=None) -> dict:
    """The environment Voilà runs with: the demo's config and template first on Jupyter's paths.

    Example:
        >>> env = environment(Path("/course"), base={"PATH": "/usr/bin"})
        >>> env["JUPYTER_CONFIG_PATH"], env["JUPYTER_PATH"], env["OMP_NUM_THREADS"]
        ('/course/jupyter_config/demo', '/course/jupyter_config/demo/share', '1')
    """
    root = Path(root).resolve()
    base = dict(os.environ if base is None else base)
    return {**base,
            "JUPYTER_CONFIG_PATH": _prepend(root / CONFIG, base.get("JUPYTER_CONFIG_PATH")),
            "JUPYTER_PATH": _prepend(root / CONFIG / "share", base.get("JUPYTER_PATH")),
            "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
            "PATH": _prepend(Path(sys.executable).parent, base.get("PATH"))}


def command(notebook: Path = NOTEBOOK, root: Path = ROOT, *, port: int = PORT,
            open_browser: bool = True, base_env=None) -> tuple[list[str], dict]:
    """``(argv, env)`` that serve ``notebook`` with Voilà on ``127.0.0.1:port``."""
    argv = [sys.executable, "-m", "voila", str(notebook), f"--port={port}",
            "--Voila.ip=127.0.0.1", "--Voila.port_retries=0"]
    if not open_browser:
        argv.append("--no-browser")
    return argv, environment(root, base_env)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=NOTEBOOK)
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        print(f"no notebook at {args.notebook}", file=sys.stderr)
        return 2
    command_line, env = command(args.notebook.resolve(), port=args.port)
    print(f"presenting {args.notebook} at http://127.0.0.1:{args.port}/ (the first page is ready "
          f"once Voilà has run the notebook: a few seconds, longer on the first run, which trains)")
    os.execve(command_line[0], command_line, env)
    return 0        # not reached


if __name__ == "__main__":
    sys.exit(main())
