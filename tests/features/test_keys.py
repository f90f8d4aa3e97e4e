"""`conveyor keys rotate` re-encrypts stored payloads under the newest key."""

import base64
import os
import subprocess
import sys

from conveyor import Conveyor, Settings


def key(name):
    return f"{name}:" + base64.b64encode(os.urandom(32)).decode()


def test_rotate_reencrypts_and_old_key_can_go(tmp_path):
    url = f"sqlite:///{tmp_path}/k.db"
    old, new = key("v1"), key("v2")
    before = Conveyor(settings=Settings.load(url=url, encryption_keys=old))
    job = before.enqueue("send", {"secret": "s3"}, tenant="t")
    raw = before.call(lambda s: s.get(job.id)).payload
    assert b'"key":"v1"' in raw and b"s3" not in raw
    before.close()

    env = dict(os.environ, CONVEYOR_URL=url, CONVEYOR_ENCRYPTION_KEYS=f"{new},{old}")
    out = subprocess.run([sys.executable, "-m", "conveyor", "keys", "rotate"], env=env,
                         capture_output=True, text=True, check=True)
    assert "re-encrypted 1 jobs" in out.stdout

    only_new = Conveyor(settings=Settings.load(url=url, encryption_keys=new))
    assert only_new.get(job.id).payload == {"secret": "s3"}
    assert b'"key":"v2"' in only_new.call(lambda s: s.get(job.id)).payload
    only_old = Conveyor(settings=Settings.load(url=url, encryption_keys=old))
    assert "$undecodable" in only_old.get(job.id).payload
