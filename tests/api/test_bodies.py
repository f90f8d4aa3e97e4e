"""Issue 12, finding 4: what one request may cost. Body limits per endpoint (refused before
the body is read), a bound on large bodies at once (503 + Retry-After), a bound on JSON values,
lists without bodies unless `fields=` asks, and a cap on a page's bytes; SQLite and
PostgreSQL, against the real server and real sockets."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import orjson

from .harness import Live, assert_error, sign_in

MiB = 1024 * 1024


def raw_post(live: Live, path: str, length: int, first: bytes = b"",
             token: str = "token-a") -> socket.socket:
    """A POST whose headers promise `length` bytes, of which only `first` are sent."""
    parts = urlsplit(live.url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80),
                                    timeout=10)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                 f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {length}\r\n\r\n".encode() + first)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def test_a_declared_length_over_the_limit_is_refused_before_the_body(live: Live) -> None:
    for path in ("/api/v1/jobs", "/api/v1/batches"):
        with raw_post(live, path, 120 * MiB) as sock:  # not one byte of the body sent
            status, _, body = read_response(sock)
        assert status == 413, body
        assert orjson.loads(body)["error"]["code"] == "payload_too_large"


def test_each_endpoint_has_its_own_limit(live: Live, tenant_a: httpx.Client) -> None:
    single = live.server.config.app.state.web.max_body  # type: ignore[union-attr]
    batch = live.app.settings.max_batch_body_bytes
    assert single < 3 * MiB < batch
    payload = {"blob": "x" * (700 * 1024)}
    jobs = [{"task": "echo", "queue": "bodies", "payload": payload, "delay": 3600}
            for _ in range(4)]  # about 2.8 MiB: a batch may, one job may not
    response = tenant_a.post("/api/v1/batches", json={"jobs": jobs})
    assert response.status_code == 202, response.text[:300]
    error = assert_error(tenant_a.post("/api/v1/jobs", json={"task": "echo", "payload": jobs}),
                         413, "payload_too_large")
    assert error["details"]["limit"] == single
    over = [{"task": "echo", "payload": {"blob": "y" * 900_000}}] * (batch // 900_000 + 1)
    assert_error(tenant_a.post("/api/v1/batches", json={"jobs": over}), 413,
                 "payload_too_large")


def test_a_body_without_a_length_is_cut_off_at_the_limit(tenant_a: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # chunked: no Content-Length to refuse up front
        yield b'{"jobs": ['
        for _ in range(400):
            yield b" " * (64 * 1024)

    response = tenant_a.post("/api/v1/batches", content=chunks(),
                             headers={"Content-Type": "application/json"})
    error = assert_error(response, 413, "payload_too_large")
    assert error["details"]["size"] <= error["details"]["limit"] + MiB  # as chunks came


def test_a_body_of_too_many_values_is_refused_unparsed(tenant_a: httpx.Client) -> None:
    body = b'{"jobs": [' + b",".join([b"{}"] * 300_000) + b"]}"  # 900 KB, 300,000 dicts
    error = assert_error(tenant_a.post("/api/v1/batches", content=body,
                                       headers={"Content-Type": "application/json"}),
                         413, "too_many_values")
    assert error["details"]["limit"] == 100_000


def test_large_bodies_at_once_are_bounded(live: Live, tenant_a: httpx.Client) -> None:
    slots = live.app.settings.max_large_bodies
    held = [raw_post(live, "/api/v1/batches", 3 * MiB, b'{"jobs": [') for _ in range(slots)]
    try:
        deadline = time.monotonic() + 5
        while live.server.config.app.state.web.body_slots.taken < slots:  # type: ignore
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with raw_post(live, "/api/v1/batches", 3 * MiB) as third:
            status, headers, body = read_response(third)
        assert status == 503, body
        assert headers["retry-after"] == "1"
        assert orjson.loads(body)["error"]["code"] == "busy"
        small = tenant_a.post("/api/v1/jobs", json={"task": "echo", "queue": "bodies",
                                                    "delay": 3600})
        assert small.status_code == 202  # small bodies never wait for a slot
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while live.server.config.app.state.web.body_slots.taken:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "a slot was not given back"
        time.sleep(0.01)


def _enqueue_big(client: httpx.Client, queue: str, count: int, size: int) -> list[str]:
    ids = []
    for n in range(count):
        response = client.post("/api/v1/jobs", json={
            "task": "echo", "queue": queue, "delay": 3600,
            "payload": {"n": n, "blob": "z" * size}})
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def test_lists_leave_bodies_out_unless_fields_asks(tenant_a: httpx.Client) -> None:
    queue = f"lists-{uuid.uuid4().hex[:8]}"
    [job_id] = _enqueue_big(tenant_a, queue, 1, 1000)
    page = tenant_a.get("/api/v1/jobs", params={"queue": queue})
    assert page.headers["cache-control"] == "no-store"
    [row] = page.json()["jobs"]
    assert row["id"] == job_id and row["state"] == "scheduled" and row["queue"] == queue
    assert not {"payload", "result", "errors", "progress_step"} & set(row)
    assert len(page.content) < 1000
    [full] = tenant_a.get("/api/v1/jobs", params={"queue": queue,
                                                  "fields": "payload,state"}).json()["jobs"]
    assert set(full) == {"id", "payload", "state"}
    assert full["payload"] == {"n": 0, "blob": "z" * 1000}
    assert_error(tenant_a.get("/api/v1/jobs", params={"fields": "payload,secret"}), 400,
                 "bad_query")


def test_a_page_stops_at_the_byte_cap_and_goes_on_from_there(live: Live,
                                                             tenant_a: httpx.Client) -> None:
    cap = live.app.settings.max_list_bytes
    queue = f"big-{uuid.uuid4().hex[:8]}"
    size = 900 * 1024
    ids = _enqueue_big(tenant_a, queue, cap // size + 3, size)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"queue": queue, "fields": "id,payload", "limit": "500"}
        if cursor:
            params["cursor"] = cursor
        response = tenant_a.get("/api/v1/jobs", params=params)
        assert response.status_code == 200
        assert len(response.content) <= cap + size  # the cap, or one job over it
        page = response.json()
        seen += [row["id"] for row in page["jobs"]]
        pages += 1
        cursor = page["next_cursor"]
        if pages == 1:
            assert page["truncated"] is True and cursor
        if not cursor:
            assert page["truncated"] is False
            break
    assert seen == list(reversed(ids))
    assert pages >= 2


def test_dashboard_lists_read_large_jobs_a_few_at_a_time(live: Live,
                                                         tenant_a: httpx.Client) -> None:
    queue = f"dash-{uuid.uuid4().hex[:8]}"
    ids = _enqueue_big(tenant_a, queue, 5, 300 * 1024)
    session = sign_in(live.url, "token-a")
    with httpx.Client(base_url=live.url, cookies={"conveyor_session": session}) as browser:
        page = browser.get("/jobs", params={"queue": queue}, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert all(job_id in page.text for job_id in ids)
    assert "z" * 1000 not in page.text
