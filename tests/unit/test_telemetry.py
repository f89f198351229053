from __future__ import annotations

import logging

import pytest

from relay import telemetry


def test_records_inside_a_job_scope_carry_the_job_id(caplog: pytest.LogCaptureFixture) -> None:
    telemetry.configure({})
    log = logging.getLogger("relay.some.module")
    with caplog.at_level(logging.INFO):
        with telemetry.job_scope("abc123"):
            log.info("inside")
        log.info("outside")
    inside, outside = caplog.records[-2:]
    assert inside.jobId == "abc123"  # type: ignore[attr-defined]
    assert not hasattr(outside, "jobId")


def test_aad_authentication_string_is_parsed() -> None:
    assert telemetry._aad_client_id("ClientId=abc;Authorization=AAD") == "abc"
    assert telemetry._aad_client_id("Authorization=AAD") == ""
    assert telemetry._aad_client_id("") is None
