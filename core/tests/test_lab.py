"""JupyterLab on the lesson notebooks: `workshop lessons MODULE --open` serves them on
127.0.0.1 with a token, an exercise notebook runs through the server's own kernel (REST and
kernel websocket, as JupyterLab does), and Ctrl-C stops the server."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from workshop import _lab
from workshop.cli import main

needs_lab = pytest.mark.skipif(
    not _lab.lab_installed(), reason="JupyterLab is not installed here ('uv sync' installs it; or pip install jupyterlab)")

TINY_PLUGIN = '''
from workshop import hookimpl, ModuleDeclaration, Lesson
@hookimpl
def workshop_module():
    return ModuleDeclaration(name="tinylab", title="Tiny", summary="for tests", minutes=1, package="workshop_tinylab",
                             lessons=[Lesson("01_one", "One", "lessons/01_one.py")])
'''


def test_open_without_jupyterlab_writes_the_notebooks_and_names_the_fix(fake_dist, tmp_path, monkeypatch):
    fake_dist({"tinylab": ("workshop_tinylab_plugin", TINY_PLUGIN)},
              extra_modules={"workshop_tinylab/__init__.py": "",
                             "workshop_tinylab/lessons/01_one.py": "# %% [markdown]\n# # One\n\n# %%\nx = 1\n"})
    monkeypatch.setattr(_lab, "lab_installed", lambda: False)
    res = CliRunner().invoke(main, ["lessons", "tinylab", "--to", str(tmp_path / "nb"), "--open"])
    assert res.exit_code == 1, res.output
    assert (tmp_path / "nb" / "01_one.ipynb").is_file()
    assert "JupyterLab is not installed" in res.output
    assert "uv sync" in res.output and "pip install jupyterlab" in res.output
    assert "Traceback" not in res.output


class KernelChannel:
    """Executes code in a kernel the Jupyter server started, over the server's websocket."""

    def __init__(self, base_url: str, token: str, kernel_id: str):
        import websocket  # websocket-client, a dependency of jupyter_server

        self.session = uuid.uuid4().hex
        self.ws = websocket.create_connection(
            f"{base_url.replace('http', 'ws', 1)}/api/kernels/{kernel_id}/channels?session_id={self.session}",
            header=[f"Authorization: token {token}"], timeout=240)

    def run(self, code: str) -> tuple[str, list[str]]:
        """(text the cell printed or returned, its errors)."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": self.session,
                       "username": "test", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        text, errors = [], []
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id or msg.get("channel") != "iopub":
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                text.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                text.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                errors.append(f"{content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(text), errors

    def close(self) -> None:
        self.ws.close()


def _api(base_url: str, token: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(f"{base_url}{path}", method="POST" if body is not None else "GET",
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.loads(reply.read())


def _lines_of(stream, found: queue.Queue) -> None:
    for line in stream:
        found.put(line)


@needs_lab
@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT, as Ctrl-C does in a POSIX terminal")
def test_lessons_open_serves_an_exercise_notebook_that_runs_on_the_server_and_ctrl_c_stops_it(tmp_path):
    pytest.importorskip("websocket", reason="websocket-client (a jupyter_server dependency) is not installed")
    folder = tmp_path / "nb"
    env = {**os.environ, "WORKSHOP_PRESET": "tiny", "MPLBACKEND": "Agg", "IPYTHONDIR": str(tmp_path / "ipython"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter")}
    cmd = [sys.executable, "-c", "from workshop.cli import main; main()",
           "lessons", "intro", "--to", str(folder), "--solutions", "--open", "--no-browser"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines_of, args=(proc.stdout, lines), daemon=True).start()
    try:
        url = None
        while url is None:
            line = lines.get(timeout=240)
            if "?token=" in line:
                url = line.strip()
        assert url.startswith("http://127.0.0.1:")
        base_url, token = url.split("/lab?token=")

        exercise = nbformat.read(folder / "01_numpy_api.ipynb", as_version=4)
        solution = nbformat.read(folder / "01_numpy_api_solution.ipynb", as_version=4)
        session = _api(base_url, token, "/api/sessions", {"path": "01_numpy_api.ipynb", "type": "notebook",
                                                          "name": "01_numpy_api.ipynb", "kernel": {"name": "python3"}})
        kernel = KernelChannel(base_url, token, session["kernel"]["id"])
        try:
            # The cells in order, up to the first exercise's check.
            for cell in exercise.cells:
                if cell.cell_type != "code":
                    continue
                text, errors = kernel.run(cell.source)
                assert not errors, (cell.source[:80], errors)
                if cell.source.startswith('check("intro.set_diagonal"'):
                    break
            assert "intro.set_diagonal not attempted yet" in text and "stub" in text, text
            wrong, _ = kernel.run("def set_diagonal(a, value):\n    return a\n" + cell.source)
            assert "intro.set_diagonal:" in wrong and "passed" not in wrong, wrong
            answer = next(c.source for c in solution.cells if c.source.startswith("def set_diagonal"))
            right, errors = kernel.run(answer + "\n" + cell.source)
            assert "intro.set_diagonal passed" in right and not errors, right
        finally:
            kernel.close()

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        err = proc.stderr.read()
        assert "JupyterLab stopped." in err and "Traceback" not in err, err
        with pytest.raises(urllib.error.URLError):
            _api(base_url, token, "/api/status")
    finally:
        if proc.poll() is None:  # a failure above: stop the server too, as Ctrl-C does
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _chromium() -> str | None:
    import shutil

    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome", "chrome"))), None)


class DevTools:
    """A headless Chromium driven through the DevTools protocol (over websocket-client)."""

    def __init__(self, binary: str, profile: Path):
        import websocket

        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0",
             "--remote-allow-origins=*", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"  # Chromium writes the port it chose here
        deadline = time.monotonic() + 120
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert self.process.poll() is None and time.monotonic() < deadline, "Chromium did not start"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as reply:
            page = next(t for t in json.loads(reply.read()) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=120, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 240):
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            assert time.monotonic() < deadline, f"the page never showed {what}"
            time.sleep(0.25)
        return value

    def close(self) -> None:
        self.ws.close()
        self.process.terminate()
        self.process.wait(30)


@needs_lab
@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="no Chromium or Chrome on PATH (apt-get install chromium runs this test)")
def test_in_a_browser_jupyterlab_runs_an_exercise_notebook_and_shows_its_check_verdict(tmp_path, monkeypatch):
    pytest.importorskip("websocket", reason="websocket-client (a jupyter_server dependency) is not installed")
    from workshop._plugins import registry
    from workshop.lessons import write_lessons

    folder = tmp_path / "nb"
    write_lessons(registry().get("intro"), folder)
    config = tmp_path / "jupyter"
    config.mkdir()
    # window.jupyterapp: the page's own command registry runs the cells, as the Run menu does.
    (config / "jupyter_lab_config.json").write_text(json.dumps({"LabApp": {"expose_app_in_browser": True}}))
    for name, value in {"JUPYTER_CONFIG_DIR": config, "JUPYTER_RUNTIME_DIR": tmp_path / "runtime",
                        "IPYTHONDIR": tmp_path / "ipython", "WORKSHOP_PRESET": "tiny", "MPLBACKEND": "Agg"}.items():
        monkeypatch.setenv(name, str(value))
    server = _lab.start_lab(folder, open_browser=False)
    browser = None
    try:
        browser = DevTools(_chromium(), tmp_path / "chromium")
        browser.call("Page.navigate", url=f"{server.base_url}/lab/tree/01_numpy_api.ipynb?token={server.token}")
        # A headless window has no focus, so the notebook is found among the main area's widgets.
        panel = ("(window.jupyterapp && Array.from(window.jupyterapp.shell.widgets('main'))"
                 ".find(w => w.sessionContext && w.sessionContext.session))")
        browser.wait_for(f"(p => !!(p && p.sessionContext.session.kernel && p.sessionContext.session.kernel.status"
                         f" === 'idle'))({panel})", "the notebook with its kernel")
        assert browser.evaluate(f"(p => (window.jupyterapp.shell.activateById(p.id),"
                                f" window.jupyterapp.commands.execute('notebook:run-all-cells'), true))({panel})")
        text = browser.wait_for("(t => t.includes('intro.set_diagonal not attempted yet') && t)"
                                "((document.querySelector('.jp-Notebook') || {}).textContent || '')",
                                "the check's verdict")
        assert "intro.set_diagonal not attempted yet" in text and "stub" in text
    finally:
        if browser is not None:
            browser.close()
        _lab.stop_lab(server)
