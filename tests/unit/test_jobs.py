from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.errors import ValidationError
from relay.jobs import (
    PROFILE_FIELDS,
    ChatMessage,
    JobRequest,
    Limits,
    Target,
    build_chat_request,
    parse_job_request,
    validate_connection_id,
    validate_group_name,
)
from relay.settings import load_settings

LIMITS = Limits(prompt_max_chars=50, system_max_chars=20, messages_max=4, max_tokens_limit=100)


def field_of(body: object, profile: Any = "chat") -> str:
    with pytest.raises(ValidationError) as info:
        parse_job_request(body, LIMITS, profile)
    assert info.value.reason
    return info.value.field


def test_prompt_job_with_every_option() -> None:
    job = parse_job_request(
        {
            "prompt": "Why is the sky blue?",
            "system": "Be brief.",
            "maxTokens": 100,
            "temperature": 0,
            "groupName": "room-1",
        },
        LIMITS,
    )
    assert job == JobRequest(
        prompt="Why is the sky blue?",
        messages=None,
        system="Be brief.",
        max_tokens=100,
        temperature=0.0,
        group_name="room-1",
        connection_id=None,
    )
    assert isinstance(job.temperature, float)
    assert job.target_for("alice") == Target("group", "room-1")


def test_messages_job_and_default_target() -> None:
    job = parse_job_request(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!\n"},
                {"role": "user", "content": "Tell\tme more"},
            ]
        },
        LIMITS,
    )
    assert job.prompt is None and job.messages is not None
    assert job.messages[-1] == ChatMessage("user", "Tell\tme more")
    assert job.target_for("alice") == Target("user", "alice")
    cid = parse_job_request({"prompt": "x", "connectionId": "c_1-A"}, LIMITS)
    assert cid.target_for("alice") == Target("connection", "c_1-A")


def test_nulls_and_blank_system_mean_absent() -> None:
    job = parse_job_request(
        {"prompt": "x", "messages": None, "system": "  ", "maxTokens": None, "groupName": None},
        LIMITS,
    )
    assert job.system is None and job.max_tokens is None and job.group_name is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (None, "body"),
        ([], "body"),
        ("prompt", "body"),
        ({}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": " \n\t "}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "x" * 51}, "prompt"),
        ({"prompt": "a\x00b"}, "prompt"),
        ({"prompt": "a\x1bb"}, "prompt"),
        ({"prompt": "a\ud800b"}, "prompt"),
        ({"prompt": "x", "messages": [{"role": "user", "content": "y"}]}, "messages"),
        ({"prompt": "x", "model": "gpt-4"}, "model"),
        ({"messages": "hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}] * 5}, "messages"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": ""}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": ["x"]}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "x", "name": "bob"}]}, "messages[0].name"),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c\x07"},
                ]
            },
            "messages[2].content",
        ),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
            "messages[1].role",
        ),
        (
            {
                "messages": [
                    {"role": "system", "content": "s" * 21},
                    {"role": "user", "content": "u"},
                ]
            },
            "messages[0].content",
        ),
        (
            {
                "system": "s",
                "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            },
            "system",
        ),
        ({"prompt": "x", "system": 1}, "system"),
        ({"prompt": "x", "system": "s" * 21}, "system"),
        ({"prompt": "x", "maxTokens": 0}, "maxTokens"),
        ({"prompt": "x", "maxTokens": 101}, "maxTokens"),
        ({"prompt": "x", "maxTokens": True}, "maxTokens"),
        ({"prompt": "x", "maxTokens": 10.0}, "maxTokens"),
        ({"prompt": "x", "maxTokens": "10"}, "maxTokens"),
        ({"prompt": "x", "temperature": -0.1}, "temperature"),
        ({"prompt": "x", "temperature": 2.01}, "temperature"),
        ({"prompt": "x", "temperature": float("nan")}, "temperature"),
        ({"prompt": "x", "temperature": float("inf")}, "temperature"),
        ({"prompt": "x", "temperature": False}, "temperature"),
        ({"prompt": "x", "temperature": "1"}, "temperature"),
        ({"prompt": "x", "groupName": "a", "connectionId": "b"}, "connectionId"),
        ({"prompt": "x", "groupName": ""}, "groupName"),
        ({"prompt": "x", "groupName": "-room"}, "groupName"),
        ({"prompt": "x", "groupName": "room 1"}, "groupName"),
        ({"prompt": "x", "groupName": "r" * 65}, "groupName"),
        ({"prompt": "x", "groupName": "room\n"}, "groupName"),
        ({"prompt": "x", "groupName": "salle-é"}, "groupName"),
        ({"prompt": "x", "connectionId": "c" * 129}, "connectionId"),
        ({"prompt": "x", "connectionId": "a/b"}, "connectionId"),
        ({"prompt": "x", "connectionId": 7}, "connectionId"),
    ],
)
def test_bad_input_names_the_field(body: object, field: str) -> None:
    assert field_of(body) == field


