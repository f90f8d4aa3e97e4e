"""The store's event feed reaches subscribers in other processes; wake-ups clean up after
dead workers."""

import asyncio
import os
import socket
import subprocess
import sys

from conveyor import Conveyor
from conveyor.store.sqlite.wake import wake_folder


def test_events_from_another_process(tmp_path):
    url = f"sqlite:///{tmp_path}/ev.db"
    app = Conveyor(url)

    @app.task()
    async def hello(ctx, payload):
        ctx.progress(30)
        return 1

    async def scenario():
        got = []
        stop = await app.store.subscribe(got.extend)
        code = ("from conveyor import Conveyor; "
                f"Conveyor({url!r}).enqueue('hello', {{'a': 1}}, tenant='t1')")
        subprocess.run([sys.executable, "-c", code], check=True)
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.01)
        worker = app.worker(concurrency=2)
        await worker.run_until_idle()
        worker.close()
        await asyncio.sleep(0.05)
        await stop()
        return got

    events = asyncio.run(scenario())
    states = [e.state for e in events]
    assert states[0] == "queued" and events[0].tenant == "t1"
    assert "running" in states and states[-1] == "completed"
    assert any(e.progress == 30 for e in events)
    app.close()


def test_stale_wake_socket_of_a_dead_worker_is_removed(tmp_path):
    path = str(tmp_path / "w.db")
    app = Conveyor(f"sqlite:///{path}")
    folder = wake_folder(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    stale = os.path.join(folder, "999999-dead.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(stale)
    sock.close()  # bound once, nobody listens any more: like a worker killed with SIGKILL
    app.enqueue("anything", {})
    assert not os.path.exists(stale)
    app.close()
