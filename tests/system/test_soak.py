"""60 s of bench/soak.py in CI: a mixed load on 4 real workers (fast, slow, failing, cron,
cancellations). Nothing lost, nothing done twice, no errors, no file descriptors leaking."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.system


@pytest.mark.long
@pytest.mark.timeout(300)
def test_a_minute_of_mixed_load_loses_nothing_and_leaks_nothing(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--store", "sqlite",
                           "--minutes", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    print(f"\nsoak 60 s: {report['jobs_enqueued']} jobs, {report['successful_ends']} ends, "
          f"throughput/min {report['throughput_per_minute']}, RSS {report['rss_mb_start']}"
          f"->{report['rss_mb_end']} MB, fds {report['fds_start']}->{report['fds_end']}, "
          f"lost {report['lost']}, duplicated {report['duplicated']}, errors {report['errors']}")
    assert report["jobs_enqueued"] > 1000
    assert report["lost"] == 0, report["lost_ids"]
    assert report["duplicated"] == 0, report["duplicated_ids"]
    assert report["errors"] == 0, report["error_lines"]
    assert report["workers_exited_early"] == 0
    assert not report["fds_growing"], report["samples"]
    states = report["jobs_by_task_state"]
    assert states.get("failing:dead", 0) > 0 and states.get("slow:cancelled", 0) > 0
    assert report["cron_ticks"] >= 8
