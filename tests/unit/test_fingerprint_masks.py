"""mask_message skips the masks that cannot match (no digit, no quote, no '@'...): its output
stays what running all seven masks in order gave, checked against that reference on many
generated messages built from the pieces the masks look for. top_frame and
top_frame_from_text find the libraries' frames by one search: the same frame as before, on
tracebacks raised through generated chains of files."""

from __future__ import annotations

import random
import re
import traceback
from types import TracebackType

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.history.fingerprint import (
    _CONVEYOR,
    mask_message,
    top_frame,
    top_frame_from_text,
)

# The masking as it was before the pre-checks: every pattern, in order, on every message
_REFERENCE = (
    (re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+"), "<url>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                r"[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "<email>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{12,}\b"), "<id>"),
    (re.compile(r"\b(?=\w*\d)[A-Za-z0-9_-]{16,}\b"), "<id>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"(?<![A-Za-z])[-+]?\d+(?:[.,:]\d+)*"), "<n>"),
)


def reference_mask(message: str) -> str:
    text = message[:500]
    for pattern, placeholder in _REFERENCE:
        text = pattern.sub(placeholder, text)
    return text


# Pieces each mask (or its pre-check) turns on, and near misses: Unicode digits, lone
# quotes, '-' and '@' and ':' without the rest of a match, placeholders' own letters
PIECES = ("order", " ", " ", "12", "0", "٣", "2.5", "1,000", "10:30", "-", "+7", "@", ".",
          "://", "https://x.test/a/1", "ftp://h", "ada@example.com", "a@b", "'", '"',
          "'quoted 9'", '"x"', "0f8fad5b-d9cb-469f-a165-70867728950e",
          "0F8FAD5B-D9CB-469F-A165-70867728950E", "deadbeefcafe", "deadbeefcafe0042",
          "abcdefabcdef", "token_ABCDEFGHIJKLMNOP1", "ABCDEFGHIJKLMNOPQ", "<n>", "url", "_",
          "x" * 20, "é", "\n", ":", "/", "e1", "v2")


def _message(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))


def test_masking_matches_every_mask_run_in_order_on_generated_messages() -> None:
    rng = random.Random(15)
    for _ in range(20_000):
        message = _message(rng)
        assert mask_message(message) == reference_mask(message), message


def test_masking_matches_the_reference_past_the_500_character_cut() -> None:
    rng = random.Random(16)
    for _ in range(200):
        message = "".join(rng.choice(PIECES) for _ in range(300))
        assert mask_message(message) == reference_mask(message)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab fF09٣-+_@.:/'\"é<>", max_size=60))
def test_masking_matches_the_reference_on_any_text_of_the_masks_characters(
        message: str) -> None:
    assert mask_message(message) == reference_mask(message)


# The top frame as it was found before: every library part looked for by a generator, the
# name formatted at every frame of the user's
_LIBRARIES = ("/site-packages/", "/dist-packages/", "/lib/python", "<frozen")


def reference_top_frame(tb: TracebackType | None) -> str:
    found = ""
    for frame, _line in traceback.walk_tb(tb):
        code = frame.f_code
        name = code.co_filename.replace("\\", "/")
        if any(part in name for part in _LIBRARIES) or name.startswith(_CONVEYOR):
            continue
        found = f"{name.rsplit('/', 1)[-1]}:{code.co_name}"
    return found


FILES = ("/srv/app/tasks.py", "/srv/app/billing/charge.py", "C:\\app\\jobs.py",
         "C:\\Python312\\Lib\\site-packages\\httpx\\_client.py",
         "/opt/dist-packages/requests/api.py",
         "/usr/lib/python3.11/asyncio/events.py", "<frozen runpy>", "<string>",
         "/home/me/lib/pythonic/app.py", "/srv/site-packages-not/app.py")


def _raised_through(files: list[str]) -> BaseException:
    """An exception raised in a chain of functions, each compiled as from one of `files`
    (the outermost first)."""
    namespace: dict[str, object] = {}
    for i, file in reversed(list(enumerate(files))):
        call = f"step{i + 1}()" if i + 1 < len(files) else "raise ValueError('x 1')"
        exec(compile(f"def step{i}():\n    {call}\n", file, "exec"), namespace)
    try:
        namespace["step0"]()  # type: ignore[operator]
    except ValueError as exc:
        return exc
    raise AssertionError("not raised")


def test_top_frame_matches_the_reference_on_generated_tracebacks() -> None:
    rng = random.Random(17)
    conveyors = (_CONVEYOR + "worker/executor.py", _CONVEYOR + "app.py")
    for _ in range(500):
        files = [rng.choice(FILES + conveyors) for _ in range(rng.randint(1, 7))]
        exc = _raised_through(files)
        expected = reference_top_frame(exc.__traceback__)
        assert top_frame(exc.__traceback__) == expected, files
        text = "".join(traceback.format_exception(exc))
        assert top_frame_from_text(text) == expected, files


def test_the_id_masks_pre_check_finds_the_shortest_ids_and_those_split_by_dash_or_underscore(
        ) -> None:
    """The id masks run only when the message has 12 of [A-Za-z0-9_-] in a row: ids of
    exactly 12 hex digits, and ids whose every 12-long window holds a '_' or '-', still
    masked as the reference does (fails with a pre-check of 13, or one without '_' or '-')."""
    messages = ("order deadbeef0042 gone", "deadbeef0042", "(deadbeef0042)",
                "deadbeef004", "key abc1_defghi_jklm here", "key abc1-defghi-jklm here",
                "x-ab12-cd34-ef56-gh7 y", "a_b_c_d_e_f_1_2_3_4 z", "ab1_" * 5,
                "token_ABCDEFGHIJKLMNOP1 at ada@example.com",
                "0f8fad5b-d9cb-469f-a165-70867728950e1",
                "é" + "deadbeefcafe1", "٣deadbeefcafe1٣")
    for message in messages:
        assert mask_message(message) == reference_mask(message), message
