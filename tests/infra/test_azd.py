"""azure.yaml, main.parameters.json, main.bicep and docs/deploy.md fit together."""

from __future__ import annotations

import json
import re
from typing import Any

from .conftest import INFRA, ROOT

AZD_OUTPUTS = {
    "AZURE_LOCATION",
    "AZURE_TENANT_ID",
    "AZURE_RESOURCE_GROUP",
    "SERVICE_API_NAME",
    "SERVICE_API_URI",
    "AZURE_FUNCTION_NAME",
}


def _parameters_file() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((INFRA / "main.parameters.json").read_text("utf-8"))
    return data["parameters"]


def test_azure_yaml_names_the_function_service() -> None:
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    service = text.split("services:", 1)[1]
    for line in ("api:", "project: .", "language: python", "host: function"):
        assert re.search(rf"^\s+{re.escape(line)}\s*$", service, re.MULTILINE), line
    assert re.search(r"^\s+path: infra\s*$", text, re.MULTILINE)


def test_parameters_file_matches_main_bicep(infra_report: dict[str, Any]) -> None:
    declared = infra_report["parsed"]["main.bicep"]["parameters"]
    given = _parameters_file()
    assert set(given) <= set(declared), set(given) - set(declared)
    required = {name for name, p in declared.items() if p.get("default") is None}
    assert required <= set(given), required - set(given)
    assert given["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert given["location"]["value"] == "${AZURE_LOCATION}"
    assert given["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"


def test_main_bicep_has_the_outputs_azd_reads(infra_report: dict[str, Any]) -> None:
    assert set(infra_report["parsed"]["main.bicep"]["outputs"]) >= AZD_OUTPUTS


def test_the_site_is_tagged_as_the_azd_service() -> None:
    assert "'azd-service-name': 'api'" in (INFRA / "app" / "api.bicep").read_text("utf-8")


def test_deploy_doc_is_plain_about_limits_and_names_every_parameter() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "No offline check proves that the templates compile or deploy" in doc
    for param in _parameters_file().values():
        var = re.match(r"\$\{(\w+)", param["value"])
        assert var, param
        if var.group(1) not in ("AZURE_ENV_NAME", "AZURE_PRINCIPAL_ID"):
            assert var.group(1) in doc, f"docs/deploy.md does not mention {var.group(1)}"
    assert "azd down --purge" in doc
    assert "401" in doc and "x-ms-client-principal-id" in doc
