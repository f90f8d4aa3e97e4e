"""Load check of the HTTP API: enqueue over HTTP with concurrent clients.

    python bench/http_load.py                          # starts its own server on SQLite
    python bench/http_load.py --url http://127.0.0.1:8000 --token T --clients 32 --seconds 10

Prints requests/s, latency percentiles and the error count. With no --url it serves a fresh
SQLite store in this process (uvicorn in a thread) and removes it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start one here)")
    parser.add_argument("--token", help="bearer token for --url")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to run")
    parser.add_argument("--task", default="bench.noop", help="task name to enqueue")
    parser.add_argument("--batch", type=int, default=0,
                        help="use POST /api/v1/batches with this many jobs per request")
    return parser.parse_args()


async def client_loop(url: str, headers: dict[str, str], body: dict[str, object], path: str,
                      until: float, latencies: list[float], errors: list[int]) -> None:
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        while time.monotonic() < until:
            started = time.perf_counter()
            response = await client.post(path, json=body)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 202:
                errors.append(response.status_code)


async def run_load(url: str, token: str | None, args: argparse.Namespace
                   ) -> tuple[list[float], list[int], float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    job = {"task": args.task, "payload": {"n": 1, "text": "hello"}}
    body, path = (job, "/api/v1/jobs") if not args.batch else (
        {"jobs": [job] * args.batch}, "/api/v1/batches")
    latencies: list[float] = []
    errors: list[int] = []
    started = time.monotonic()
    until = started + args.seconds
    await asyncio.gather(*(client_loop(url, headers, body, path, until, latencies, errors)
                           for _ in range(args.clients)))
    return latencies, errors, time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(latencies: list[float], errors: list[int], elapsed: float,
           args: argparse.Namespace) -> None:
    n = len(latencies)
    per_request = max(1, args.batch)
    print(f"clients {args.clients}, {elapsed:.1f} s, {n} requests"
          f"{f' of {args.batch} jobs' if args.batch else ''}, errors {len(errors)}")
    if not n:
        return
    print(f"requests/s  {n / elapsed:10.1f}")
    print(f"jobs/s      {n * per_request / elapsed:10.1f}")
    print(f"latency ms  p50 {percentile(latencies, .5) * 1000:.2f}  "
          f"p95 {percentile(latencies, .95) * 1000:.2f}  "
          f"p99 {percentile(latencies, .99) * 1000:.2f}  "
          f"mean {statistics.fmean(latencies) * 1000:.2f}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_server(folder: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """`conveyor serve` on a fresh SQLite file, in its own process so the load generator
    does not share a GIL with the server."""
    port = free_port()
    env = {**os.environ, "CONVEYOR_URL": f"sqlite:///{folder / 'bench.db'}",
           "CONVEYOR_API_TOKENS": ""}
    conveyor = str(Path(sys.executable).parent / "conveyor")
    server = subprocess.Popen([conveyor, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return url, server
        except httpx.TransportError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise SystemExit("conveyor serve did not start") from None
            time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    args = parse_args()
    if args.url:
        latencies, errors, elapsed = asyncio.run(run_load(args.url, args.token, args))
        report(latencies, errors, elapsed, args)
        return
    with tempfile.TemporaryDirectory() as folder:
        url, server = local_server(Path(folder))
        try:
            before = cpu_seconds(server.pid)
            latencies, errors, elapsed = asyncio.run(run_load(url, None, args))
            used = cpu_seconds(server.pid) - before
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(15)
        report(latencies, errors, elapsed, args)
        if latencies and used > 0:
            print(f"server CPU  {used / elapsed:.0%} of one core, "
                  f"{used / len(latencies) * 1e6:.0f} us per request "
                  f"(the load generator shares this machine's {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
