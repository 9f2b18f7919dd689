"""``mlm up``: ingest, the API and the Streamlit app in one process tree, stopped together.

- **Ingest** fills the ``BookStore`` of one ``MarketData`` that the API reads:
  - on recorded data (``--data DIR`` / ``MLM_DATA_DIR``): every recording is loaded in a background
    thread (``--speed 0``, the default: books end at the end of their recording, as ``mlm ask``
    sees them), or played at recorded pace (``--speed 1``) or N times faster (``--speed N``) by
    ``ingest.replay.Replayer`` threads, so the books move as if live;
  - otherwise the live runtime (``ingest.live.FeedHandler``) on ``settings.venues`` x
    ``settings.api.watch_symbols`` (``BTC/USDT`` becomes ``BTC/USDT:USDT`` on a USD-M venue and
    ``BTC/USD:BTC`` on a COIN-M one), as an asyncio task in the API's event loop.
- **The API**: ``create_app(settings, market=...)`` served by uvicorn in this process and loop.
- **The app**: ``streamlit run frontend/app.py`` as a child process in its own session, with
  ``MLM_API_URL`` pointing at the API (and ``MLM_API__TOKEN`` when one is set); the child gets
  no other secret of the environment (LLM, exchange, database or Logfire keys).

SIGINT (Ctrl+C) or SIGTERM stops everything in order: the Streamlit child (SIGTERM to its process
group, SIGKILL after ``child_stop_timeout_s``), ingest (stop event / cancelled task), then uvicorn
(open requests finish, the lifespan closes the data engine, cache and database); exit code 0. A
second signal during shutdown kills the child at once and exits with 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from market_liquidity_monitor.domain.errors import MLMError

if TYPE_CHECKING:  # heavy imports stay inside the functions: `mlm --help` stays fast
    from market_liquidity_monitor.config import Settings
    from market_liquidity_monitor.ingest.live import FeedHandler
    from market_liquidity_monitor.ingest.replay import RecordingGroup
    from market_liquidity_monitor.market_data import MarketData

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_frontend() -> Path:
    """The Streamlit app ``mlm up`` starts unless ``--app`` names another: the copy shipped inside
    the installed package (``market_liquidity_monitor/frontend/app.py``, built into the wheel from
    ``frontend/`` by setup.py), else the source checkout's ``frontend/app.py`` (editable installs,
    ``python -m`` from a clone)."""
    packaged = Path(__file__).resolve().parent / "frontend" / "app.py"
    return packaged if packaged.is_file() else REPO_ROOT / "frontend" / "app.py"


DEFAULT_FRONTEND = default_frontend()

# Environment variables a Streamlit child never inherits: it talks to the API only.
_CHILD_ENV_DENY = re.compile(
    r"(API_KEY|_SECRET|_PASSWORD|_TOKEN|_PASSPHRASE)$|^MLM_EXCHANGE__|^MLM_AGENT__|^MLM_OBSERVABILITY__"
    r"|^(MLM_)?(DATABASE|REDIS)_URL$|^LOGFIRE_"
)


class ShutdownInProgress(MLMError):
    """Raised inside a replay when the runtime is stopping (the load is abandoned, not failed)."""


# ---------------------------------------------------------------------------------- ingest


def live_feeds(settings: Settings) -> dict[str, list[str]]:
    """Wire symbols to subscribe per venue: ``settings.api.watch_symbols`` on ``settings.venues``.

    ``BASE/QUOTE`` is tried as spot, then as the linear perpetual ``BASE/QUOTE:QUOTE``, then as the
    inverse perpetual ``BASE/USD:BASE``; the first form the venue's adapter maps to a wire symbol
    and back to the same unified symbol wins. Venues without an adapter and symbols no form fits
    are logged and left out. Returns ``{venue: [wire_symbol, ...]}`` (venues with none omitted).
    """
    from market_liquidity_monitor.venues.registry import AdapterRegistry

    feeds: dict[str, list[str]] = {}
    for venue in settings.venues:
        for symbol in settings.api.watch_symbols:
            base, _, rest = symbol.partition("/")
            quote = rest.split(":")[0] or settings.agent.default_quote
            for cand in dict.fromkeys((symbol, f"{base}/{quote}:{quote}", f"{base}/USD:{base}")):
                try:
                    # Fresh adapters: guessing must not leave wrong entries in a shared symbol cache.
                    wire = AdapterRegistry()(venue).venue_symbol(cand)
                    inst = AdapterRegistry()(venue).instrument(wire)
                except MLMError:
                    continue
                except (KeyError, ValueError):
                    continue
                if inst.symbol == cand:
                    feeds.setdefault(venue, []).append(wire)
                    break
            else:
                log.warning("live feed: no %s market on %s; not subscribed", symbol, venue)
    return feeds


def live_feed_handler(settings: Settings, market: MarketData) -> tuple[FeedHandler, dict[str, list[str]]]:
    """A ``FeedHandler`` filling ``market``'s store, with a feed per venue of ``live_feeds(settings)``
    added (not started: ``await feed.run()``); and those feeds, ``{venue: [wire_symbol, ...]}``."""
    from market_liquidity_monitor.ingest.live import FeedHandler

    feeds = live_feeds(settings)
    feed = FeedHandler(market.store, market.registry, settings.ingest, clock=market.clock)
    for venue, symbols in feeds.items():
        feed.add_feed(venue, symbols)
    return feed, feeds


@dataclass
class RecordedIngest:
    """Loads (``speed == 0``) or plays (``speed > 0``) every recording of ``market`` into its store,
    in background threads. ``stop()`` ends them within one batch of records."""

    market: MarketData
    speed: float = 0.0
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    loaded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        groups = self.market.groups
        if self.speed > 0:
            self._start_paced(groups)
        else:
            t = threading.Thread(target=self._load_all, args=(groups,), name="mlm-load", daemon=True)
            self.threads.append(t)
            t.start()

    # ---- speed 0: the same lazy loader the CLI and API use, run ahead of time

    def _progress(self, name: str, n: int) -> None:
        if self.stop_event.is_set():
            raise ShutdownInProgress(f"replay of {name} stopped at record {n:,}: shutting down")

    def _load_all(self, groups: list[RecordingGroup]) -> None:
        t0 = time.monotonic()
        self.market.progress = self._progress
        try:
            # Small captures whose instruments are only known once replayed first (every symbol
            # lookup waits for them), then the big per-instrument files.
            order = sorted(groups, key=lambda g: (bool(g.venue_symbols), _size(g)))
            for g in order:
                # A pause between groups lets a request waiting for the market's load lock in
                # (the lock is not fair: an immediate re-acquire would starve it until the end).
                if self.stop_event.wait(0.05):
                    return
                try:
                    self.market.load_group(g)
                    self.loaded.append(g.name)
                except ShutdownInProgress:
                    return
                except Exception as exc:  # one broken recording must not stop the others
                    self.failed[g.name] = f"{type(exc).__name__}: {exc}"
                    log.exception("loading recording %s failed", g.name)
            log.info(
                "recorded data loaded: %d recordings, %d books in %.1f s",
                len(self.loaded),
                len(self.market.store.instruments()),
                time.monotonic() - t0,
            )
        finally:
            self.done.set()

    # ---- speed > 0: paced playback, one thread per timeline

    def _start_paced(self, groups: list[RecordingGroup]) -> None:
        from market_liquidity_monitor.market_data import session_of

        sessions: dict[str, list[RecordingGroup]] = {}  # one thread per timeline
        for g in groups:
            sessions.setdefault(session_of(g), []).append(g)
        # Books that are being played must not also be loaded lazily by a request.
        self.market.claim(groups)
        for name, gs in sessions.items():
            t = threading.Thread(target=self._play, args=(name, gs), name=f"mlm-play-{name}", daemon=True)
            self.threads.append(t)
            t.start()
        if not sessions:
            self.done.set()

    def _play(self, name: str, groups: list[RecordingGroup]) -> None:
        from market_liquidity_monitor.ingest.clock import ReplayClock
        from market_liquidity_monitor.ingest.replay import Replayer, merge

        store = self.market.store
        clock = ReplayClock()
        seen: set = set()

        def on_record(rec, events) -> None:
            for ev in events:
                inst = ev.instrument
                if inst not in seen:
                    seen.add(inst)
                    store.set_clock(inst, clock)

        rp = Replayer(store, self.market.registry, clock=clock, read_stats=self.market.read_stats)
        try:
            records = merge(*(g.records(self.market.read_stats) for g in groups))
            st = rp.run(records, on_record=on_record, speed=self.speed, stop_event=self.stop_event)
            if not st.stopped:
                log.info("recording %s played to its end (%d records)", name, st.records)
                self.loaded.append(name)
        except Exception as exc:
            self.failed[name] = f"{type(exc).__name__}: {exc}"
            log.exception("playing recording %s failed", name)
        finally:
            if all(not t.is_alive() or t is threading.current_thread() for t in self.threads):
                self.done.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout_s
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("ingest thread %s did not stop within %.0f s", t.name, timeout_s)


def _size(g: RecordingGroup) -> int:
    total = 0
    for f in g.files:
        with contextlib.suppress(OSError):
            total += f.stat().st_size
    return total


# ---------------------------------------------------------------------------------- children


def child_environment(settings: Settings, api_url: str, environ: dict[str, str] | None = None) -> dict:
    """Environment of the Streamlit child: ours minus every secret, plus ``MLM_API_URL`` and the
    API token (the only credential it needs)."""
    env = dict(os.environ if environ is None else environ)
    secrets = _secret_values(settings)
    env = {k: v for k, v in env.items() if not _CHILD_ENV_DENY.search(k.upper()) and v not in secrets}
    env["MLM_API_URL"] = api_url
    if settings.api.token is not None:
        env["MLM_API__TOKEN"] = settings.api.token.get_secret_value()
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    env.setdefault("STREAMLIT_SERVER_HEADLESS", "true")
    return env


def _secret_values(settings: Settings) -> set[str]:
    from market_liquidity_monitor.observability import secret_values

    return set(secret_values(settings))


def streamlit_command(app_path: Path, host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",  # no "Deploy" button or developer menu
    ]


def _client_host(host: str) -> str:
    """Where a local client reaches a server bound to ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::", "[::]") else host


