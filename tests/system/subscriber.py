"""A separate process that subscribes to the store's event feed and logs what it sees.

    python subscriber.py URL FOLDER

Subscribes, writes FOLDER/subscriber.ready, then appends `JOB_ID STATE` per event to
FOLDER/events.log (one write per batch) until FOLDER/stop exists.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from conveyor import Conveyor
from conveyor.job import JobEvent


async def main(url: str, folder: Path) -> None:
    app = Conveyor(url)
    fd = os.open(folder / "events.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def seen(events: list[JobEvent]) -> None:
        lines = "".join(f"{e.id} {e.state}\n" for e in events if e.progress is None)
        os.write(fd, lines.encode())

    stop = await app.store.subscribe(seen)
    (folder / "subscriber.ready").touch()
    while not (folder / "stop").exists():
        await asyncio.sleep(0.02)
    await stop()
    os.close(fd)
    app.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
