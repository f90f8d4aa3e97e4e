"""What the worst request of a tenant token costs the server (issue 12, finding 4).

    python bench/api_memory.py                       # SQLite, a fresh store
    python bench/api_memory.py --url postgresql://postgres@127.0.0.1:5432/test

Starts `conveyor serve` (own process, tenant and admin tokens) on a fresh store and, while a
thread polls /healthz every 20 ms and another samples the server's RSS every 5 ms, sends:

  body-120MiB     a 120 MiB batch (refused: over the batch body limit)
  body-chunked    a 120 MiB batch without Content-Length (cut off at the limit)
  body-values     a batch of [{},{},...] just over the JSON value limit (refused unparsed)
  body-tiny       one job whose payload is 49,000 empty objects (accepted: under every limit)
  body-parallel   8 clients at once sending 6 MiB batches (slots: the rest get 503)
  fill-60MiB      60 jobs of 1 MiB enqueued one by one (the list phases' data)
  list-light      60 jobs of 1 MiB listed 20 times with limit=500 (no bodies: the default)
  list-bodies     the same with fields=payload,result,errors, every page walked, 5 times
  dashboard       the dashboard's jobs page (50 rows of those jobs) signed in as the tenant

and prints, per phase, the server's RSS rise (peak) over its baseline at the start of the run
and over the phase's own start, and /healthz latency (max, p99, p50); an idle phase first shows
what the machine's own load adds. Targets: RSS rise < 50 MB, /healthz < 50 ms. On a shared
machine run it as `nice -n -10 python bench/api_memory.py` (the server inherits it).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

MiB = 1024 * 1024
TOKENS = "bench-admin=ops:admin,bench-tenant=acme:tenant"
APP = '''
from conveyor import Conveyor
app = Conveyor()

@app.task(queue="default")
def echo(ctx, payload):
    return None
'''


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="store URL (default: a fresh SQLite file)")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Watch:
    """RSS samples and /healthz latencies, taken in a process of their own during a phase
    (in this one they would wait for the GIL while the client parses a large answer)."""

    def __init__(self, pid: int, url: str) -> None:
        self.pid, self.url = pid, url
        self.start = self.peak = 0
        self.latencies: list[float] = []

    def __enter__(self) -> Watch:
        self.stop = multiprocessing.Event()
        self.results: multiprocessing.Queue[tuple[int, int, list[float]]] = \
            multiprocessing.Queue()
        self.process = multiprocessing.Process(target=watch, args=(
            self.pid, self.url, self.stop, self.results), daemon=True)
        self.process.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)
        self.stop.set()
        self.start, self.peak, self.latencies = self.results.get(timeout=30)
        self.process.join(10)


def watch(pid: int, url: str, stop: Any, results: Any) -> None:
    start = peak = rss(pid)
    latencies: list[float] = []

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss(pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get("/healthz")
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
    sampler.join()
    results.put((start, peak, latencies))


def start_server(folder: Path, store_url: str) -> tuple[str, subprocess.Popen[bytes]]:
    (folder / "bench_app.py").write_text(APP)
    port = free_port()
    env = {**os.environ, "CONVEYOR_URL": store_url, "CONVEYOR_API_TOKENS": TOKENS,
           "PYTHONPATH": str(folder), "CONVEYOR_LOG_LEVEL": "WARNING"}
    conveyor = str(Path(sys.executable).parent / "conveyor")
    if store_url.startswith("postgres"):
        subprocess.run([conveyor, "migrate", "--app", "bench_app:app"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    server = subprocess.Popen([conveyor, "serve", "--app", "bench_app:app", "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return url, server
        except httpx.TransportError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise SystemExit("conveyor serve did not start") from None
            time.sleep(0.05)


def raw_send(url: str, path: str, head: dict[str, str], body_size: int) -> str:
    """Send headers and up to body_size bytes of body; the status line of the answer."""
    host_port = url.removeprefix("http://")
    host, port = host_port.split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host_port}",
             "Authorization: Bearer bench-tenant", "Content-Type: application/json",
             *(f"{k}: {v}" for k, v in head.items())]
    chunked = "Transfer-Encoding" in head
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        piece = b'{"jobs": [' + b" " * (MiB - 10)
        sent = 0
        try:
            while sent < body_size:
                data = piece if sent == 0 else b" " * MiB
                sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                sent += len(data)
        except OSError:
            pass  # the server answered and closed: the rest was never wanted
        try:
            return sock.recv(200).split(b"\r\n")[0].decode() or "(closed)"
        except OSError:
            return "(closed)"


def phases(url: str) -> list[tuple[str, Callable[[], str]]]:
    tenant = httpx.Client(base_url=url, timeout=120,
                          headers={"Authorization": "Bearer bench-tenant"})
    queue = f"mem-{uuid.uuid4().hex[:6]}"

    def body_120() -> str:
        return raw_send(url, "/api/v1/batches", {"Content-Length": str(120 * MiB)}, 120 * MiB)

    def body_chunked() -> str:
        return raw_send(url, "/api/v1/batches", {"Transfer-Encoding": "chunked"}, 120 * MiB)

    def body_values() -> str:
        body = b'{"jobs": [' + b",".join([b"{}"] * 60_000) + b"]}"
        r = tenant.post("/api/v1/batches", content=body,
                        headers={"Content-Type": "application/json"})
        return f"{r.status_code} {r.json()['error']['code']}"

    def body_tiny() -> str:
        r = tenant.post("/api/v1/jobs", json={"task": "echo", "queue": queue, "delay": 3600,
                                              "payload": [{}] * 49_000})
        return str(r.status_code)

    def body_parallel() -> str:
        jobs = [{"task": "echo", "queue": queue, "delay": 3600,
                 "payload": {"blob": "p" * 700_000}} for _ in range(8)]
        body = httpx.Request("POST", "/", json={"jobs": jobs}).read()

        def one(_: int) -> int:
            with httpx.Client(base_url=url, timeout=120) as client:
                return client.post("/api/v1/batches", content=body, headers={
                    "Authorization": "Bearer bench-tenant",
                    "Content-Type": "application/json"}).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = sorted(pool.map(one, range(8)))
        return " ".join(map(str, codes))

    def fill() -> None:
        for n in range(60):
            r = tenant.post("/api/v1/jobs", json={"task": "echo", "queue": queue,
                                                  "delay": 3600,
                                                  "payload": {"n": n, "blob": "m" * 1_040_000}})
            assert r.status_code == 202, r.text[:200]

    def fill_60() -> str:
        fill()
        return "60 jobs of 1 MiB enqueued"

    def list_light() -> str:
        sizes = [len(tenant.get("/api/v1/jobs", params={"limit": "500"}).content)
                 for _ in range(20)]
        return f"{max(sizes) / 1024:.0f} KiB per page"

    def list_bodies() -> str:
        pages, biggest = 0, 0
        for _ in range(5):
            cursor = None
            while True:
                params = {"limit": "500", "fields": "payload,result,errors"}
                if cursor:
                    params["cursor"] = cursor
                r = tenant.get("/api/v1/jobs", params=params)
                biggest = max(biggest, len(r.content))
                pages += 1
                cursor = r.json()["next_cursor"]
                if not cursor:
                    break
        return f"{pages} pages, largest {biggest / MiB:.1f} MiB"

    def dashboard() -> str:
        signed = httpx.post(url + "/login", data={"token": "bench-tenant", "next": "/"})
        cookies = {"conveyor_session": signed.cookies["conveyor_session"]}
        with httpx.Client(base_url=url, cookies=cookies, timeout=120) as browser:
            sizes = [len(browser.get("/jobs", headers={"Accept": "text/html"}).content)
                     for _ in range(10)]
        return f"10 pages of 50 jobs, {max(sizes) / 1024:.0f} KiB"

    def idle() -> str:
        time.sleep(3)
        return "nothing sent (the machine's noise)"

    return [("idle", idle), ("body-120MiB", body_120), ("body-chunked", body_chunked),
            ("body-values", body_values), ("body-tiny", body_tiny),
            ("body-parallel", body_parallel), ("fill-60MiB", fill_60), ("list-light", list_light),
            ("list-bodies", list_bodies), ("dashboard", dashboard)]


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = args.url or f"sqlite:///{Path(folder) / 'bench.db'}"
        if store.startswith("postgres") and "schema=" not in store:
            store += ("&" if "?" in store else "?") + f"schema=mem_{uuid.uuid4().hex[:8]}"
        url, server = start_server(Path(folder), store)
        try:
            for _ in range(20):
                httpx.get(url + "/healthz")
            time.sleep(0.5)
            baseline = rss(server.pid)
            print(f"store {store.split('?')[0].split('://')[0]}, server baseline RSS "
                  f"{baseline / MiB:.1f} MiB; targets: rise < 50 MB, /healthz < 50 ms")
            print(f"{'phase':<14} {'answer':<34} {'rise MB':>7} {'in phase':>8} "
                  f"{'healthz max ms':>14} {'p99':>6} {'p50':>6} {'polls':>6}")
            for name, run in phases(url):
                with Watch(server.pid, url) as watch:
                    outcome = run()
                lat = sorted(watch.latencies) or [0.0]
                p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
                rise = (watch.peak - baseline) / 1e6
                own = (watch.peak - watch.start) / 1e6
                p50 = lat[len(lat) // 2]
                print(f"{name:<14} {outcome[:34]:<34} {rise:>7.1f} {own:>8.1f} "
                      f"{lat[-1] * 1000:>14.1f} {p99 * 1000:>6.1f} {p50 * 1000:>6.1f} "
                      f"{len(lat):>6}", flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(20)


if __name__ == "__main__":
    main()
