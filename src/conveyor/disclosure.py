"""What a reader is shown of a stored job. The payload, result and errors are decoded and
opened (sealing.py); for the redacted view (the API, the dashboard, the CLI) every Sensitive
field of the payload reads "[redacted]", and wherever one of those fields' values turns up in
the result, an error message, a traceback or the progress step, it is replaced too.

Which fields are sensitive is stored with each job at enqueue (its task's paths), so any
process redacts, whether or not it knows the task. The reader's own registry adds its paths
for the task too: jobs stored before paths were kept, and a field declared Sensitive since.

    shown = reveal(job, codec, registry, redacted=True)
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import orjson

from .codec import REDACTED, Codec, redact
from .errors import PayloadUndecodable
from .job import ErrorInfo, Job
from .sealing import open_errors, open_result
from .task import TaskRegistry

# A value shorter than this is replaced only where it is a whole value of the result, not
# inside text: in text it would hit half the words of a traceback, and the pattern of what
# was replaced would give it away anyway.
SHORTEST_IN_TEXT = 3


def reveal(job: Job, codec: Codec, registry: TaskRegistry, *, redacted: bool) -> Job:
    """The job as a reader sees it (see the module's docstring)."""
    try:
        payload = codec.decode(job.payload, job.id, job.tenant)
    except PayloadUndecodable as exc:
        payload = {"$undecodable": str(exc)}
    result = open_result(codec, job.result, job.id, job.tenant)
    errors = open_errors(codec, job.errors, job.id, job.tenant)
    spec = registry.find(job.task) if redacted else None
    paths = merge_paths(job.sensitive or {}, spec.sensitive if spec is not None else {})
    if not redacted or not paths:
        return replace(job, payload=payload, result=result, errors=errors)
    scrubber = Scrubber(sensitive_values(payload, paths))
    return replace(job, payload=redact(payload, paths), result=scrubber.value(result),
                   errors=tuple(scrubber.error(error) for error in errors),
                   progress_step=scrubber.text(job.progress_step))


def merge_paths(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    """Both trees of sensitive paths in one: a field is sensitive if either says so."""
    merged = dict(first)
    for key, sub in second.items():
        mine = merged.get(key)
        if mine is None or sub is True:
            merged[key] = sub
        elif isinstance(mine, Mapping) and isinstance(sub, Mapping):
            merged[key] = merge_paths(mine, sub)
    return merged


def sensitive_values(payload: Any, paths: Mapping[str, Any]) -> set[Any]:
    """The values of the payload's sensitive fields: strings and numbers, nested ones
    included (a Sensitive list or model gives all of its values)."""
    return {value for found in _at_paths(payload, paths) for value in _scalars(found)}


def _at_paths(payload: Any, paths: Mapping[str, Any]) -> Iterator[Any]:
    if isinstance(payload, list):
        for item in payload:
            yield from _at_paths(item, paths)
        return
    if not isinstance(payload, dict):
        return
    if "*" in paths:
        for value in payload.values():
            yield from _at_paths(value, paths["*"])
        return
    for key, sub in paths.items():
        if key in payload:
            if sub is True:
                yield payload[key]
            else:
                yield from _at_paths(payload[key], sub)


def _scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif value != "" and isinstance(value, str | int | float) and not isinstance(value, bool):
        yield value


class Scrubber:
    """Replaces sensitive values wherever they occur: whole JSON values, and inside text as
    written, as JSON escapes them and as Python's repr does (a traceback quotes values)."""

    def __init__(self, values: set[Any]) -> None:
        self.whole = {v for v in values if isinstance(v, str)}
        self.numbers = {v for v in values if not isinstance(v, str)}
        forms: set[str] = set()
        for value in values:
            forms.update(_written_forms(value))
        forms = {form for form in forms if len(form) >= SHORTEST_IN_TEXT}
        ordered = sorted(forms, key=len, reverse=True)  # the longest form wins an overlap
        self.pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def text(self, text: str | None) -> str | None:
        if text is None or self.pattern is None:
            return text
        return self.pattern.sub(REDACTED, text)

    def value(self, value: Any) -> Any:
        """A JSON value with every sensitive value in it replaced (keys too)."""
        if isinstance(value, str):
            return REDACTED if value in self.whole else self.text(value)
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float):
            return REDACTED if value in self.numbers else value
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {self.value(key): self.value(item) for key, item in value.items()}
        return value

    def error(self, error: ErrorInfo) -> ErrorInfo:
        return replace(error, message=self.text(error.message) or "",
                       traceback=self.text(error.traceback))


def _written_forms(value: Any) -> set[str]:
    if not isinstance(value, str):
        return {str(value), repr(value)}
    return {value, orjson.dumps(value).decode()[1:-1], repr(value)[1:-1]}
