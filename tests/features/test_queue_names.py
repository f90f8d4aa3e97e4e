"""Queue names follow one rule wherever a job is enqueued (conveyor.names): 1 to 100 ASCII
letters, digits and . - _ : / . Names in the wild keep working; anything else is refused with
an error that states the rule, and nothing of its batch is stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, ConveyorError, JobContext
from conveyor.errors import InvalidQueueName
from conveyor.names import check_queue_name, is_queue_name

GOOD = ["default", "emails", "billing.invoices", "acme:reports", "eu-west/slow", "v2_exports",
        "A-Z.0_9:/-", "q" * 100]
BAD = ["q" * 101, "with space", "[/]", "[bold]x[/bold]", "tab\there", "line\nbreak",
       "*", "*scheduled", "émails", "queue\u202e", "semi;colon", "pipe|d", "a,b", "x=1",
       "<script>", "nul\x00"]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Conveyor]:
    application = Conveyor(f"sqlite:///{tmp_path / 'names.db'}")
    yield application
    application.close()


@pytest.mark.parametrize("name", GOOD)
def test_names_in_the_wild_are_accepted(app: Conveyor, name: str) -> None:
    assert is_queue_name(name) and check_queue_name(name) == name
    assert app.enqueue("anything", {}, queue=name).queue == name


def test_an_empty_name_is_no_name() -> None:
    assert not is_queue_name("")  # (queue="" in enqueue means the task's own queue)


@pytest.mark.parametrize("name", BAD)
def test_other_names_are_refused_with_the_rule(app: Conveyor, name: str) -> None:
    assert not is_queue_name(name)
    with pytest.raises(InvalidQueueName) as refused:
        app.enqueue("anything", {}, queue=name)
    assert "ASCII letters, digits and . - _ : /" in str(refused.value)
    assert isinstance(refused.value, ConveyorError)
    assert app.list_jobs() == []


def test_a_batch_with_one_bad_name_stores_nothing(app: Conveyor) -> None:
    with pytest.raises(InvalidQueueName) as refused:
        app.enqueue_many([{"task": "a", "queue": "fine"}, {"task": "a", "queue": "not fine"}])
    assert getattr(refused.value, "index", None) == 1
    assert app.list_jobs() == []


@pytest.mark.anyio
async def test_async_producers_and_tenant_handles_check_too(app: Conveyor) -> None:
    with pytest.raises(InvalidQueueName):
        await app.enqueue_async("a", {}, queue="[/]")
    with pytest.raises(InvalidQueueName):
        app.for_tenant("acme").enqueue("a", {}, queue="x y")
    assert app.list_jobs() == []


def test_a_task_cannot_be_declared_on_a_bad_queue(app: Conveyor) -> None:
    with pytest.raises(ValueError, match="ASCII letters"):
        @app.task(queue="mail box")
        def send(ctx: JobContext, payload: dict[str, object]) -> None: ...

    @app.task(queue="mail.box")
    def deliver(ctx: JobContext, payload: dict[str, object]) -> None: ...

    assert deliver.enqueue({}).queue == "mail.box"