def _url(host: str, port: int) -> str:
    h = _client_host(host)
    return f"http://[{h}]:{port}" if ":" in h else f"http://{h}:{port}"


def port_in_use(host: str, port: int) -> str | None:
    """Why ``(host, port)`` cannot be bound for a server now (the OS error text), None when it can.

    Probed with ``SO_REUSEADDR`` as uvicorn and Streamlit (tornado) bind, so a port left in
    TIME_WAIT by a stopped server counts as free; a port another process listens on does not.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def free_port_near(host: str, port: int, avoid: tuple[int, ...] = (), tries: int = 50) -> int | None:
    """The first port after ``port`` (not in ``avoid``) that can be bound now, for a suggestion."""
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        if candidate not in avoid and port_in_use(host, candidate) is None:
            return candidate
    return None


def port_error(what: str, option: str, host: str, port: int, reason: str, avoid: tuple[int, ...] = ()) -> str:
    """One line saying a port is taken and how to pick another: ``the app port 8501 on 127.0.0.1
    is already in use (Address already in use): stop what uses it, or start with --ui-port 8502``."""
    alt = free_port_near(host, port, avoid)
    hint = f"start with {option} {alt} (free now)" if alt else f"start with {option} <another port>"
    taken = "is already in use" if "in use" in reason.lower() else "cannot be used"
    return f"error: the {what} port {port} on {host} {taken} ({reason}): stop what uses it, or {hint}"


def terminate_process_group(proc: subprocess.Popen, timeout_s: float) -> int | None:
    """SIGTERM to the child's process group, SIGKILL after ``timeout_s``; returns its exit code."""
    if proc.poll() is not None:
        return proc.returncode
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("streamlit (pid %d) ignored SIGTERM for %.0f s; killing it", proc.pid, timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(5)


# ---------------------------------------------------------------------------------- runtime


def _uvicorn_server(app, host: str, port: int, log_level: str, access_log: bool = False):
    import uvicorn

    class _Server(uvicorn.Server):
        # The runtime owns SIGINT/SIGTERM (one shutdown for every component); uvicorn's own
        # handlers would stop only the server and re-raise the signal afterwards.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        log_config=None,  # keep the app's logging (configure_logging) instead of uvicorn's dictConfig
        access_log=access_log,  # one line per request buries the banner: only with --verbose
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return _Server(config)


@dataclass
class Runtime:
    """Everything ``mlm up`` runs. ``await run()`` returns the exit code."""

    settings: Settings
    host: str = "127.0.0.1"
    port: int = 8000
    ui_port: int = 8501
    ui: bool = True
    speed: float = 0.0
    frontend_app: Path = DEFAULT_FRONTEND
    child_stop_timeout_s: float = 10.0
    echo: Callable[[str], None] = print
    echo_error: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr))
    access_log: bool = False
    stop_event: asyncio.Event | None = None
    ui_process: subprocess.Popen | None = None

    async def run(self) -> int:
        from market_liquidity_monitor.api.app import build_market, create_app

        loop = asyncio.get_running_loop()
        stop = self.stop_event = asyncio.Event()
        signals_seen: list[int] = []

        def on_signal(sig: int) -> None:
            signals_seen.append(sig)
            if len(signals_seen) == 1:
                log.info("%s received: shutting down", signal.Signals(sig).name)
                stop.set()
            else:  # impatient second Ctrl+C: no more waiting
                if self.ui_process is not None and self.ui_process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.ui_process.pid, signal.SIGKILL)
                os._exit(1)

        # Both ports are checked before anything loads: a taken port is refused in a second, with
        # the option that changes it, instead of an app that never appears.
        taken = self.port_problems()
        if taken:
            for line in taken:
                self.echo_error(line)
            return 1

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)

        market = build_market(self.settings)
        app = create_app(self.settings, market=market)  # also configures observability
        server = _uvicorn_server(app, self.host, self.port, self.settings.log_level, self.access_log)

        async def serve() -> int:
            try:
                await server.serve()
            except SystemExit as exc:  # uvicorn exits this way when it cannot bind
                return int(exc.code or 1)
            return 0 if server.started else 1

        server_task = asyncio.create_task(serve(), name="uvicorn")
        while not server.started and not server_task.done():
            await asyncio.sleep(0.05)
        if server_task.done():
            log.error(
                "the API did not start on %s:%d (if the port was taken meanwhile, pick another with --port)",
                self.host,
                self.port,
            )
            return server_task.result() or 1

        recorded: RecordedIngest | None = None
        live_task: asyncio.Task | None = None
        feed = None
        if self.settings.data_dir is not None:
            recorded = RecordedIngest(market, speed=self.speed)
            recorded.start()
            source = f"recorded data in {self.settings.data_dir}" + (
                f", played at {self.speed:g}x" if self.speed > 0 else ", loading in the background"
            )
        else:
            feed, feeds = live_feed_handler(self.settings, market)
            app.state.feed = feed
            live_task = asyncio.create_task(feed.run(), name="live-ingest") if feed.connections else None
            source = "live venues: " + (
                "; ".join(f"{v} {', '.join(s)}" for v, s in feeds.items()) or "none configured"
            )

        api_url = _url(self.host, self.port)
        ui_url = None
        if self.ui:
            ui_url = self._start_ui(api_url)

        self.echo(f"Market Liquidity Monitor is up on {source}")
        self.echo(f"  API   {api_url}   (OpenAPI docs: {api_url}/docs)")
        if ui_url:
            self.echo(f"  App   {ui_url}")
        self.echo("Press Ctrl+C to stop.")

        stop_waiter = asyncio.create_task(stop.wait(), name="stop")
        watched = {stop_waiter, server_task}
        if live_task is not None:
            watched.add(live_task)
        ui_exit: asyncio.Future | None = None
        if self.ui_process is not None:  # the app dying (e.g. its port taken meanwhile) stops us too
            ui_exit = loop.run_in_executor(None, self.ui_process.wait)
            watched.add(ui_exit)
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if server_task in done:
            log.error("the API server stopped on its own; shutting down")
            code = 1
        if ui_exit is not None and ui_exit in done and not stop.is_set():
            self.echo_error(
                f"error: the app (streamlit) exited with code {ui_exit.result()} on its own; shutting down "
                f"(its output is above; if port {self.ui_port} was taken, pick another with --ui-port)"
            )
            code = 1
        if (
            live_task is not None
            and live_task in done
            and not live_task.cancelled()
            and live_task.exception()
        ):
            log.error("live ingest failed: %r; shutting down", live_task.exception())
            code = 1

        await self._shutdown(server, server_task, recorded, feed, live_task)
        stop_waiter.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        self.echo("Stopped.")
        return code

    def port_problems(self) -> list[str]:
        """A message per port of this runtime (API, and the app's unless ``ui`` is off) that cannot
        be bound now; empty when both are free."""
        out = []
        reason = port_in_use(self.host, self.port)
        if reason is not None:
            out.append(port_error("API", "--port", self.host, self.port, reason, avoid=(self.ui_port,)))
        if self.ui and self.frontend_app.is_file():
            if self.ui_port == self.port:
                out.append(f"error: the app port {self.ui_port} is the API port: give --ui-port another one")
            else:
                reason = port_in_use(self.host, self.ui_port)
                if reason is not None:
                    out.append(
                        port_error("app", "--ui-port", self.host, self.ui_port, reason, avoid=(self.port,))
                    )
        return out

    def _start_ui(self, api_url: str) -> str | None:
        if not self.frontend_app.is_file():
            log.warning(
                "no Streamlit app at %s; running without the UI (--app PATH points at one; --no-ui to silence)",
                self.frontend_app,
            )
            return None
        cmd = streamlit_command(self.frontend_app, self.host, self.ui_port)
        self.ui_process = subprocess.Popen(
            cmd,
            env=child_environment(self.settings, api_url),
            cwd=str(self.frontend_app.parent.parent),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl+C reaches us only; we stop the child in order
        )
        log.info("streamlit started (pid %d): %s", self.ui_process.pid, " ".join(cmd[1:]))
        return _url(self.host, self.ui_port)

    async def _shutdown(self, server, server_task, recorded, feed, live_task) -> None:
        loop = asyncio.get_running_loop()
        if self.ui_process is not None:
            rc = await loop.run_in_executor(
                None, terminate_process_group, self.ui_process, self.child_stop_timeout_s
            )
            log.info("streamlit stopped (exit code %s)", rc)
        if feed is not None:
            feed.stop()
        if live_task is not None and not live_task.done():
            live_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await live_task
        if recorded is not None:
            await loop.run_in_executor(None, recorded.stop)
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await server_task
        log.info("API stopped")


