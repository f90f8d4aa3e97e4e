"""Job log sampling and the keyed hash of Sensitive values (pure parts)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import orjson
import pytest

from conveyor import ConfigError, Settings
from conveyor.observability.joblogs import Hasher, Sampler
from conveyor.observability.logs import JsonFormatter


def test_sampling_keeps_the_first_lines_then_every_kth_per_task_and_minute() -> None:
    sampler = Sampler("3/min,4")
    kept = [sampler.keep("a", now=100.0 + i * 0.1) for i in range(17)]
    assert kept == [True] * 3 + [False, False, False, True] * 3 + [False, False]
    assert sampler.keep("b", now=101.0)  # each task counts on its own
    assert sampler.keep("a", now=160.5)  # a new minute starts over


def test_no_spec_keeps_everything_and_bad_specs_are_refused() -> None:
    assert all(Sampler("").keep("a") for _ in range(1000))
    assert all(Sampler("all").keep("a") for _ in range(1000))
    assert Settings().log_sample == "60/min,100"  # the default samples busy tasks
    for spec in ("20", "20/min", "x/min,5", "20/min,0", "20/week,5"):
        with pytest.raises(ConfigError, match="CONVEYOR_LOG_SAMPLE"):
            Sampler(spec)
    with pytest.raises(ConfigError, match="CONVEYOR_LOG_SAMPLE"):
        Settings(log_sample="lots")
    assert Sampler("20 / sec , 5").limit == 20


def test_the_hash_is_keyed_short_and_stable() -> None:
    one, other = Hasher("k1"), Hasher("k2")
    assert one.digest("alice@example.com") == Hasher("k1").digest("alice@example.com")
    assert one.digest("alice@example.com") != other.digest("alice@example.com")
    assert one.digest("alice@example.com").startswith("sha256:")
    assert len(one.digest("x")) == len("sha256:") + 12


def test_hide_replaces_values_as_written_escaped_and_repr() -> None:
    hasher = Hasher("k")
    hide = hasher.hider(["o'neil@example.com", "tab\there", 123456, "ab"])
    assert hide is not None
    digest, tab = hasher.digest("o'neil@example.com"), hasher.digest("tab\there")
    assert hide("to o'neil@example.com") == f"to {digest}"
    value = "tab\there"
    assert hide(f"repr {value!r}, json {orjson.dumps(value).decode()}") == (
        f"repr '{tab}', json \"{tab}\"")
    assert hide("card 123456") == f"card {hasher.digest(123456)}"
    assert hide("ab stays: too short to find safely") == "ab stays: too short to find safely"
    assert hasher.hider([]) is None


def test_json_logs_keep_extra_fields() -> None:
    record = logging.LogRecord("conveyor.task", logging.INFO, "f.py", 1, "hello %s", ("x",),
                               None)
    record.order_id, record.amount, record.job_id = "o-1", 12.5, "j-1"
    data = orjson.loads(JsonFormatter().format(record))
    assert (data["msg"], data["order_id"], data["amount"], data["job_id"]) == (
        "hello x", "o-1", 12.5, "j-1")
    assert "args" not in data and "levelno" not in data


def test_processes_sharing_a_log_file_rotate_it_once(tmp_path: Path) -> None:
    from conveyor.observability.logs import SharedDailyFileHandler

    day1, day2 = 1_764_806_400.0 + 3600, 1_764_892_800.0 + 3600  # 2025-12-04, -05 UTC
    now = [day1]
    path = tmp_path / "conveyor.log"
    first, second = (SharedDailyFileHandler(str(path), clock=lambda: now[0]) for _ in "ab")

    def line(handler: SharedDailyFileHandler, text: str) -> None:
        handler.emit(logging.LogRecord("conveyor", logging.INFO, "f", 1, text, (), None))

    line(first, "a1")
    line(second, "b1")
    os.utime(path, (day1, day1))
    now[0] = day2
    line(first, "a2")
    line(second, "b2")
    first.close()
    second.close()
    assert (tmp_path / "conveyor.log.2025-12-04").read_text().split() == ["a1", "b1"]
    assert path.read_text().split() == ["a2", "b2"]
