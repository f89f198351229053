"""Idempotency-Key reuse against a real Azurite: the key is bound to its first request.

The same key with the same parsed request returns the first job; with a different request
it is refused (`IdempotencyKeyReused`, 422 at the API) and nothing is created: no record,
no index row, no admission row. The stored row holds a salted fingerprint, never the prompt.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from relay.jobs import JobRequest, Target
from relay.limits import IdempotencyKeyReused, request_fingerprint
from relay.services import Services
from tests.integration._services import services_on_azurite

pytestmark = pytest.mark.azurite

SECRET = "the secret prompt 7f3a"


def _request(prompt: str = SECRET, max_tokens: int = 50) -> JobRequest:
    return JobRequest(prompt=prompt, messages=None, max_tokens=max_tokens)


@pytest.fixture
async def services(storage_connection_string: str) -> AsyncIterator[Services]:
    async with services_on_azurite(storage_connection_string, "ik") as s:
        yield s


async def _active(s: Services, owner: str) -> list[str]:
    rows = s.admission._table.query_entities(
        "PartitionKey eq 'active' and owner eq @owner", parameters={"owner": owner}
    )
    return sorted([str(row["RowKey"]) async for row in rows])


async def test_same_key_same_request_returns_the_first_job(services: Services) -> None:
    target = Target("user", "ann")
    first = await services.accept_job(uuid.uuid4().hex, "ann", _request(), target, "k")
    again = await services.accept_job(uuid.uuid4().hex, "ann", _request(), target, "k")
    assert first.created and not again.created and again.job_id == first.job_id


@pytest.mark.parametrize(
    ("request_b", "target_b"),
    [
        (_request(prompt=SECRET + "!"), Target("user", "ann")),
        (_request(max_tokens=51), Target("user", "ann")),
        (
            JobRequest(prompt=SECRET, messages=None, max_tokens=50, group_name="g1"),
            Target("group", "g1"),
        ),
    ],
    ids=["prompt", "option", "target"],
)
async def test_same_key_other_request_is_refused_and_creates_nothing(
    services: Services, request_b: JobRequest, target_b: Target
) -> None:
    first = await services.accept_job(uuid.uuid4().hex, "bob", _request(), Target("user", "bob"),
                                      "k")  # fmt: skip
    refused_id = uuid.uuid4().hex
    with pytest.raises(IdempotencyKeyReused):
        await services.accept_job(refused_id, "bob", request_b, target_b, "k")
    assert await _active(services, "bob") == [first.job_id]
    listed, _ = await services.store.list_jobs("bob", 10, None)
    assert [r.job_id for r in listed] == [first.job_id]
    rows = services.store._jobs.query_entities("PartitionKey eq @pk", parameters={"pk": refused_id})
    assert [row async for row in rows] == []
    # The key still belongs to the first request.
    again = await services.accept_job(uuid.uuid4().hex, "bob", _request(), Target("user", "bob"),
                                      "k")  # fmt: skip
    assert again.job_id == first.job_id and not again.created


async def test_the_key_row_holds_a_fingerprint_not_the_prompt(services: Services) -> None:
    await services.accept_job(uuid.uuid4().hex, "cy", _request(), Target("user", "cy"), "k")
    rows = [row async for row in services.idempotency._table.query_entities("PartitionKey eq 'cy'")]
    assert len(rows) == 1
    stored = rows[0]
    assert all(SECRET not in str(value) for value in stored.values())
    body = {"request": _request().to_dict(), "target": ["user", "cy"]}
    assert stored["fingerprint"] == request_fingerprint("cy", "k", body)
    # Salted by owner and key: the same request under another key hashes differently.
    assert request_fingerprint("cy", "k2", body) != stored["fingerprint"]


async def test_a_row_without_fingerprint_matches_any_request(services: Services) -> None:
    """Keys bound before fingerprints existed keep the old behaviour: the first job."""
    job_id = uuid.uuid4().hex
    assert await services.idempotency.claim("dee", "old", job_id) == job_id
    await services.store.create_job(job_id, "dee", _request(), Target("user", "dee"), 1.0)
    again = await services.accept_job(uuid.uuid4().hex, "dee", _request("other"),
                                      Target("user", "dee"), "old")  # fmt: skip
    assert again.job_id == job_id and not again.created