def run_up(runtime: Runtime) -> int:
    """Run ``runtime`` in a fresh event loop; the exit code."""
    return asyncio.run(runtime.run())


# ---------------------------------------------------------------------------------- command


def up_command(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Run on recorded data in this directory (../shared/data layout)."),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Bind address of the API and the app (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="API port (default 8000).")] = None,
    ui_port: Annotated[int, typer.Option("--ui-port", help="Streamlit app port.")] = 8501,
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Do not start the Streamlit app.")] = False,
    app_path: Annotated[
        Path | None,
        typer.Option("--app", help="Streamlit app to start (default: the one shipped with the package)."),
    ] = None,
    speed: Annotated[
        float,
        typer.Option(
            "--speed",
            help="With --data: 0 = load every recording at once (books at their end); "
            "1 = play at recorded pace; N = N x faster.",
        ),
    ] = 0.0,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help="Log at MLM_LOG_LEVEL (INFO: migrations, replay progress) and every HTTP request "
            "(the uvicorn access log); default: warnings and errors only.",
        ),
    ] = False,
) -> None:
    """Start everything: ingest, the API and the Streamlit app (Ctrl+C stops all of them)."""
    from rich.console import Console

    from market_liquidity_monitor.observability import configure_logging

    if data is not None and not data.is_dir():
        raise typer.BadParameter(f"{data} is not a directory", param_hint="--data")
    if not speed >= 0:
        raise typer.BadParameter(
            f"{speed}: valid speeds are 0 (load at once), 1 (recorded pace) or N > 0 (N x faster)",
            param_hint="--speed",
        )
    if app_path is not None and not (app_path.is_file() and app_path.suffix == ".py"):
        raise typer.BadParameter(f"{app_path} is not a Streamlit app (a .py file)", param_hint="--app")
    from market_liquidity_monitor.config import Settings

    settings = up_log_level(Settings(**({"data_dir": data} if data is not None else {})), verbose)
    configure_logging(settings)
    console = Console(highlight=False)
    err_console = Console(stderr=True, highlight=False)
    runtime = Runtime(
        settings,
        host=host or settings.api.host,
        port=port or settings.api.port,
        ui_port=ui_port,
        ui=not no_ui,
        speed=speed,
        frontend_app=app_path.resolve() if app_path is not None else default_frontend(),
        echo=lambda line: console.print(line, markup=False, soft_wrap=True),
        echo_error=lambda line: err_console.print(line, markup=False, soft_wrap=True),
        access_log=verbose,
    )
    code = run_up(runtime)
    fast_exit(code)