def test_limits_are_counted_in_characters() -> None:
    parse_job_request({"prompt": "😀" * 50}, LIMITS)  # 50 characters, 200 UTF-8 bytes
    parse_job_request({"prompt": "x", "groupName": "g" * 64, "maxTokens": 100}, LIMITS)
    parse_job_request({"prompt": "x", "connectionId": "-" * 128, "temperature": 2}, LIMITS)


def test_limits_from_settings() -> None:
    settings = load_settings(
        {
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "AzureSignalRConnectionString": "Endpoint=http://127.0.0.1;AccessKey=k;Version=1.0;",
            "AZURE_OPENAI_ENDPOINT": "http://127.0.0.1:8889",
            "AZURE_OPENAI_DEPLOYMENT": "chat",
            "MESSAGES_MAX": "3",
        }
    )
    assert Limits.from_settings(settings) == Limits(32000, 8000, 3, 4096)


def test_path_parameter_validators() -> None:
    assert validate_group_name("Room_1") == "Room_1"
    assert validate_connection_id("_abc-9") == "_abc-9"
    with pytest.raises(ValidationError) as info:
        validate_group_name("_room", field="group")
    assert info.value.field == "group"
    with pytest.raises(ValidationError):
        validate_connection_id(None)


@given(
    st.fixed_dictionaries(
        {"prompt": st.text(min_size=1, max_size=50).filter(str.strip)},
        optional={
            "system": st.text(max_size=20),
            "maxTokens": st.integers(1, 100),
            "temperature": st.floats(0, 2),
            "groupName": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", fullmatch=True),
        },
    )
)
def test_accepted_jobs_round_trip_through_json(body: dict[str, Any]) -> None:
    try:
        job = parse_job_request(body, LIMITS)
    except ValidationError as exc:  # only control characters may be refused here
        assert exc.field in ("prompt", "system") and "forbidden character" in exc.reason
        return
    again = JobRequest.from_dict(json.loads(json.dumps(job.to_dict())))
    assert again == job
    assert parse_job_request(job.to_dict(), LIMITS) == job


def test_to_dict_is_camel_case_and_messages_round_trip() -> None:
    job = parse_job_request(
        {"messages": [{"role": "user", "content": "hi"}], "maxTokens": 5, "connectionId": "c"},
        LIMITS,
    )
    assert job.to_dict() == {
        "messages": [{"role": "user", "content": "hi"}],
        "maxTokens": 5,
        "connectionId": "c",
    }
    assert JobRequest.from_dict(job.to_dict()) == job


@pytest.mark.parametrize(
    "data",
    [
        {"prompt": 1},
        {"messages": "x"},
        {"messages": [{"role": "bot", "content": "x"}]},
        {"prompt": "x", "maxTokens": True},
        {"prompt": "x", "temperature": "hot"},
    ],
)
def test_from_dict_refuses_malformed_data(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        JobRequest.from_dict(data)


# --- model profiles ------------------------------------------------------------------------


def test_chat_profile_request() -> None:
    job = parse_job_request({"prompt": "Q", "system": "S", "temperature": 0.2}, LIMITS)
    assert build_chat_request(job, "chat", 800) == {
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
        "max_tokens": 800,
        "temperature": 0.2,
    }
    job = parse_job_request(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
            ],
            "maxTokens": 7,
        },
        LIMITS,
    )
    request = build_chat_request(job, "chat", 800)
    assert request == {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ],
        "max_tokens": 7,
    }


def test_reasoning_profile_request() -> None:
    job = parse_job_request({"prompt": "Q", "maxTokens": 9, "temperature": 1}, LIMITS, "reasoning")
    request = build_chat_request(job, "reasoning", 800)
    assert request == {"messages": [{"role": "user", "content": "Q"}], "max_completion_tokens": 9}
    job = parse_job_request({"prompt": "Q"}, LIMITS, "reasoning")
    assert build_chat_request(job, "reasoning", 800)["max_completion_tokens"] == 800


def test_reasoning_profile_refuses_other_temperatures() -> None:
    assert field_of({"prompt": "Q", "temperature": 0.7}, "reasoning") == "temperature"
    job = parse_job_request({"prompt": "Q", "temperature": 0.7}, LIMITS, "chat")
    with pytest.raises(ValidationError) as info:
        build_chat_request(job, "reasoning", 800)
    assert info.value.field == "temperature"


def test_profile_table_covers_every_option() -> None:
    assert set(PROFILE_FIELDS) == {"chat", "reasoning"}
    for fields in PROFILE_FIELDS.values():
        assert set(fields) == {"max_tokens", "temperature"}
