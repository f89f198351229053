"""The intake triggers' message decoding: a malformed message is dropped, named by id only."""

from __future__ import annotations

import logging

import pytest
from azure.functions.queue import QueueMessage

from api.intake import _decode
from relay.intake import QueueJob, encode_message


@pytest.mark.parametrize("queue", ["jobs", "poison"])
def test_a_malformed_message_is_dropped_with_its_id_and_not_its_body(
    queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    msg = QueueMessage(id="m-17", body=b'{"v": 1, "secret prompt"', dequeue_count=1)
    with caplog.at_level(logging.INFO, logger="relay.intake"):
        assert _decode(msg, queue) is None
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"dropped a malformed {queue} message"
    assert record.messageId == "m-17"  # type: ignore[attr-defined]
    assert "secret" not in caplog.text


def test_a_well_formed_message_gives_its_job() -> None:
    msg = QueueMessage(id="m-1", body=encode_message("job-1", "ann").encode(), dequeue_count=1)
    assert _decode(msg, "jobs") == QueueJob("job-1", "ann")
