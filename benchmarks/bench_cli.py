"""CLI start-up benchmark: whole ``mlm`` processes on the recorded data, timed wall-clock over
several runs (median, min, max; and the median CPU time, user + sys, steadier on a shared
machine), so imports, settings, the replay or checkpoint restore, the
answer and the exit all count.

Cases (each a fresh process; ``MLM_HOME_DIR`` is a scratch directory, so the alert database is
the same empty one for every case):

- ``help``: ``mlm --help``;
- ``ask_single_replay`` / ``ask_cross_replay``: ``mlm ask`` with disk checkpoints off
  (``MLM_INGEST__CHECKPOINT_CACHE=false``): every process replays the recordings it needs, the
  baseline;
- ``ask_single_cold`` / ``ask_cross_cold``: checkpoints on, an empty checkpoint directory per run
  (replay, then write the checkpoint);
- ``ask_single_warm`` / ``ask_cross_warm``: checkpoints on, the directory filled by one earlier
  process: the recordings are restored, not replayed.

Single-book question: the 5 BTC market impact on Binance spot; cross-venue: a 5 BTC compare across
every venue. Target (same run): the warm single-book ``mlm ask`` at least 3x faster than the full
replay of the same data (median ``ask_single_replay`` / median ``ask_single_warm`` >= 3). The
answers of all ``ask`` cases are checked equal per question (same numbers with or without
checkpoints). Usage::

    python benchmarks/bench_cli.py [--data ../shared/data] [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SINGLE = "What is the market impact of buying 5 BTC on binance?"
CROSS = "Compare buying 5 BTC across all venues"
TARGET_WARM_SPEEDUP = 3.0


def _env(home: Path, ckpt: Path | None) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE (set on this sandbox, not by Python or pip) would make every process
    # compile this package's sources again (~0.35 s); a user's install has its bytecode cached
    # (pip compiles a wheel's modules at install), so the children run as a user's would.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLM_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["MLM_HOME_DIR"] = str(home)
    env["PYTHONPATH"] = str(REPO)
    if ckpt is None:
        env["MLM_INGEST__CHECKPOINT_CACHE"] = "false"
    else:
        env["MLM_INGEST__CHECKPOINT_DIR"] = str(ckpt)
    return env


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str, float]:
    """(wall s, stdout, CPU s = user + sys of the child) of one ``mlm`` process."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "market_liquidity_monitor.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode != 0:
        raise SystemExit(f"mlm {' '.join(args[:2])} failed ({p.returncode}): {p.stderr[-2000:]}")
    return wall, p.stdout, cpu


def _answer_numbers(stdout: str) -> str:
    """The tool results of an ``mlm ask --json`` answer (the numbers), for the equality check."""
    calls = json.loads(stdout)["tool_calls"]
    return json.dumps([c["result"] for c in calls], sort_keys=True, default=str)


def bench(data: Path, runs: int) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="mlm-bench-cli-"))
    home = scratch / "home"
    home.mkdir()
    results: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    answers: dict[str, set[str]] = {"single": set(), "cross": set()}
    ask = {"single": ["ask", SINGLE, "--data", str(data), "--json"],
           "cross": ["ask", CROSS, "--data", str(data), "--json"]}  # fmt: skip
    try:
        warm_dir = scratch / "warm"
        for q in ("single", "cross"):  # fill the warm directory once (not timed)
            answers[q].add(_answer_numbers(_run(ask[q], _env(home, warm_dir))[1]))
        for i in range(runs):
            wall, _, c = _run(["--help"], _env(home, None))
            results.setdefault("help", []).append(wall)
            cpu.setdefault("help", []).append(c)
            for q in ("single", "cross"):
                for mode in ("replay", "cold", "warm"):
                    if mode == "replay":
                        ck = None
                    elif mode == "cold":
                        ck = scratch / f"cold-{q}-{i}"
                    else:
                        ck = warm_dir
                    wall, out, c = _run(ask[q], _env(home, ck))
                    results.setdefault(f"ask_{q}_{mode}", []).append(wall)
                    cpu.setdefault(f"ask_{q}_{mode}", []).append(c)
                    answers[q].add(_answer_numbers(out))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    cases = {
        name: {
            "median_s": round(statistics.median(v), 3),
            "min_s": round(min(v), 3),
            "max_s": round(max(v), 3),
            "cpu_median_s": round(statistics.median(cpu[name]), 3),
            "runs": len(v),
        }
        for name, v in results.items()
    }
    speedup = cases["ask_single_replay"]["median_s"] / cases["ask_single_warm"]["median_s"]
    cpu_speedup = cases["ask_single_replay"]["cpu_median_s"] / cases["ask_single_warm"]["cpu_median_s"]
    return {
        "cases": cases,
        "warm_single_cpu_speedup_vs_replay": round(cpu_speedup, 2),
        "warm_single_speedup_vs_replay": round(speedup, 2),
        "warm_cross_speedup_vs_replay": round(
            cases["ask_cross_replay"]["median_s"] / cases["ask_cross_warm"]["median_s"], 2
        ),
        "target_warm_single_speedup": TARGET_WARM_SPEEDUP,
        "meets_target": speedup >= TARGET_WARM_SPEEDUP,
        "answers_identical": {q: len(a) == 1 for q, a in answers.items()},
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=(REPO / ".." / "shared" / "data").resolve())
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    if a.runs < 1:
        ap.error("--runs must be >= 1")
    if not a.data.is_dir():
        ap.error(f"{a.data} is not a directory")
    # Bytecode compiled once, before any timed process (as pip does at install time).
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "market_liquidity_monitor")],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )
    res = bench(a.data, a.runs)
    if a.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{'case':<20} {'median s':>9} {'min s':>7} {'max s':>7} {'CPU s':>7}")
    for name, c in res["cases"].items():
        print(
            f"{name:<20} {c['median_s']:>9.3f} {c['min_s']:>7.3f} {c['max_s']:>7.3f} {c['cpu_median_s']:>7.3f}"
        )
    print(
        f"warm single-book ask vs full replay: {res['warm_single_speedup_vs_replay']}x "
        f"(target >= {TARGET_WARM_SPEEDUP}x: {'met' if res['meets_target'] else 'NOT met'}); "
        f"answers identical: {res['answers_identical']}"
    )
    if not res["meets_target"] or not all(res["answers_identical"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
