"""/metrics' event-fed series written by hand (web/exposition.py): the same lines that
prometheus_client wrote for the same counts (less its `_created` series), and text that its
parser reads back."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from conveyor.web.exposition import CounterFamily, HistogramFamily
from conveyor.web.metrics import BUCKETS

OBSERVED = [("send", "emails", 0.003), ("send", "emails", 0.7), ("send", "emails", 7200.0),
            ('odd "task"\\', "q\nnew", 0.05), ("send", "emails", 0.005)]


def by_hand() -> str:
    completed = CounterFamily("conveyor_jobs_completed", "Jobs completed")
    duration = HistogramFamily("conveyor_job_duration_seconds", "Run time", BUCKETS)
    for task, queue, took in OBSERVED:
        completed.inc((task, queue))
        duration.observe((task, queue), took)
    return completed.render() + duration.render()


def by_prometheus_client() -> str:
    registry = CollectorRegistry(auto_describe=False)
    completed = Counter("conveyor_jobs_completed", "Jobs completed", ["task", "queue"],
                        registry=registry)
    duration = Histogram("conveyor_job_duration_seconds", "Run time", ["task", "queue"],
                         buckets=BUCKETS, registry=registry)
    for task, queue, took in OBSERVED:
        completed.labels(task, queue).inc()
        duration.labels(task, queue).observe(took)
    return generate_latest(registry).decode()


def test_the_lines_are_prometheus_clients_without_created() -> None:
    theirs = [line for line in by_prometheus_client().splitlines()
              if "_created" not in line]
    assert sorted(by_hand().splitlines()) == sorted(theirs)


def test_the_text_parses_back() -> None:
    families = {f.name: f for f in text_string_to_metric_families(by_hand())}
    completed = {tuple(sorted(s.labels.items())): s.value
                 for s in families["conveyor_jobs_completed"].samples}
    assert completed[(("queue", "emails"), ("task", "send"))] == 4.0
    assert completed[(("queue", "q\nnew"), ("task", 'odd "task"\\'))] == 1.0
    samples = families["conveyor_job_duration_seconds"].samples
    buckets = {s.labels["le"]: s.value for s in samples
               if s.name.endswith("_bucket") and s.labels["task"] == "send"}
    assert (buckets["0.005"], buckets["1.0"], buckets["3600.0"], buckets["+Inf"]) == (2, 3, 3, 4)
    [count] = [s.value for s in samples
               if s.name.endswith("_count") and s.labels["task"] == "send"]
    assert count == 4
