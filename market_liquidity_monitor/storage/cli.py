"""Storage commands for the ``mlm`` CLI.

* ``db_app``: a ``typer.Typer`` with ``upgrade`` (and ``current``), mounted as ``mlm db``.
* ``import_path(settings, path, progress=True)``: ``mlm import PATH``; migrates, then loads every
  recognised candle/trade file under ``path`` with a progress bar and prints a summary.
* ``export(settings, kind, path, ...)``: ``mlm export``; writes candles/trades/metrics to CSV or Parquet.

The sync functions run their own event loop (in a helper thread when called inside a running loop).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

if TYPE_CHECKING:  # SQLAlchemy, Alembic, pandas load inside the commands: `mlm --help` stays fast
    from market_liquidity_monitor.config import Settings
    from market_liquidity_monitor.storage.export import ExportResult
    from market_liquidity_monitor.storage.history import TimeLike
    from market_liquidity_monitor.storage.importers import ImportItem, ImportReport, ImportResult

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


def _settings(ctx: typer.Context | None) -> Settings:
    from market_liquidity_monitor.config import Settings

    obj = ctx.obj if ctx is not None else None
    return obj if isinstance(obj, Settings) else Settings()


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def upgrade_command(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Apply database migrations (idempotent). Uses DATABASE_URL, else the SQLite file under MLM_HOME_DIR."""
    from market_liquidity_monitor.storage import migrations

    settings = _settings(ctx)
    url = settings.effective_database_url
    migrations.upgrade(url, revision)
    typer.echo(f"Database {_redacted(url)} is at revision {migrations.current(url)}")


@db_app.command("current")
def current_command(ctx: typer.Context) -> None:
    """Show the database's current migration revision and the latest one available."""
    from market_liquidity_monitor.storage import migrations

    settings = _settings(ctx)
    url = settings.effective_database_url
    typer.echo(f"{_redacted(url)}: current {migrations.current(url)}, head {migrations.head_revision()}")


class _RichImportProgress:
    def __init__(self, progress: Progress):
        self.progress = progress
        self.task: TaskID | None = None

    def start_item(self, item: ImportItem, total_rows: int | None) -> None:
        self.task = self.progress.add_task(item.label, total=total_rows)

    def advance(self, rows: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, rows)

    def end_item(self, result: ImportResult) -> None:
        if self.task is not None:
            self.progress.update(self.task, total=result.rows_read or 1, completed=result.rows_read or 1)
            self.task = None


def import_path(
    settings: Settings,
    path: Path | str,
    progress: bool = True,
    *,
    venue: str | None = None,
    include_recordings: bool = True,
    console: Console | None = None,
) -> ImportReport:
    """Migrate the database, then import every candle file and recorded trade under ``path``
    (``storage.importers``), idempotently. Shows a progress bar and a summary when ``progress``.
    Returns the ``ImportReport`` (rows read / inserted per file, skipped files with reasons)."""
    from market_liquidity_monitor.storage import migrations
    from market_liquidity_monitor.storage.db import Database, run_sync
    from market_liquidity_monitor.storage.importers import import_path as import_path_async

    console = console or Console(stderr=True)
    url = settings.effective_database_url

    async def run() -> ImportReport:
        await migrations.upgrade_async(url)
        db = Database(url)
        try:
            if not progress:
                return await import_path_async(
                    db, Path(path), venue=venue, include_recordings=include_recordings
                )
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as bar:
                return await import_path_async(
                    db,
                    Path(path),
                    venue=venue,
                    include_recordings=include_recordings,
                    progress=_RichImportProgress(bar),
                )
        finally:
            await db.dispose()

    report = run_sync(run)
    if progress:
        _print_report(report, console)
    return report


def _print_report(report: ImportReport, console: Console) -> None:
    table = Table(title="Import summary")
    for col in ("item", "rows read", "new rows", "seconds", "error"):
        table.add_column(col, justify="right" if col in ("rows read", "new rows", "seconds") else "left")
    for r in report.results:
        table.add_row(
            r.item.label, f"{r.rows_read:,}", f"{r.rows_inserted:,}", f"{r.seconds:.2f}", r.error or ""
        )
    console.print(table)
    console.print(
        f"{report.rows_read:,} rows read, {report.rows_inserted:,} new, in {report.seconds:.1f} s"
        f" ({report.rows_per_s:,.0f} rows/s); {len(report.skipped)} files skipped, {len(report.errors)} failed."
    )


def export(
    settings: Settings,
    kind: str,
    path: Path | str,
    *,
    fmt: str | None = None,
    venue: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    names: list[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    **kwargs: Any,
) -> ExportResult:
    """Export ``kind`` (``candles``, ``trades`` or ``metrics``) to ``path`` as CSV or Parquet (from
    ``fmt`` or the extension), filtered by venue/symbol/timeframe/metric names and ``[start, end)``.
    Returns the ``ExportResult`` (rows written)."""
    from market_liquidity_monitor.storage import migrations
    from market_liquidity_monitor.storage.db import Database, run_sync
    from market_liquidity_monitor.storage.export import export as export_async

    url = settings.effective_database_url

    async def run() -> ExportResult:
        await migrations.upgrade_async(url)
        db = Database(url)
        try:
            return await export_async(
                db,
                kind,
                Path(path),
                fmt=fmt,
                venue=venue,
                symbol=symbol,
                timeframe=timeframe,
                names=names,
                start=start,
                end=end,
                **kwargs,
            )
        finally:
            await db.dispose()

    return run_sync(run)
