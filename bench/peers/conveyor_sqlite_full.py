"""Conveyor on SQLite with synchronous=FULL: the same durability as SqliteHuey's default."""
import os

import common

from conveyor import Conveyor, Settings

PYTHON = ".venv-conveyor/bin/python"
DB = os.path.join(common.RAW_DIR, "conveyor-full.db")
app = Conveyor(settings=Settings.load(url="sqlite:///" + DB, sqlite_synchronous="FULL",
                                      log_level="WARNING"))


@app.task()
async def job(ctx, payload):
    await common.run_job_async(payload["ms"])


from adapters.conveyor_sqlite import Adapter as _Base  # noqa: E402


class Adapter(_Base):
    module = "conveyor_sqlite_full"
    db = DB

    @property
    def app(self):
        return app
