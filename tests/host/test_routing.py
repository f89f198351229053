"""Route templates, constraints and precedence (pure)."""

from __future__ import annotations

import pytest

from local.host.routing import RouteError, RouteTable, parse_template


def table(*routes: tuple[str, list[str] | None]) -> RouteTable[str]:
    return RouteTable([parse_template(t, t, m) for t, m in routes])


def test_literal_beats_constrained_beats_plain_beats_catch_all_whatever_the_order() -> None:
    t = table(
        ("api/{*rest}", None),
        ("api/items/{name}", None),
        ("api/items/{id:int}", None),
        ("api/items/new", None),
    )
    assert t.match("GET", "/api/items/new")[0].target == "api/items/new"  # type: ignore[index]
    assert t.match("GET", "/api/items/12")[0].target == "api/items/{id:int}"  # type: ignore[index]
    assert t.match("GET", "/api/items/abc")[0].target == "api/items/{name}"  # type: ignore[index]
    found = t.match("GET", "/api/other/x/y")
    assert found is not None and found[1] == {"rest": "other/x/y"}


def test_method_mismatch_falls_through_and_ends_in_no_match() -> None:
    t = table(("api/jobs", ["POST"]), ("api/{x}", ["GET"]))
    assert t.match("DELETE", "/api/jobs") is None
    found = t.match("GET", "/api/jobs")
    assert found is not None and found[0].target == "api/{x}"
    assert t.match("HEAD", "/api/jobs") is None  # the host does not map HEAD onto GET
    assert t.match("POST", "/API/Jobs/") is not None  # case-insensitive, trailing slash ignored


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("a/{id:int}", "a/2147483647", {"id": "2147483647"}),
        ("a/{id:int}", "a/2147483648", None),
        ("a/{id:long}", "a/2147483648", {"id": "2147483648"}),
        (
            "a/{id:guid}",
            "a/0f8fad5b-d9cb-469f-a165-70867728950e",
            {"id": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        ),
        ("a/{id:guid}", "a/not-a-guid", None),
        ("a/{v:alpha}", "a/Abc", {"v": "Abc"}),
        ("a/{v:alpha}", "a/ab1", None),
        ("a/{v:bool}", "a/TRUE", {"v": "TRUE"}),
        ("a/{v:min(3)}", "a/2", None),
        ("a/{v:range(1,5)}", "a/5", {"v": "5"}),
        ("a/{v:length(2)}", "a/abc", None),
        ("a/{v:regex(^\\d+$)}", "a/123", {"v": "123"}),
        ("a/{v:regex(^\\d+$)}", "a/12a", None),
        ("a/{v:regex(^x)}", "a/xyz", {"v": "xyz"}),
        ("a/{v:int:min(10)}", "a/12", {"v": "12"}),
        ("a/{v:int:min(10)}", "a/9", None),
        ("a/{id?}", "a", {}),
        ("a/{id?}", "a/7", {"id": "7"}),
        ("a/{id=5}", "a", {"id": "5"}),
        ("a/{name}", "a/hello%20world", {"name": "hello world"}),
        ("A/B", "a/b", {}),
        ("a/{*rest}", "a", {}),
        ("a/{name}.{ext}", "a/file.txt", {"name": "file", "ext": "txt"}),
    ],
)
def test_template_matches(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert parse_template(template, None).match_path(path) == expected


@pytest.mark.parametrize(
    "template", ["a/{id:nosuch}", "a/{*rest}/b", "a/{id", "a/{id}/{ID}", "a//b", "a/{v:min(x)}"]
)
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(RouteError):
        parse_template(template, None)
