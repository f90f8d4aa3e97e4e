"""isolation="process" on a task the child cannot import is refused when it is declared
(issue 13, edge 7): it used to be accepted and to fail only when a job ran."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conveyor import Conveyor

SCRIPT = textwrap.dedent("""
    import sys
    from conveyor import Conveyor
    app = Conveyor(sys.argv[1])
    try:
        @app.task(isolation="process")
        def crunch(ctx, payload):
            return 1
    except ValueError as exc:
        print("refused:", exc)
        sys.exit(3)
    print("accepted")
""")


def test_a_process_task_in_main_is_refused_at_registration(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    result = subprocess.run([sys.executable, "-c", SCRIPT, f"sqlite:///{tmp_path / 'm.db'}"],
                            capture_output=True, text=True, env=env, timeout=30, check=False)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "isolation='process'" in result.stdout and "__main__" in result.stdout
    assert not (tmp_path / "m.db").exists()  # nothing was opened, let alone stored


def test_a_process_task_inside_a_function_is_refused() -> None:
    app = Conveyor("sqlite:///:memory:")
    with pytest.raises(ValueError, match="inside test_a_process_task_inside_a_function"):
        @app.task(isolation="process")
        def crunch(ctx: object, payload: object) -> int:
            return 1
