"""Hosts of our own: network namespaces on one bridge, cut off and healed at will.

    net = Network.create()              # a hub namespace with a bridge, and a link to it
    db = net.host("db")                 # a namespace with its own address on the bridge
    proc = db.popen(["postgres", ...])  # runs inside that namespace
    net.cut(worker)                     # its bridge port down: packets go nowhere
    net.heal(worker)
    net.close()                         # every process in the namespaces, then the namespaces

The test process stays in the root namespace and reaches every host through a veth pair of its
own (`net.gateway`, the .1 address). Names carry a random tag, so parallel runs never collide,
and `close()` runs at exit too. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and `ip`.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


class NamespacesUnavailable(RuntimeError):
    """This machine does not let us make network namespaces (not root, no `ip`, a sandbox)."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def probe() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    name = f"conveyor-probe-{secrets.token_hex(3)}"
    made = ip("netns", "add", name, check=False)
    if made.returncode != 0:
        return f"ip netns add is not permitted here: {made.stderr.strip()}"
    try:
        bridge = ip("-n", name, "link", "add", "br0", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"no bridge devices in a namespace here: {bridge.stderr.strip()}"
    finally:
        ip("netns", "del", name, check=False)
    return None


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    port: str  # the hub's end of this host's cable
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def argv(self, command: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *command]

    def popen(self, command: list[str], *, env: dict[str, str] | None = None,
              log: Path | None = None, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start `command` in this host's namespace, in a session of its own."""
        out: IO[bytes] | int = subprocess.DEVNULL
        if log is not None:
            out = open(log, "ab")  # noqa: SIM115 - the child holds it; closed below
        try:
            proc = subprocess.Popen(self.argv(command), env=env, cwd=cwd, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            if log is not None:
                assert not isinstance(out, int)
                out.close()
        self.procs.append(proc)
        return proc

    def run(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(command), capture_output=True, text=True, check=False,
                              **kwargs)

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        listed = ip("netns", "pids", self.namespace, check=False).stdout.split()
        for pid in listed:  # anything else still in there (a daemon that forked)
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


class Network:
    """A bridge in a hub namespace, the test's own link to it, and hosts plugged into it."""

    def __init__(self, tag: str, subnet: ipaddress.IPv4Network) -> None:
        self.tag = tag
        self.subnet = subnet
        self.hub = f"conveyor-mh-{tag}-hub"
        self.link = f"cvm{tag}"  # the root namespace's end (15 characters at most)
        self.gateway = str(subnet.network_address + 1)
        self.hosts: dict[str, Host] = {}
        self._closed = False
        atexit.register(self.close)

    @classmethod
    def create(cls) -> Network:
        tag = secrets.token_hex(3)
        net = cls(tag, _free_subnet())
        try:
            net._build()
        except BaseException:
            net.close()
            raise
        return net

    def _build(self) -> None:
        ip("netns", "add", self.hub)
        ip("-n", self.hub, "link", "set", "lo", "up")
        ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        ip("-n", self.hub, "link", "set", "dev", "br0", "up")
        ip("link", "add", self.link, "type", "veth", "peer", "name", "uplink",
           "netns", self.hub)
        ip("-n", self.hub, "link", "set", "dev", "uplink", "master", "br0", "up")
        ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.link)
        ip("link", "set", "dev", self.link, "up")

    def host(self, name: str) -> Host:
        """A new namespace with one cable to the bridge and the next free address."""
        address = str(self.subnet.network_address + 10 + len(self.hosts))
        host = Host(name, f"conveyor-mh-{self.tag}-{name}", address, f"h-{name}"[:15])
        self.hosts[name] = host
        ip("netns", "add", host.namespace)
        ip("-n", host.namespace, "link", "set", "lo", "up")
        ip("-n", self.hub, "link", "add", host.port, "type", "veth", "peer", "name", "eth0",
           "netns", host.namespace)
        ip("-n", self.hub, "link", "set", "dev", host.port, "master", "br0", "up")
        ip("-n", host.namespace, "addr", "add", f"{address}/{self.subnet.prefixlen}",
           "dev", "eth0")
        ip("-n", host.namespace, "link", "set", "dev", "eth0", "up")
        return host

    def cut(self, host: Host) -> None:
        """Unplug the host: its packets, and those sent to it, go nowhere (no reset)."""
        ip("-n", self.hub, "link", "set", "dev", host.port, "down")

    def heal(self, host: Host) -> None:
        ip("-n", self.hub, "link", "set", "dev", host.port, "up")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for host in self.hosts.values():
            host.kill_all()
        time.sleep(0.05)
        for host in self.hosts.values():
            ip("netns", "del", host.namespace, check=False)
        ip("netns", "del", self.hub, check=False)  # takes the root end of the link with it
        ip("link", "del", self.link, check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.0.0.0/8 that no route on this machine covers."""
    routes = ip("-4", "route", "show", "table", "all").stdout
    taken = [ipaddress.ip_network(word, strict=False) for line in routes.splitlines()
             for word in line.split()[:1] if word[0].isdigit()]
    for _ in range(100):
        candidate = ipaddress.ip_network(
            f"10.{random.randint(64, 250)}.{random.randint(0, 255)}.0/24")
        if not any(candidate.overlaps(net) for net in taken):
            return candidate
    raise RuntimeError("no free 10.x.y.0/24 subnet for the test network")
