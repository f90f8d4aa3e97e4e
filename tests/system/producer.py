"""One producer process for the idempotency test.

    python producer.py URL FOLDER NAME KEYS SEED

Writes FOLDER/NAME.ready, waits for FOLDER/go, enqueues `work` once per key (in a shuffled
order) with the key as its idempotency key, then writes FOLDER/NAME.json:
{key: [job id, duplicate]}.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from sysapp import make_app


def main(url: str, folder: str, name: str, keys: int, seed: int) -> None:
    app = make_app(url)
    app.store  # noqa: B018 - open the store before the start line, not after
    order = [f"key-{n}" for n in range(keys)]
    random.Random(seed).shuffle(order)
    base = Path(folder)
    (base / f"{name}.ready").touch()
    while not (base / "go").exists():
        time.sleep(0.005)
    seen = {}
    for key in order:
        job = app.enqueue("work", {"key": key}, idempotency_key=key)
        seen[key] = [job.id, job.duplicate]
    (base / f"{name}.json").write_text(json.dumps(seen))
    app.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
