"""A Jupyter server on 127.0.0.1 for a test: the formgrader, ``/files/``, extensions' static files.

    with jupyter_server(root) as server:
        status, text = server.get("/static/jupyter_server_mathjax/MathJax.js")
"""

import contextlib
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

from pruning_kit.course.loopback import free_port


def stop(process, timeout=30):
    """Terminate a server process started by a test, and kill it if it does not stop in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def jupyter_server(root, runtime_dir=None, start_timeout=90):
    """Run ``jupyter server`` with ``root`` as its root (and working) folder until the block ends.

    Yields:
        a namespace with ``url`` (``http://127.0.0.1:PORT``), ``token``, and
        ``get(path) -> (status, text)`` sending the token.
    """
    port, token = free_port(), secrets.token_hex(16)
    runtime = Path(runtime_dir or root) / ".jupyter-runtime"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--allow-root"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def get(path):
        request = urllib.request.Request(url + path, headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")

    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                get("/api/status")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"jupyter server did not start on port {port}") from None
                time.sleep(0.5)
        yield SimpleNamespace(url=url, token=token, get=get)
    finally:
        stop(process)
