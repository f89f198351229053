"""Every Bicep file parses, checkov passes, and the checks themselves catch what they claim."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .conftest import INFRA, RunInfra

CUSTOM_CHECKS = {f"CKV_RELAY_{n}" for n in range(1, 7)}


def test_every_bicep_file_parses(infra_report: dict[str, Any]) -> None:
    on_disk = {p.relative_to(INFRA).as_posix() for p in INFRA.rglob("*.bicep")}
    assert set(infra_report["files"]) == on_disk
    assert {"main.bicep", "app/api.bicep", "app/entra.bicep", "app/auth.bicep"} <= on_disk


def test_checkov_passes_and_runs_the_custom_checks(infra_report: dict[str, Any]) -> None:
    scan = infra_report["checkov"]
    assert scan["summary"]["parsing_errors"] == 0
    assert scan["summary"]["failed"] == 0
    # checkov silently drops an external checks dir it cannot load: prove each check ran.
    assert set(scan["passed"]) >= CUSTOM_CHECKS


def test_every_skip_is_justified_next_to_it() -> None:
    skips = []
    for path in INFRA.rglob("*.bicep"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "checkov:skip" in line:
                skips.append(line)
                match = re.search(r"//\s*checkov:skip=(CKV2?_[A-Z]+_\d+):\s*(.+)$", line)
                assert match, f"{path.name}: malformed skip: {line.strip()}"
                assert len(match.group(2)) >= 20, f"{path.name}: no reason: {line.strip()}"
    assert skips, "expected the documented skips"


def test_no_skip_of_a_custom_check() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in INFRA.rglob("*.bicep"))
    assert "checkov:skip=CKV_RELAY" not in text


def test_a_file_that_does_not_parse_fails(run_infra: RunInfra, scratch_infra: Path) -> None:
    (scratch_infra / "good.bicep").write_text("param a string = 'x'\n", encoding="utf-8")
    (scratch_infra / "broken.bicep").write_text(
        "resource s 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: \n}\n",
        encoding="utf-8",
    )
    proc = run_infra("parse", "--infra", str(scratch_infra))
    assert proc.returncode == 1
    assert "broken.bicep" in proc.stderr
    assert "good.bicep" not in proc.stderr


BAD = """
resource sig 'Microsoft.SignalRService/signalR@2024-03-01' = {
  name: 'sig'
  location: 'westeurope'
  kind: 'SignalR'
  sku: { name: 'Standard_S1', capacity: 1 }
  properties: {
    features: [ { flag: 'ServiceMode', value: 'Default' } ]
    disableLocalAuth: false
  }
}

resource oai 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: 'oai'
  location: 'westeurope'
  kind: 'OpenAI'
  sku: { name: 'S0' }
  properties: {
    customSubDomainName: 'oai'
  }
}

resource stg 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35
  name: 'stg'
  location: 'westeurope'
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAccess: true
  }
}

resource ra 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid('x')
  scope: stg
  properties: {
    roleDefinitionId: subscriptionResourceId(
      'Microsoft.Authorization/roleDefinitions',
      '17d1049b-9a84-46fb-8f53-869881c3d3ab'
    )
    principalId: '00000000-0000-0000-0000-000000000000'
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: 'site'
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: {
    AzureSignalRConnectionString: 'Endpoint=https://x.service.signalr.net;AccessKey=abc;Version=1.0;'
  }
}

resource appi 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi'
  location: 'westeurope'
  kind: 'web'
  properties: {
    Application_Type: 'web'
  }
}
"""


def test_checkov_findings_fail_the_run(run_infra: RunInfra, scratch_infra: Path) -> None:
    """One scan (checkov takes seconds): every custom check fires, a bare skip is refused,
    and a file checkov cannot parse fails the run (checkov itself exits 0 on one)."""
    (scratch_infra / "bad.bicep").write_text(BAD, encoding="utf-8")
    (scratch_infra / "broken.bicep").write_text("resource x 'A/b@1' = {\n", encoding="utf-8")
    proc = run_infra("checkov", "--infra", str(scratch_infra))
    assert proc.returncode == 1
    failed = set(re.findall(r"(CKV_RELAY_\d+) failed", proc.stderr))
    assert failed == CUSTOM_CHECKS, proc.stderr
    assert "CKV_AZURE_35 skipped without a reason" in proc.stderr
    assert "could not parse" in proc.stderr and "broken.bicep" in proc.stderr
