"""Shared fixtures for the core tests: throwaway plugins and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import sys
import textwrap
import threading
from functools import partial
from pathlib import Path

import pytest

from workshop import _plugins


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Every test gets its own cache and progress file and a fresh registry."""
    monkeypatch.setenv("WORKSHOP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WORKSHOP_PROGRESS", str(tmp_path / "progress.json"))
    monkeypatch.delenv("WORKSHOP_OFFLINE", raising=False)
    monkeypatch.delenv("WORKSHOP_MIRROR", raising=False)
    monkeypatch.delenv("WORKSHOP_PRESET", raising=False)
    monkeypatch.delenv("WORKSHOP_PINS", raising=False)
    monkeypatch.delenv("WORKSHOP_DEBUG", raising=False)
    monkeypatch.delenv("WORKSHOP_XLA_DEFAULTS", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # tracebacks of unexpected errors go here
    _plugins.set_registry(None)
    yield
    _plugins.set_registry(None)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder; '/truncated/<name>' promises more bytes than it sends."""

    requests: list[str]

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):  # noqa: N802
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        if self.path.startswith("/truncated/"):
            data = (Path(self.directory) / self.path.split("/", 2)[2]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data) * 2))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def http_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving ``root``; yields (base_url, root, hits)."""
    root = tmp_path / "served"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    server.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root, server.hits  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_dist(tmp_path, monkeypatch):
    """Install throwaway plugins as a real distribution with entry points on sys.path.

    Returns a function ``make(plugins: dict[entry_name, source_code], science: dict[name, code])``.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created: list[str] = []

    def make(plugins: dict[str, tuple[str, str]], extra_modules: dict[str, str] | None = None,
             embedded: dict[str, bytes] | None = None) -> Path:
        lines = ["[workshop.modules]"]
        for entry, (modname, code) in plugins.items():
            (site / f"{modname}.py").write_text(textwrap.dedent(code))
            created.append(modname)
            lines.append(f"{entry} = {modname}")
        for modname, code in (extra_modules or {}).items():
            if "/" in modname:  # a package file
                p = site / modname
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(textwrap.dedent(code))
                created.append(modname.split("/")[0])
            else:
                (site / f"{modname}.py").write_text(textwrap.dedent(code))
                created.append(modname)
        for rel, data in (embedded or {}).items():
            p = site / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        info = site / "workshop_fake_plugins-0.1.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: workshop-fake-plugins\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        return site

    yield make
    for name in created:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
