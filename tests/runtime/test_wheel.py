"""The built wheel ships the Streamlit app: ``pip install`` of it into a clean venv, then ``mlm up``
starts the API and the app from the installed package (not from this checkout).

The wheel is built from a copy of the files a build sees (pyproject.toml, setup.py, README.md, the
package and frontend/), so the checkout gets no build/ or egg-info. The venv has no pip and no
packages of its own besides the wheel (installed ``--no-deps --no-index``); its dependencies come
from this interpreter's site-packages through a ``.pth`` path line, which adds the directory
without running its ``.pth`` files, so this checkout's editable install is not seen there.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import pytest

from market_liquidity_monitor.config import Settings
from market_liquidity_monitor.market_data import MarketData

from .helpers import REPO, free_port, pid_alive, wait_http


def _copy_sources(dst: Path) -> Path:
    dst.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, dst / name)
    for name in ("market_liquidity_monitor", "frontend"):
        shutil.copytree(REPO / name, dst / name, ignore=ignore)
    return dst


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("MLM_", "LOGFIRE_", "OPENAI_", "ANTHROPIC_", "OPENROUTER_", "PYTHON", "VIRTUAL_ENV")
        )
        and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(MLM_HOME_DIR=str(home), PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


@pytest.mark.slow
def test_installed_wheel_runs_mlm_up_with_the_app(data_dir, tmp_path):
    env = _env(tmp_path / "home")
    src = _copy_sources(tmp_path / "src")
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("market_liquidity_monitor-*.whl")

    # The wheel holds every file of the app as it is in frontend/.
    app_files = sorted(p.relative_to(REPO / "frontend").as_posix() for p in (REPO / "frontend").rglob("*.py"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        shipped = sorted(
            n.removeprefix("market_liquidity_monitor/frontend/")
            for n in names
            if n.startswith("market_liquidity_monitor/frontend/") and n.endswith(".py")
        )
        assert shipped == app_files
        assert (
            zf.read("market_liquidity_monitor/frontend/app.py") == (REPO / "frontend" / "app.py").read_bytes()
        )
        assert "market_liquidity_monitor/storage/migrations/alembic.ini" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    inst = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert inst.returncode == 0, inst.stdout[-2000:] + inst.stderr[-3000:]
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    deps = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "zz_mlm_test_deps.pth").write_text("".join(f"{d}\n" for d in deps))

    where = subprocess.run(
        [
            str(py),
            "-c",
            "import market_liquidity_monitor.runtime as r; print(r.__file__); print(r.default_frontend())",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=True,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(site), where  # the installed package, not this checkout
    assert Path(where[1]) == site / "market_liquidity_monitor" / "frontend" / "app.py"

    port, ui_port = free_port(), free_port()
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    proc = subprocess.Popen(
        [
            str(venv / "bin" / "mlm"),
            "up",
            "--data",
            str(data_dir),
            "--port",
            str(port),
            "--ui-port",
            str(ui_port),
            "--verbose",  # INFO lines: the streamlit pid
        ],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out.open("w"),
        stderr=err.open("w"),
    )
    ui_pid = None
    try:
        health = wait_http(f"http://127.0.0.1:{port}/api/health", proc, 180, err).json()
        assert health["mode"] == "recorded"
        assert wait_http(f"http://127.0.0.1:{ui_port}/_stcore/health", proc, 180, err).text == "ok"
        m = re.search(r"streamlit started \(pid (\d+)\): (.*)", err.read_text())
        assert m, err.read_text()[-2000:]
        ui_pid = int(m.group(1))
        cmdline = Path(f"/proc/{ui_pid}/cmdline").read_text().split("\0")
        assert str(site / "market_liquidity_monitor" / "frontend" / "app.py") in cmdline
        # the app serves its page; the installed API answers from the same book as this checkout
        assert httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=10).status_code == 200
        r = httpx.get(f"http://127.0.0.1:{port}/api/orderbook/binance/BTC/USDT", timeout=120)
        assert r.status_code == 200, r.text
        top = r.json()["top_of_book"]
        market = MarketData.from_recordings(Settings(), data_dir)
        view = market.view(market.resolve("BTC/USDT", "binance"))
        assert (top["best_bid"], top["best_ask"]) == (float(view.bid_prices[0]), float(view.ask_prices[0]))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            pytest.fail(f"mlm up did not stop within 90 s of SIGINT:\n{err.read_text()[-3000:]}")
    assert code == 0, err.read_text()[-3000:]
    assert f"App   http://127.0.0.1:{ui_port}" in out.read_text()
    assert ui_pid is not None and not pid_alive(ui_pid)
