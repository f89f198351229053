"""The app's identity gets exactly the roles it needs, each named next to its GUID."""

from __future__ import annotations

import ast
import re

from .conftest import INFRA

# Built-in role GUIDs (Azure built-in roles page) and why the app needs each.
NEEDED = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",  # host, durable, package
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",  # jobs, durable
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",  # jobs, durable
    "fd53cd77-2268-407a-8f46-7e7863d0f521": "SignalR REST API Owner",  # sends, :generateToken
    "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd": "Cognitive Services OpenAI User",  # chat completions
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",  # App Insights
}
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def _forbidden_roles() -> dict[str, str]:
    """FORBIDDEN_ROLES from the checkov check module, read without importing checkov."""
    tree = ast.parse((INFRA / "checks" / "relay_checks.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "FORBIDDEN_ROLES" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, dict)
            return value
    raise AssertionError("FORBIDDEN_ROLES not found in infra/checks/relay_checks.py")


def _role_vars(text: str) -> dict[str, tuple[str, str]]:
    """var name -> (GUID, trailing comment) for every role id variable."""
    found = {}
    for m in re.finditer(r"^var (\w+) = '([0-9a-f-]{36})'(?:\s*//\s*(.*))?$", text, re.MULTILINE):
        found[m.group(1)] = (m.group(2), (m.group(3) or "").strip())
    return found


def test_role_ids_are_exactly_the_needed_ones_each_named() -> None:
    role_vars = _role_vars((INFRA / "app" / "rbac.bicep").read_text(encoding="utf-8"))
    assert {guid for guid, _ in role_vars.values()} == set(NEEDED)
    for name, (guid, comment) in role_vars.items():
        assert comment == NEEDED[guid], f"{name}: comment {comment!r} should name {NEEDED[guid]!r}"


def test_the_app_identity_gets_each_needed_role_once() -> None:
    text = (INFRA / "app" / "rbac.bicep").read_text(encoding="utf-8")
    role_vars = _role_vars(text)
    blocks = re.findall(
        r"^resource \w+ 'Microsoft\.Authorization/roleAssignments@[\d-]+' = (.*?)^}",
        text,
        re.MULTILINE | re.DOTALL,
    )
    app_roles: list[str] = []
    for block in blocks:
        role = re.search(r"roleDefinitions', (\w+)\)", block)
        assert role and role.group(1) in role_vars, f"role id must be a named variable: {block}"
        if "principalId: appPrincipalId" in block:
            assert block.lstrip().startswith("{"), "the app's roles are unconditional"
            app_roles.append(role_vars[role.group(1)][0])
        else:
            assert "principalId: userPrincipalId" in block
            assert block.lstrip().startswith("if (withUser)"), "user roles are opt-in"
    assert sorted(app_roles) == sorted(NEEDED)


def test_no_forbidden_role_anywhere_in_infra() -> None:
    forbidden = _forbidden_roles()
    assert "17d1049b-9a84-46fb-8f53-869881c3d3ab" in forbidden  # Storage Account Contributor
    for path in INFRA.rglob("*.bicep"):
        guids = {g.lower() for g in GUID.findall(path.read_text(encoding="utf-8"))}
        hits = {forbidden[g] for g in guids & set(forbidden)}
        assert not hits, f"{path.name} uses {hits}"
