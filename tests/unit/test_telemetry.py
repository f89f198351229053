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


def test_no_code_passes_the_job_id_as_log_extra() -> None:
    """Inside a job scope the record already has `jobId`; an `extra` naming it again makes
    logging raise KeyError (which once failed every attempt). Use `job_scope` instead."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for folder in ("relay", "api", "activities", "orchestrations")
        for path in (root / folder).rglob("*.py")
        if re.search(r"extra\s*=\s*\{[^}]*[\"']jobId[\"']", path.read_text())
    ]
    assert offenders == []


def test_the_local_host_tag_chains_onto_the_app_factory(caplog: pytest.LogCaptureFixture) -> None:
    from local.host.logs import install_record_factory

    telemetry.configure({})
    install_record_factory()
    install_record_factory()  # idempotent: does not stack a second tag
    with caplog.at_level(logging.INFO), telemetry.job_scope("j9"):
        logging.getLogger("relay.x").info("inside")
    assert caplog.records[-1].jobId == "j9"  # type: ignore[attr-defined]


def test_http_clients_request_lines_are_kept_below_info() -> None:
    # One INFO line per request, URL included: the openai SDK logs through httpx2.
    telemetry.configure({})
    for name in ("httpx", "httpcore", "httpx2", "httpcore2", "openai"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
