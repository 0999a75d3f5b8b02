"""JupyterLab on a folder of notebooks: a server on 127.0.0.1, run by this Python, with a
token of its own, stopped cleanly by :func:`stop_lab` (``workshop lessons MODULE --open``)."""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

#: How to get JupyterLab into the environment ``workshop`` runs in.
INSTALL_HINT = ("'uv sync' in a clone of the workshop installs it with everything else; with pip: "
                "pip install jupyterlab (or pip install 'workshop-core[lab]')")


class LabError(Exception):
    """JupyterLab is missing, or its server did not start; the message names the fix."""


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab server.

    Arguments:
        process: the server's process (in a process group of its own, so that Ctrl-C in
            the terminal reaches only ``workshop``, which then stops it).
        base_url: ``http://127.0.0.1:PORT``.
        token: the token every request must carry.
    """

    process: subprocess.Popen
    base_url: str
    token: str

    @property
    def url(self) -> str:
        """The address to open in a browser, token included."""
        return f"{self.base_url}/lab?token={self.token}"


def lab_installed() -> bool:
    """JupyterLab is importable by this Python."""
    return importlib.util.find_spec("jupyterlab") is not None


def has_display() -> bool:
    """A browser could be shown here (not a bare SSH session or a container)."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_lab(folder: Path, *, open_browser: bool, port: int | None = None, timeout: float = 120.0) -> LabServer:
    """Start JupyterLab on ``folder`` and return once it answers.

    The server listens on 127.0.0.1 only, on ``port`` (default: a free one), with a fresh
    token passed through the environment (not the command line, which other users can
    read). JupyterLab opens a browser tab itself when ``open_browser`` is true.

    Raises:
        LabError: JupyterLab is not installed, or the server stopped or did not answer
            within ``timeout`` seconds.
    """
    if not lab_installed():
        raise LabError(f"JupyterLab is not installed in this Python environment ({sys.executable}): {INSTALL_HINT}.")
    port = free_port() if port is None else port
    token = secrets.token_hex(24)
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={Path(folder).resolve()}",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--ServerApp.open_browser={open_browser}", "--log-level=WARN"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # As root (a container, Colab) Jupyter refuses to start; it listens on 127.0.0.1 with a token.
        cmd.append("--ServerApp.allow_root=True")
    # Its own process group: Ctrl-C in the terminal must not reach the server, which would
    # ask "Shutdown this Jupyter server (y/[n])?" on the same terminal.
    group = ({"start_new_session": True} if os.name == "posix"
             else {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)})
    process = subprocess.Popen(cmd, env={**os.environ, "JUPYTER_TOKEN": token}, stdin=subprocess.DEVNULL, **group)
    server = LabServer(process, f"http://127.0.0.1:{port}", token)
    try:
        _wait_until_up(server, timeout)
    except BaseException:
        stop_lab(server)
        raise
    return server


def _wait_until_up(server: LabServer, timeout: float) -> None:
    request = urllib.request.Request(f"{server.base_url}/api/status",
                                     headers={"Authorization": f"token {server.token}"})
    deadline = time.monotonic() + timeout
    while True:
        code = server.process.poll()
        if code is not None:
            raise LabError(f"JupyterLab stopped at start with exit code {code} (its messages are above); "
                           "if the port was taken, run the command again")
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise LabError(f"JupyterLab did not answer on {server.base_url} within {timeout:.0f} s; "
                           "its messages, if any, are above")
        time.sleep(0.2)


def stop_lab(server: LabServer, grace: float = 10.0) -> int:
    """Stop the server (its kernels shut down with it); its exit code."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(grace)
        except subprocess.TimeoutExpired:
            server.process.kill()
    return server.process.wait()
