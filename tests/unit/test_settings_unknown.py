"""Unknown CONVEYOR_* variables are warned about, with the close name (issue 13, edge 9):
they used to be ignored in silence, while an unknown conveyor.toml key is an error."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from conveyor import Settings
from conveyor.errors import UnknownSettingWarning


def test_a_typo_is_warned_about_with_the_close_name() -> None:
    with pytest.warns(UnknownSettingWarning, match="CONVEYOR_CONCURENCY is not a Conveyor "
                      "setting and is ignored; did you mean CONVEYOR_CONCURRENCY"):
        settings = Settings.load(env={"CONVEYOR_CONCURENCY": "4"})
    assert settings.concurrency == 10


def test_a_name_far_from_every_setting_points_to_the_readme() -> None:
    with pytest.warns(UnknownSettingWarning, match="README's settings"):
        Settings.load(env={"CONVEYOR_XYZZY": "1"})


def test_known_and_internal_names_are_not_warned_about(tmp_path: Path) -> None:
    env = {"CONVEYOR_LEASE": "60", "CONVEYOR_CONFIG": str(tmp_path / "none.toml"),
           "CONVEYOR_WORKER_SLOT": "1", "CONVEYOR_SUPERVISOR_PID": "1",
           "CONVEYOR_TEST_POSTGRES": "1", "OTHER_LEASE": "1"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Settings.load(env=env).lease == 60


def test_a_process_warns_once_however_many_apps_it_builds(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        from conveyor import Conveyor
        for _ in range(3):
            Conveyor("sqlite:///{tmp_path / 'w.db'}")
    """)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")},
           "CONVEYOR_LEAS": "5"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=30, check=True)
    assert result.stderr.count("CONVEYOR_LEAS is not a Conveyor setting") == 1, result.stderr
    assert "did you mean CONVEYOR_LEASE?" in result.stderr
