"""`conveyor jobs` when it searches (search.py): --task-contains and --queue-contains list
the jobs of the names they match; --payload field:value and --error read a bounded scan of
candidates (--scan, default 1,000) and say how far they read, with the id to go on from
(--after). Used by cli.py's `jobs` command; a refused search is one line and exit 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from .cli_views import count_text, jobs_table
from .job import JobFilter
from .search import Found, Search

if TYPE_CHECKING:
    from .app import Conveyor

CAP = 10_000


def title_of(conveyor: Conveyor, where: JobFilter, search: Search, found: Found) -> str:
    """"3 of 120 jobs" for names (counted, to a cap), "3 jobs found" for a scan."""
    if found.scanned is not None:
        return f"{len(found.jobs):,} job{'' if len(found.jobs) == 1 else 's'} found"
    resolved = conveyor.resolve_names(where, search)
    total = 0 if resolved is None else conveyor.call(
        lambda store: store.count_jobs(resolved, CAP))
    return count_text(len(found.jobs), max(total, len(found.jobs)), CAP)


def note_of(found: Found, search: Search) -> str | None:
    note = found.note(search.scan)
    if note and found.next_cursor:
        note = note.replace("go on from next_cursor", f"go on with --after {found.next_cursor}")
    return note


def run_search(conveyor: Conveyor, where: JobFilter, search: Search, after: str | None,
               limit: int, json_out: bool, out: Console, err: Console,
               print_json: Callable[[Any], None]) -> None:
    """Print a page of the search: JSON (the note on stderr) or a table and the note."""
    found = conveyor.search_jobs(where, search, after=after, limit=limit)
    note = note_of(found, search)
    if json_out:
        print_json([job.to_dict() for job in found.jobs])
        if note:
            err.print(Text(note, style="dim"), highlight=False)
        return
    out.print(jobs_table(found.jobs, out.width, title=title_of(conveyor, where, search, found)))
    if note:
        out.print(Text(note, style="dim"), highlight=False)
