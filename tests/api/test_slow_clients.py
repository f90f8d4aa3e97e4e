"""Issue 12, finding 9: slow clients are cut off. 200 connections at once, without a token:
idle ones, half-sent headers (some trickling a byte at a time), half-sent bodies, and kept-alive
ones left idle; every one is closed by its deadline, and /healthz answers all along. Real
server, real sockets (the store plays no part, so SQLite)."""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from conveyor.web.server import build_server

from .harness import TOKENS, ServerThread, close_app, free_port, make_url
from .webapp import build_app

HEADER, BODY, IDLE = 1.0, 1.5, 1.0


@pytest.fixture
def url(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> Iterator[str]:
    monkeypatch.setenv("CONVEYOR_HTTP_HEADER_TIMEOUT", str(HEADER))
    monkeypatch.setenv("CONVEYOR_HTTP_BODY_TIMEOUT", str(BODY))
    monkeypatch.setenv("CONVEYOR_HTTP_IDLE_TIMEOUT", str(IDLE))
    app, _ = build_app(make_url("sqlite", tmp_path))
    server = build_server(app, "127.0.0.1", free_port(), tokens=TOKENS, log_level="warning")
    with ServerThread(server):
        yield f"http://127.0.0.1:{server.config.port}"
    close_app(app)


def connect(url: str, first: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    if first:
        sock.sendall(first)
    sock.setblocking(False)
    return sock


def test_slow_clients_are_closed_and_healthz_still_answers(url: str) -> None:
    host = url.removeprefix("http://")
    partial_head = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode()
    partial_body = (f"POST /api/v1/jobs HTTP/1.1\r\nHost: {host}\r\n"
                    "Authorization: Bearer token-a\r\n"  # a token: the body is waited for
                    "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                    '{"task": "echo", "payload": "').encode()
    kinds = {"idle": b"", "head": partial_head, "body": partial_body, "trickle": b"G"}
    socks: dict[socket.socket, str] = {}
    opened = time.monotonic()  # before the first connect: no deadline can end earlier
    for n in range(200):
        kind = list(kinds)[n % 4]
        socks[connect(url, kinds[kind])] = kind
    errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append  # type: ignore[method-assign]
    logging.getLogger("conveyor").addHandler(handler)
    try:
        watch(url, socks, list(kinds), opened)
    finally:
        logging.getLogger("conveyor").removeHandler(handler)
        for sock in socks:
            sock.close()
    assert not errors, [r.getMessage() for r in errors]  # a client cut off is not an error


def watch(url: str, socks: dict[socket.socket, str], kinds: list[str],
          opened: float) -> None:
    with httpx.Client(base_url=url, timeout=5) as client:  # kept alive, then left idle
        assert client.get("/healthz").status_code == 200
        selector = selectors.DefaultSelector()
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        closed: dict[str, list[float]] = {k: [] for k in kinds}
        trickled = 0
        deadline = opened + max(HEADER, BODY) + 4
        with httpx.Client(base_url=url, timeout=2) as probe:
            while sum(map(len, closed.values())) < len(socks) and time.monotonic() < deadline:
                latency = time.monotonic()
                assert probe.get("/healthz").status_code == 200  # a fresh connection
                assert time.monotonic() - latency < 1.0
                for key, _ in selector.select(timeout=0.1):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(4096)
                    except ConnectionError:
                        data = b""
                    if not data:
                        selector.unregister(sock)
                        closed[socks[sock]].append(time.monotonic() - opened)
                if trickled < 40:  # the tricklers send a byte now and then: no reprieve
                    for sock, kind in socks.items():
                        if kind == "trickle" and sock.fileno() != -1:
                            with contextlib.suppress(OSError):
                                sock.send(b"E")
                    trickled += 1
        still_open = {k: 50 - len(v) for k, v in closed.items() if len(v) < 50}
        assert not still_open, f"not closed in time: {still_open}"
        assert max(closed["idle"] + closed["head"] + closed["trickle"]) < HEADER + 1.5
        assert min(closed["idle"] + closed["head"]) > HEADER * 0.8
        assert BODY * 0.8 < max(closed["body"]) < BODY + 1.5
        time.sleep(IDLE + 1.0)
        response = client.get("/healthz")  # its kept-alive connection was closed: a new one
        assert response.status_code == 200


def test_a_request_within_its_deadlines_is_served(url: str) -> None:
    host = url.removeprefix("http://")
    sock = connect(url, f"POST /api/v1/jobs HTTP/1.1\r\nHost: {host}\r\n".encode())
    sock.setblocking(True)
    body = b'{"task": "echo", "delay": 3600}'
    time.sleep(HEADER / 2)
    sock.sendall(b"Authorization: Bearer token-a\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:10])
    time.sleep(BODY / 2)
    sock.sendall(body[10:])
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 202"), answer[:200]
    sock.close()


def test_connections_past_the_bound_are_answered_503(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: object) -> None:
    monkeypatch.setenv("CONVEYOR_HTTP_MAX_CONNECTIONS", "20")
    app, _ = build_app(make_url("sqlite", tmp_path))
    server = build_server(app, "127.0.0.1", free_port(), tokens=TOKENS, log_level="warning")
    socks: list[socket.socket] = []
    try:
        with ServerThread(server):
            url = f"http://127.0.0.1:{server.config.port}"
            socks = [connect(url, b"") for _ in range(25)]
            time.sleep(0.2)
            assert httpx.get(url + "/healthz", timeout=5).status_code == 503
            for sock in socks:
                sock.close()
            time.sleep(0.2)
            assert httpx.get(url + "/healthz", timeout=5).status_code == 200
    finally:
        for sock in socks:
            sock.close()
        close_app(app)
