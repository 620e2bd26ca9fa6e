"""Ports on 127.0.0.1 for the servers a course runs locally (a hub, PostgreSQL, a Dask cluster).

Example:
    >>> port = free_port()
    >>> 1024 <= port <= 65535, wait_for_port(port, timeout=0.2)
    (True, False)
"""

import socket
import time


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=30.0):
    """True once something accepts TCP connections on 127.0.0.1:port, False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
