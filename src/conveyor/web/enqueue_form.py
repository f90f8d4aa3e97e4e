"""Enqueue a job from the dashboard, through its task's schema (admins only).

/enqueue lists the app's tasks; /enqueue?task=NAME shows a form made from the task's payload
schema (pydantic's JSON schema): text, number and checkbox fields, a choice for an enum, a
password field for a Sensitive one, and JSON for nested values. A task without a schema takes
its payload as JSON. What the form sends is checked by the same schema as any enqueue: a
refusal shows the form again, with the values entered and the schema's message.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import ConveyorError
from ..task import Task
from .actions import _form_principal
from .context import WebContext
from .problems import ApiError
from .views import redirect, render

SIMPLE = {"string": "text", "integer": "number", "number": "number", "boolean": "checkbox"}


def _ctx(request: Request) -> WebContext:
    return request.app.state.web


def fields_of(task: Task) -> list[dict[str, Any]]:
    """One form field per top-level property of the task's schema ([] without a schema)."""
    if task.schema is None:
        return []
    schema = task.schema.model_json_schema()
    required = set(schema.get("required", []))
    found = []
    for name, spec in schema.get("properties", {}).items():
        spec = _resolve(spec, schema)
        kind = spec.get("type")
        widget = "select" if "enum" in spec else SIMPLE.get(kind, "json") if isinstance(
            kind, str) else "json"
        if name in (task.sensitive or {}) and widget == "text":
            widget = "password"
        found.append({"name": name, "widget": widget, "type": kind,
                      "required": name in required, "choices": spec.get("enum", []),
                      "title": spec.get("title", name), "default": spec.get("default"),
                      "description": spec.get("description", "")})
    return found


def _resolve(spec: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """A property's own schema: Optional[X] reads as X, a $ref as what it names."""
    options = [s for s in spec.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        spec = {**spec, **options[0]}
    ref = spec.get("$ref", "")
    if ref.startswith("#/$defs/"):
        spec = {**spec, **root.get("$defs", {}).get(ref.split("/")[-1], {})}
    return spec


def payload_of(form: Any, fields: list[dict[str, Any]]) -> Any:
    """The payload the form describes; ValueError names the field that cannot be read."""
    if not fields:
        raw = str(form.get("payload") or "").strip()
        return orjson.loads(raw) if raw else None
    payload: dict[str, Any] = {}
    for field in fields:
        key = f"f.{field['name']}"
        if field["widget"] == "checkbox":
            payload[field["name"]] = form.get(key) == "on"
            continue
        raw = str(form.get(key) or "")
        if raw == "":
            continue  # the schema's default, or its "field required"
        try:
            if field["widget"] == "json":
                payload[field["name"]] = orjson.loads(raw)
            elif field["type"] == "integer":
                payload[field["name"]] = int(raw)
            elif field["type"] == "number":
                payload[field["name"]] = float(raw)
            else:
                payload[field["name"]] = raw
        except ValueError:
            raise ValueError(f"{field['name']}: {raw[:40]!r} is not "
                             f"{'JSON' if field['widget'] == 'json' else 'a number'}") from None
    return payload


async def enqueue_page(request: Request) -> Response:
    ctx = _ctx(request)
    principal = await ctx.auth.principal(request)
    if principal is None:
        return redirect("/login?next=/enqueue")
    if not principal.admin:
        raise ApiError(403, "forbidden", "enqueuing from the dashboard needs an admin token")
    name = request.query_params.get("task") or ""
    registry = ctx.conveyor.registry
    task = registry.get(name) if name and name in registry else None
    return render(request, "enqueue.html", principal, tasks=sorted(registry.names()),
                  task=task, fields=fields_of(task) if task else [], values={}, problem=None,
                  title="Enqueue")


async def enqueue_submit(request: Request) -> Response:
    principal = await _form_principal(request, admin=True)
    ctx = _ctx(request)
    form = await request.form()
    name = str(form.get("task") or "")
    if name not in ctx.conveyor.registry:
        raise ApiError(404, "unknown_task", f"no task {name[:200]!r} in this server's app")
    task = ctx.conveyor.registry.get(name)
    fields = fields_of(task)
    options: dict[str, Any] = {}
    try:
        if form.get("queue"):
            options["queue"] = str(form.get("queue"))
        if form.get("priority"):
            options["priority"] = int(str(form.get("priority")))
        if form.get("delay"):
            options["delay"] = float(str(form.get("delay")))
        payload = payload_of(form, fields)
        job = await ctx.call(ctx.conveyor.enqueue, name, payload, **options)
    except (ValueError, ConveyorError) as exc:
        values = {k: str(v) for k, v in form.items() if k.startswith(("f.", "payload"))}
        return render(request, "enqueue.html", principal, tasks=sorted(
            ctx.conveyor.registry.names()), task=task, fields=fields, values=values,
            problem=str(exc)[:2000], status=422, title="Enqueue")
    return redirect(f"/jobs/{job.id}", f"Enqueued {name}: job {job.id}.")


def routes() -> list[BaseRoute]:
    return [Route("/enqueue", enqueue_page),
            Route("/enqueue", enqueue_submit, methods=["POST"])]
