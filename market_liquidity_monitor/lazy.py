"""Modules imported on first use, so a process that never needs them does not pay their import.

``pd = lazy_module("pandas")`` binds a stand-in: the first attribute read (``pd.DataFrame``)
imports pandas and every read after that is the real module's attribute. ``mlm ask`` on a book
question then never imports pandas (about 0.3 s of CPU), while the candle, backtest and pairs code
reads ``pd.`` exactly as before. Annotations stay free (``from __future__ import annotations``);
a module-level expression such as ``pd.Timedelta(hours=24)`` would import at once, so modules that
use this keep such constants pandas-free.
"""

from __future__ import annotations

import importlib
import re
import threading
from types import ModuleType
from typing import Any

__all__ = ["LazyModule", "LazyPattern", "lazy_module", "lazy_re"]


class LazyModule:
    """Stand-in for the module ``name``, imported on the first attribute read (thread-safe: the
    import system's own module lock). ``loaded`` says whether that happened."""

    __slots__ = ("_lock", "_module", "_name")

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._module is not None

    def _load(self) -> ModuleType:
        with self._lock:
            if self._module is None:
                self._module = importlib.import_module(self._name)
        return self._module

    def __getattr__(self, attr: str) -> Any:
        module = self._module or self._load()
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r} ({'loaded' if self.loaded else 'not loaded'})>"


def lazy_module(name: str) -> Any:
    """A ``LazyModule`` for ``name`` (typed ``Any``: use it as the module itself)."""
    return LazyModule(name)


class LazyPattern:
    """Stand-in for ``re.compile(pattern, flags)``, compiled on the first attribute read
    (``.search``, ``.finditer``, ``.groupindex``...); every read after that is the compiled
    pattern's. ``pattern`` (the source text) is there without compiling. A module with many
    patterns (``agent/parser.py``: over a hundred, about 0.04 s to compile, a question uses
    about half) then compiles only those a process uses. Two threads racing on the first read
    both compile; ``re`` returns equal patterns, either is kept."""

    __slots__ = ("_compiled", "_flags", "pattern")

    def __init__(self, pattern: str, flags: int = 0):
        self.pattern = pattern
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def __getattr__(self, attr: str) -> Any:
        c = self._compiled
        if c is None:
            c = self._compiled = re.compile(self.pattern, self._flags)
        return getattr(c, attr)

    def __repr__(self) -> str:
        state = "compiled" if self.compiled else "not compiled"
        return f"<lazy pattern {self.pattern[:40]!r} ({state})>"


def lazy_re(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """A ``LazyPattern`` (typed as the compiled pattern it stands for)."""
    return LazyPattern(pattern, flags)  # type: ignore[return-value]


# ------------------------------------------------------------------------------ Logfire, unused

#: The entry point name of Logfire's pydantic plugin (logfire's ``entry_points.txt``, group ``pydantic``).
LOGFIRE_PYDANTIC_PLUGIN = "logfire-plugin"


def leave_out_logfire_pydantic_plugin() -> bool:
    """Keep pydantic from loading Logfire's pydantic plugin in this process; True if it is left out.

    pydantic loads every installed plugin when it builds its first validator
    (``pydantic.plugin._loader.get_plugins``), and Logfire's imports the whole ``logfire`` package
    (~0.15 s of a one-shot ``mlm ask``). The product never uses that plugin (no
    ``logfire.instrument_pydantic``; its spans come from ``observability.configure_observability``),
    so ``mlm ask`` leaves it out through pydantic's documented switch, ``PYDANTIC_DISABLE_PLUGINS``
    (a comma-separated list of entry point names; ``__all__``/``1``/``true`` disable all), added to
    whatever the user set. Call before the first pydantic model is built: afterwards pydantic has
    loaded its plugins and this changes nothing (returns False). No pydantic import here."""
    import os
    import sys

    loader = sys.modules.get("pydantic.plugin._loader")
    if loader is not None and getattr(loader, "_plugins", None) is not None:
        return False
    current = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
    if current in ("__all__", "1", "true"):
        return True
    names = [n for n in (current or "").split(",") if n]
    if LOGFIRE_PYDANTIC_PLUGIN not in names:
        os.environ["PYDANTIC_DISABLE_PLUGINS"] = ",".join([*names, LOGFIRE_PYDANTIC_PLUGIN])
    return True
