"""A real uvicorn server in a thread on a free loopback port, for behaviour a TestClient cannot
show (access logs, streamed bodies, WebSocket closes)."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn


class UvicornThread:
    """``with UvicornThread(app) as srv: srv.url`` -> ``http://127.0.0.1:<port>``."""

    def __init__(self, app: Any, **config: Any):
        config.setdefault("log_level", "warning")
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, **config))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 600
        while not self.server.started and time.monotonic() < deadline and self.thread.is_alive():
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start"
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(30)
