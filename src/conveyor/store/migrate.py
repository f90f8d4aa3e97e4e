"""Numbered migrations: NNNN_name.sql files, the one source of schema truth per dialect."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load_migrations(folder: Path) -> list[Migration]:
    found = []
    for path in sorted(folder.iterdir()):
        match = _NAME.match(path.name)
        if match:
            found.append(Migration(int(match[1]), match[2], split_statements(path.read_text())))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations in {folder} are not numbered 1..n: {versions}")
    return found


_DOLLAR_QUOTE = re.compile(r"\$[A-Za-z_]*\$")


def split_statements(sql: str) -> tuple[str, ...]:
    """Split a migration into statements: on `;` at a line's end, dropping whole-line `--`
    comments, except inside a body whose `;` and lines are its own: a dollar-quoted one
    (`$$ ... $$`, `$tag$ ... $tag$`: a PostgreSQL function's) or a SQLite trigger's
    (from a line `BEGIN` to a line `END;`). A body left open is an error, not a statement
    silently glued to the rest of the file."""
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None  # the dollar quote of the body we are in, if any
    in_trigger = False  # inside a SQLite trigger's BEGIN ... END;
    for line in sql.splitlines():
        word = line.strip().upper()
        if quote is None and not in_trigger and word.startswith("--"):
            continue
        current.append(line)
        for tag in _DOLLAR_QUOTE.findall(line):
            if quote is None:
                quote = tag
            elif tag == quote:
                quote = None
        if quote is None and word == "BEGIN" and "\n".join(current).lstrip().upper(
                ).startswith("CREATE TRIGGER"):
            in_trigger = True
        elif in_trigger and word == "END;":
            in_trigger = False
        if quote is None and not in_trigger and line.rstrip().endswith(";"):
            statements.append("\n".join(current))
            current = []
    if quote is not None or in_trigger:
        raise RuntimeError(f"a migration leaves a {quote or 'trigger'} body open")
    statements.append("\n".join(current))
    return tuple(s.strip().rstrip(";").strip() for s in statements if s.strip())
