"""``mlm up`` / ``mlm serve`` as real processes: a port in use is refused before anything starts,
with a message naming the port and the option that changes it; the uvicorn access log is off
unless ``--verbose``."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from .helpers import REPO, clean_env, free_port, mlm, wait_http

REQUEST_LINE = re.compile(r'"GET /api/health HTTP/1\.1" 200')


def _env(tmp_path: Path) -> dict[str, str]:
    # The checkout under test first: the shared venv's editable install points at another one.
    return clean_env(tmp_path / "home", PYTHONPATH=str(REPO))


def _listening_socket() -> socket.socket:
    """A socket bound and listening on a free loopback port (as another server would be)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def _run(tmp_path: Path, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        mlm(*args),
        cwd=tmp_path,
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


@pytest.mark.slow
def test_up_refuses_an_app_port_in_use_naming_it_and_ui_port(data_dir, tmp_path):
    taken = _listening_socket()
    ui_port = taken.getsockname()[1]
    api_port = free_port()
    try:
        res = _run(
            tmp_path, "up", "--data", str(data_dir), "--port", str(api_port), "--ui-port", str(ui_port)
        )
    finally:
        taken.close()
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"the app port {ui_port} on 127.0.0.1 is already in use" in res.stderr
    assert re.search(r"--ui-port \d+", res.stderr) and f"--ui-port {ui_port}" not in res.stderr
    # Nothing was started: no "is up" banner, no App URL, and the API port is still free.
    assert "is up" not in res.stdout and "App " not in res.stdout
    with socket.socket() as s:
        s.bind(("127.0.0.1", api_port))


@pytest.mark.slow
def test_up_refuses_an_api_port_in_use_suggesting_port(data_dir, tmp_path):
    taken = _listening_socket()
    port = taken.getsockname()[1]
    try:
        res = _run(tmp_path, "up", "--data", str(data_dir), "--no-ui", "--port", str(port))
    finally:
        taken.close()
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"the API port {port} on 127.0.0.1 is already in use" in res.stderr
    assert re.search(r"--port \d+", res.stderr) and f"--port {port} " not in res.stderr
    assert "is up" not in res.stdout


@pytest.mark.slow
def test_serve_refuses_a_port_in_use_suggesting_port(data_dir, tmp_path):
    taken = _listening_socket()
    port = taken.getsockname()[1]
    try:
        res = _run(tmp_path, "serve", "--data", str(data_dir), "--port", str(port))
    finally:
        taken.close()
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"the API port {port} on 127.0.0.1 is already in use" in res.stderr
    assert re.search(r"--port \d+", res.stderr)


def _requests_logged(tmp_path: Path, data_dir: Path, command: str, *extra: str, n: int = 5) -> int:
    """Start ``mlm <command>``, GET /api/health ``n`` times, stop it; request lines in its output
    (``mlm up`` logs to stderr; ``mlm serve`` keeps uvicorn's own log config: access lines on stdout)."""
    port = free_port()
    args = [command, "--data", str(data_dir), "--port", str(port), *extra]
    if command == "up":
        args.append("--no-ui")
    err = tmp_path / f"{command}-{'-'.join(extra) or 'default'}.stderr"
    out = err.with_suffix(".stdout")
    proc = subprocess.Popen(
        mlm(*args),
        cwd=tmp_path,
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=out.open("w"),
        stderr=err.open("w"),
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", proc, 180, err)
        for _ in range(n):
            assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return len(REQUEST_LINE.findall(err.read_text() + out.read_text()))


@pytest.mark.slow
@pytest.mark.parametrize("command", ["up", "serve"])
def test_access_log_is_off_by_default_and_on_with_verbose(data_dir, tmp_path, command):
    assert _requests_logged(tmp_path, data_dir, command) == 0
    # wait_http's first successful probe is a request too: at least the 5 asked here.
    assert _requests_logged(tmp_path, data_dir, command, "--verbose") >= 5


@pytest.mark.slow
def test_up_stops_when_the_app_dies_on_its_own(data_dir, tmp_path):
    """The app exiting while the API runs (killed, or its port taken after the check) is not
    left unnoticed until Ctrl+C: ``mlm up`` says so and exits 1."""
    port, ui_port = free_port(), free_port()
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    proc = subprocess.Popen(
        # --verbose: the INFO line "streamlit started (pid N)" names the child to kill
        mlm("up", "--data", str(data_dir), "--port", str(port), "--ui-port", str(ui_port), "--verbose"),
        cwd=tmp_path,
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=out.open("w"),
        stderr=err.open("w"),
    )
    try:
        wait_http(f"http://127.0.0.1:{ui_port}/_stcore/health", proc, 180, err)
        ui_pid = int(re.search(r"streamlit started \(pid (\d+)\)", err.read_text()).group(1))
        os.kill(ui_pid, signal.SIGKILL)
        code = proc.wait(90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert code == 1, err.read_text()[-3000:]
    assert "error: the app (streamlit) exited with code -9 on its own; shutting down" in err.read_text()
    with pytest.raises(httpx.ConnectError):  # the API stopped with it
        httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=3)
