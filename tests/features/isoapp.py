"""Tasks with isolation='process', importable by the forkserver child."""

import os
import time

from conveyor import Conveyor, Retry

app = Conveyor(os.environ.get("CONVEYOR_URL", "sqlite:///./iso.db"))


@app.task(isolation="process", timeout=4, retry=Retry(attempts=1))  # a loaded machine
# starts a child process slowly: 4 s lets it write its pid before the timeout kills it
def hang(ctx, payload):
    with open(payload["marker"], "w") as f:
        f.write(str(os.getpid()))
    time.sleep(30)
    return "never"


@app.task(isolation="process", timeout=10)
def double(ctx, payload):
    ctx.progress(40, "halfway")
    return {"value": payload["x"] * 2, "pid": os.getpid()}


@app.task(isolation="process", timeout=10, retry=Retry(attempts=1))
def explode(ctx, payload):
    raise ValueError("bad input " + payload["why"])
