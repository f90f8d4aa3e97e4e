"""mask_message skips the masks that cannot match (no digit, no quote, no '@'...): its output
stays what running all seven masks in order gave, checked against that reference on many
generated messages built from the pieces the masks look for."""

from __future__ import annotations

import random
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.history.fingerprint import mask_message

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