def up_log_level(settings: Settings, verbose: bool) -> Settings:
    """The settings ``mlm up`` runs with: ``log_level`` WARNING, so the banner is not buried in INFO
    lines (uvicorn start-up, Alembic, one per replayed recording), unless ``--verbose`` or an
    explicit ``MLM_LOG_LEVEL`` (environment or ``.env``) asks for another level."""
    if verbose or "log_level" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"log_level": "WARNING"})


@contextlib.contextmanager
def startup_heap() -> Iterator[None]:
    """Run a one-shot command's start-up (imports, settings, services, agent) with the cyclic
    garbage collector paused, then move what is alive at the end (modules, classes, settings,
    the service objects: they live as long as the process) to the permanent generation
    (``gc.freeze``) and resume collecting.

    Python docs, ``gc.freeze``: "move all objects tracked by the garbage collector into a permanent
    generation, i.e. ignore them in all the future collections". Without it the full collections
    of ``mlm ask`` (four while importing, one more while restoring or replaying a recording) each
    walk every object of pydantic-ai, SQLAlchemy, numpy and this package again: about 0.25 s of
    CPU per process on a warm start, more on a replay. Start-up creates almost no cyclic garbage
    (tens of objects per collection), so pausing costs no memory to speak of. Nested or repeated
    use is harmless; the collector is re-enabled only if it was enabled on entry."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def fast_exit(code: int) -> None:
    """Exit now that every component is closed: flush logs (and Logfire, if it sends) and the
    standard streams, then ``os._exit`` - the interpreter's own teardown of the millions of book
    levels (gc passes over every object) takes seconds after the work is done."""
    with contextlib.suppress(Exception):
        import logfire

        logfire.force_flush(timeout_millis=3000)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def register(app: typer.Typer) -> None:
    """Add ``mlm up`` to the CLI."""
    app.command("up")(up_command)


__all__ = [
    "DEFAULT_FRONTEND",
    "RecordedIngest",
    "Runtime",
    "ShutdownInProgress",
    "child_environment",
    "default_frontend",
    "live_feed_handler",
    "live_feeds",
    "port_error",
    "port_in_use",
    "register",
    "run_up",
    "streamlit_command",
    "terminate_process_group",
    "up_command",
    "up_log_level",
]
