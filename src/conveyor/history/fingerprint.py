"""Error fingerprints: one group per kind of failure, not per failed job.

The fingerprint is a hash of the exception type, the message with the parts that differ
from job to job masked (URLs, UUIDs, hex ids, emails, numbers, quoted values) and the top
frame of the task's own code (file and function, no line number: an edit above it must not
split the group).

    >>> mask_message("order 12345 not found at https://x.test/o/12345")
    'order <n> not found at <url>'
"""

from __future__ import annotations

import hashlib
import re
import traceback
from pathlib import Path
from types import TracebackType

# Each mask with what every match of it contains ("digit": a \d; "quote": ' or "; else that
# text), so a mask that cannot match is not run: a typical message ("order 12 gone") runs
# three of the seven patterns. Digits and quotes are looked for once, in the message as it
# came: a placeholder ("<url>", "<n>"...) adds neither, so a mask they rule out there cannot
# match after the earlier masks either. The others are looked for in the text the mask runs
# on. The two id masks ("long id") need a digit and a run of 12 or more of [A-Za-z0-9_-]
# (hex ids: 12+, other ids: 16+), looked for once too: a placeholder is too short to make
# one and its <> cannot join two (one search, ~0.5 µs, instead of the two masks' ~1.3-3.5;
# most messages have no such run). tests/unit/test_fingerprint_masks.py compares with
# running all seven every time.
_DIGIT = re.compile(r"\d")  # the same notion of digit as the patterns' \d (any Unicode digit)
_LONG_RUN = re.compile(r"[A-Za-z0-9_-]{12}")
_MASKS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+"), "<url>", "://"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                r"[0-9a-fA-F]{12}\b"), "<uuid>", "-"),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "<email>", "@"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{12,}\b"), "<id>", "long id"),
    (re.compile(r"\b(?=\w*\d)[A-Za-z0-9_-]{16,}\b"), "<id>", "long id"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>", "quote"),
    (re.compile(r"(?<![A-Za-z])[-+]?\d+(?:[.,:]\d+)*"), "<n>", "digit"),
)
_CONVEYOR = str(Path(__file__).resolve().parents[1]).replace("\\", "/") + "/"
_LIBRARIES = ("/site-packages/", "/dist-packages/", "/lib/python", "<frozen")
# Does a file name hold any of _LIBRARIES: one search, not a generator per frame
_IN_LIBRARY = re.compile("|".join(re.escape(part) for part in _LIBRARIES)).search


def mask_message(message: str) -> str:
    """The message with what varies between occurrences replaced by placeholders."""
    text = message[:500]
    digit = _DIGIT.search(text) is not None
    quote = "'" in text or '"' in text
    long_id = digit and _LONG_RUN.search(text) is not None
    for pattern, placeholder, needs in _MASKS:
        if needs == "digit":
            if not digit:
                continue
        elif needs == "long id":
            if not long_id:
                continue
        elif needs == "quote":
            if not quote:
                continue
        elif needs not in text:
            continue
        text = pattern.sub(placeholder, text)
    return text


def top_frame(tb: TracebackType | None) -> str:
    """`file:function` of the innermost frame in the user's own code (not Conveyor's,
    not the standard library's or an installed package's); '' when there is none."""
    found = None
    for frame, _line in traceback.walk_tb(tb):  # no source lines read: codes only
        code = frame.f_code
        name = code.co_filename.replace("\\", "/")
        if name.startswith(_CONVEYOR) or _IN_LIBRARY(name) is not None:
            continue
        found = (name, code.co_name)
    return "" if found is None else f"{found[0].rsplit('/', 1)[-1]}:{found[1]}"


def top_frame_from_text(text: str | None) -> str:
    """The same, from a formatted traceback (an isolated task's child sends its text)."""
    found = ""
    for match in re.finditer(r'File "([^"]+)", line \d+, in (\S+)', text or ""):
        name = match.group(1).replace("\\", "/")
        if name.startswith(_CONVEYOR) or _IN_LIBRARY(name) is not None:
            continue
        found = f"{name.rsplit('/', 1)[-1]}:{match.group(2)}"
    return found


def fingerprint(type_name: str, message: str, frame: str) -> str:
    """A short stable id of the error's group."""
    key = f"{type_name}\x00{mask_message(message)}\x00{frame}"
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
