"""JupyterLab as a reader starts it (``make lab``): the server comes up, also as root, serves the
chapters, and a chapter opened through it runs on a kernel the server starts with no error output.

The server runs headless on a free localhost port with a fresh token, and its configuration and
runtime files live in a temporary folder, so the test touches neither the reader's Jupyter set-up
nor the network. Everything is driven through the server's REST API and the kernel websocket, as
the JupyterLab front end drives it. Marked ``book`` so that ``make book-strict`` runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[2]

#: The chapter run through the server: the cheapest one to execute (about 30 s on a busy two-core
#: machine, most of it importing TensorFlow), and it needs no data files.
CHAPTER = "concepts.ipynb"

START_TIMEOUT_S = 60   # the server answering its API
CELL_TIMEOUT_S = 120   # one cell, from execute_request to the kernel going idle


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running ``make lab`` server: its URL, token, process and log."""

    def __init__(self, url: str, token: str, process: subprocess.Popen, log: Path) -> None:
        self.url, self.token, self.process, self.log = url, token, process, log

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else ""

    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 30):
        """One REST call; returns the decoded JSON answer (``None`` for an empty one)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            text = answer.read()
        return json.loads(text) if text else None


def start_lab(tmp: Path) -> Lab:
    """Start ``make lab`` with a configuration that keeps it headless, local and token-protected."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("`make` is missing; the test starts JupyterLab the way readers do, with `make lab`.")
    port, token = free_port(), secrets.token_hex(24)
    config = tmp / "config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {"ip": "127.0.0.1", "port": port, "port_retries": 0, "open_browser": False},
        "IdentityProvider": {"token": token},
    }))
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               IPYTHONDIR=str(tmp / "ipython"), TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0")
    command = [make, "-s", "--no-print-directory", "-o", "setup", "lab"]  # -o: never reinstall here
    if (Path(sys.prefix) / "bin" / "jupyter").is_file():
        command.append(f"VENV={sys.prefix}")  # the environment running the tests
    log = tmp / "lab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, process, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"`make lab` exited with {process.returncode} before serving:\n{lab.log_tail()}")
        try:
            lab.api("GET", "/api/status", timeout=5)
            return lab
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                stop_lab(lab)
                pytest.fail(f"JupyterLab did not answer within {START_TIMEOUT_S} s:\n{lab.log_tail()}")
            time.sleep(0.5)


def stop_lab(lab: Lab) -> None:
    """Ask the server to shut down (it stops its kernels); signal its process group if it does not."""
    try:
        lab.api("POST", "/api/shutdown", timeout=10)
        lab.process.wait(timeout=20)
    except Exception:  # noqa: BLE001 - whatever went wrong, the processes must not outlive the test
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if lab.process.poll() is not None:
                break
            try:
                os.killpg(lab.process.pid, sig)  # make, its shell and the server: one new session
                lab.process.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = start_lab(tmp_path_factory.mktemp("lab"))
    try:
        yield server
    finally:
        stop_lab(server)
    assert server.process.returncode is not None, "the JupyterLab server is still running"


def test_lab_serves_the_chapters(lab):
    request = urllib.request.Request(f"{lab.url}/lab/tree/{CHAPTER}",
                                     headers={"Authorization": f"token {lab.token}"})
    with urllib.request.urlopen(request, timeout=30) as page:
        assert page.status == 200 and b"JupyterLab" in page.read()
    listing = lab.api("GET", "/api/contents/?content=1")
    names = {item["name"] for item in listing["content"]}
    assert CHAPTER in names, f"`make lab` should open chapters/, it lists {sorted(names)}"
    with pytest.raises(urllib.error.HTTPError) as refused:  # and nobody else gets in
        urllib.request.urlopen(f"{lab.url}/api/contents/{CHAPTER}", timeout=30)
    assert refused.value.code == 403


def message(msg_type: str, content: dict, session: str) -> dict:
    """A shell-channel message in the Jupyter messaging protocol (v5.3), JSON websocket framing."""
    header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": session,
              "username": "xcatrec-test", "version": "5.3", "date": datetime.now(timezone.utc).isoformat()}
    return {"header": header, "parent_header": {}, "metadata": {}, "content": content,
            "channel": "shell", "buffers": []}


async def request(ws, msg: dict, timeout: float) -> list[dict]:
    """Send ``msg`` and collect its iopub messages until the kernel is idle and the reply arrived."""
    await ws.write_message(json.dumps(msg))
    msg_id, seen, reply, idle = msg["header"]["msg_id"], [], False, False
    deadline = time.monotonic() + timeout
    while not (reply and idle):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{msg['header']['msg_type']} took longer than {timeout} s")
        raw = await asyncio.wait_for(ws.read_message(), left)
        if raw is None:
            raise ConnectionError("the server closed the kernel websocket")
        if not isinstance(raw, str):  # binary frames carry buffers (widgets); no errors come that way
            continue
        answer = json.loads(raw)
        if answer.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        seen.append(answer)
        kind = answer["header"]["msg_type"]
        reply = reply or (answer["channel"] == "shell" and kind.endswith("_reply"))
        idle = idle or (kind == "status" and answer["content"]["execution_state"] == "idle")
    return seen


def errors_in(answers: list[dict]) -> list[str]:
    """The error output among a cell's messages: tracebacks, failed replies, stderr tracebacks."""
    found = []
    for answer in answers:
        kind, content = answer["header"]["msg_type"], answer["content"]
        if kind == "error":
            found.append(f"{content['ename']}: {content['evalue']}")
        elif kind == "execute_reply" and content.get("status") != "ok":
            found.append(f"execute_reply {content.get('status')}: {content.get('evalue', '')}")
        elif kind == "stream" and content["name"] == "stderr" and "Traceback" in content["text"]:
            found.append(content["text"])
    return found


async def run_cells(lab: Lab, kernel_id: str, sources: list[str]) -> list[str]:
    """Run the cells one by one on the kernel's websocket; stop at the first with error output."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    session = uuid.uuid4().hex
    url = f"{lab.url.replace('http', 'ws', 1)}/api/kernels/{kernel_id}/channels?session_id={session}"
    ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {lab.token}"}))
    try:
        await request(ws, message("kernel_info_request", {}, session), START_TIMEOUT_S)
        for number, source in enumerate(sources, 1):
            content = {"code": source, "silent": False, "store_history": True, "user_expressions": {},
                       "allow_stdin": False, "stop_on_error": True}
            errors = errors_in(await request(ws, message("execute_request", content, session),
                                             CELL_TIMEOUT_S))
            if errors:
                return [f"code cell {number}: {e}" for e in errors]
        return []
    finally:
        ws.close()


def test_a_chapter_runs_on_a_kernel_the_server_starts(lab):
    model = lab.api("GET", f"/api/contents/{CHAPTER}?type=notebook&content=1")
    sources = ["".join(c["source"]) for c in model["content"]["cells"] if c["cell_type"] == "code"]
    assert sources, f"{CHAPTER} has no code cells"
    kernel = lab.api("POST", "/api/kernels", {"name": "python3", "path": CHAPTER})
    try:
        errors = asyncio.run(run_cells(lab, kernel["id"], sources))
    finally:
        lab.api("DELETE", f"/api/kernels/{kernel['id']}")
    assert not errors, "\n".join(errors)
    assert lab.api("GET", "/api/kernels") == []
