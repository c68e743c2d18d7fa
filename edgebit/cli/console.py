"""Where output goes: results on stdout, progress and errors on stderr (so --json stays parseable)."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def print_wide(renderable) -> None:
    """A wide table on stdout: the terminal's width when there is one; piped into a file or another program
    (where rich would assume 80 columns and cut every cell to an ellipsis), wide enough for the whole table."""
    (out if out.is_terminal else Console(highlight=False, width=240)).print(renderable)


@contextmanager
def progress_bar(description: str, total: int | None = None):
    """A transient rich progress bar on stderr; yields tick(): tick() (or tick(anything)) advances it by one,
    tick(done, total) sets both (for work whose size is known only once it starts)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task(description, total=total)

        def tick(*args) -> None:
            if len(args) == 2:
                progress.update(task, completed=args[0], total=args[1])
            else:
                progress.advance(task)

        yield tick


@contextmanager
def download_progress(description: str):
    """Yields on_progress(done_bytes, total_bytes) for downloads. The bar appears on the first call only, so a
    model already in the cache shows nothing."""
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        TimeRemainingColumn(), console=err, transient=True)
    task = None

    def on_progress(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task(description, total=total)
        progress.update(task, completed=done, total=total)

    try:
        yield on_progress
    finally:
        progress.stop()
