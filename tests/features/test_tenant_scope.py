"""app.for_tenant(): a handle that sees and acts on one tenant's jobs only."""

import pytest

from conveyor import Conveyor, ConveyorError, JobNotFound


def test_tenant_scope_isolates_reads_and_actions(tmp_path):
    app = Conveyor(f"sqlite:///{tmp_path}/t.db")
    org_a, org_b = app.for_tenant("org-a"), app.for_tenant("org-b")
    mine = org_a.enqueue("send", {"n": 1})
    theirs = org_b.enqueue("send", {"n": 2})
    assert mine.tenant == "org-a"
    assert [j.id for j in org_a.list_jobs()] == [mine.id]
    assert org_a.get(mine.id).payload == {"n": 1}
    for action in (org_a.get, org_a.cancel, org_a.retry):
        with pytest.raises(JobNotFound):
            action(theirs.id)
    assert app.get(theirs.id).state == "queued"  # untouched
    assert org_a.stats().by_state["queued"] == 1
    assert [q.counts for q in org_b.queues()] == [{"queued": 1}]
    with pytest.raises(ConveyorError):
        org_a.enqueue("send", {}, tenant="org-b")
    [a2, a3] = org_a.enqueue_many([("send", {"n": 3}), {"task": "send", "payload": {"n": 4}}])
    assert {a2.tenant, a3.tenant} == {"org-a"}
    assert org_a.cancel(mine.id).state == "cancelled"
    app.close()
