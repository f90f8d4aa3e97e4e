"""Metrics label sets are capped (web/metrics.py LabelLimits): a tenant batch into 1,000 new
queues adds at most CONVEYOR_METRICS_MAX_LABELS queue values, the rest counted under
`(other)`, and nothing is lost from the totals. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
from collections import defaultdict

import httpx

from .harness import Live

SERIES = re.compile(r'^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(admin: httpx.Client) -> tuple[str, dict[str, dict[tuple[tuple[str, str], ...], float]]]:
    text = admin.get("/metrics").text
    series: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for line in text.splitlines():
        found = SERIES.match(line)
        if found:
            labels = tuple(sorted(LABEL.findall(found["labels"])))
            series[found["name"]][labels] = float(found["value"])
    return text, series


def queue_values(series: dict[str, dict[tuple[tuple[str, str], ...], float]]) -> set[str]:
    return {value for by_labels in series.values() for labels in by_labels
            for key, value in labels if key == "queue"}


def enqueued(series: dict[str, dict[tuple[tuple[str, str], ...], float]]) -> float:
    return sum(v for labels, v in series["conveyor_jobs_enqueued_total"].items()
               if ("task", "echo") in labels)


def test_a_thousand_new_queues_cannot_add_thousands_of_series(
        live: Live, admin: httpx.Client, tenant_a: httpx.Client) -> None:
    limit = live.app.settings.metrics_max_labels
    before_text, before = scrape(admin)
    counted_before = enqueued(before)
    flood = [{"task": "echo", "queue": f"flood.{index:04d}", "delay": 3600}
             for index in range(1000)]
    assert tenant_a.post("/api/v1/batches", json={"jobs": flood}).status_code == 202
    deadline = time.monotonic() + 15
    while True:  # the counters follow the event feed, on the server's loop; the gauges are
        # read at most CONVEYOR_DASHBOARD_SNAPSHOT (1 s) before the scrape
        after_text, after = scrape(admin)
        if (enqueued(after) - counted_before >= 1000
                and sum(after["conveyor_queue_backlog"].values()) >= 1000) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert enqueued(after) - counted_before == 1000  # every job counted, none lost
    values = queue_values(after)
    assert len(values) <= limit + 1 and "(other)" in values
    flood_series = sum(1 for line in after_text.splitlines() if 'queue="flood.' in line)
    assert flood_series <= 10 * limit, flood_series  # not ~7 per queue for 1,000 queues
    assert len(after_text) < len(before_text) + 120_000, (len(before_text), len(after_text))
    backlog = after["conveyor_queue_backlog"]
    assert sum(backlog.values()) >= 1000  # folded, still all there
    assert backlog[(("queue", "(other)"),)] >= 1000 - limit
