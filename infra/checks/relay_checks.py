"""checkov custom checks for what its Bicep checks do not cover.

Loaded by `checkov --external-checks-dir infra/checks` (see scripts/infra_check.py). Each
check reads one resource as pycep parsed it: literals are Python values, references are
bare names or nested dicts, so a check passes only on the literal it expects.
"""

from __future__ import annotations

import json
import re
from typing import Any

from checkov.bicep.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult

__all__ = ["FORBIDDEN_ROLES", "SECRET_NAME", "SECRET_VALUE"]

# Roles that can read or list account keys, or grant themselves anything: none is needed.
FORBIDDEN_ROLES = {
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "81a9662b-bebf-436f-a333-f67b29880f12": "Storage Account Key Operator Service Role",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
    "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68": "Cognitive Services Contributor",
    "7e4f1700-ea5a-4f59-8f37-079cfe29dce3": "SignalR Service Owner",
    "8cf5e20a-e4b2-4e9d-b3a1-5ceb692c2761": "SignalR/Web PubSub Contributor",
}

# App setting names and values that carry a credential.
SECRET_NAME = re.compile(
    r"(^APPINSIGHTS_INSTRUMENTATIONKEY$|^AzureWebJobsStorage$|KEY$|_KEY_|PASSWORD|SECRET"
    r"|ACCOUNTKEY|ACCESSKEY|SAS_?TOKEN)",
    re.IGNORECASE,
)
SECRET_VALUE = re.compile(
    r"(AccountKey=|AccessKey=|SharedAccessKey=|SharedAccessSignature=|InstrumentationKey=|sig=)",
    re.IGNORECASE,
)


def _props(conf: dict[str, Any]) -> dict[str, Any]:
    props = conf.get("properties")
    return props if isinstance(props, dict) else {}


class SignalRServerlessNoKeys(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="SignalR Service runs in Serverless mode with access keys disabled",
            id="CKV_RELAY_1",
            categories=(CheckCategories.IAM,),
            supported_resources=("Microsoft.SignalRService/signalR",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        props = _props(conf)
        features = props.get("features")
        serverless = isinstance(features, list) and any(
            isinstance(f, dict)
            and f.get("flag") == "ServiceMode"
            and f.get("value") == "Serverless"
            for f in features
        )
        keys_off = props.get("disableLocalAuth") is True
        return CheckResult.PASSED if serverless and keys_off else CheckResult.FAILED


class OpenAINoKeys(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Azure OpenAI has key auth disabled and a custom subdomain (Entra ID only)",
            id="CKV_RELAY_2",
            categories=(CheckCategories.IAM,),
            supported_resources=("Microsoft.CognitiveServices/accounts",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        props = _props(conf)
        ok = props.get("disableLocalAuth") is True and bool(props.get("customSubDomainName"))
        return CheckResult.PASSED if ok else CheckResult.FAILED


class NoKeyListingRole(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="No role assignment grants a key-listing or owner-like role",
            id="CKV_RELAY_3",
            categories=(CheckCategories.IAM,),
            supported_resources=("Microsoft.Authorization/roleAssignments",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        # Role ids usually arrive through a variable (tests/infra resolve those); a literal
        # id anywhere in the assignment is caught here.
        text = json.dumps(_props(conf).get("roleDefinitionId"), default=str).lower()
        return CheckResult.FAILED if any(g in text for g in FORBIDDEN_ROLES) else CheckResult.PASSED


class NoSecretAppSetting(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="No app setting carries a key, password, SAS or connection string with a key",
            id="CKV_RELAY_4",
            categories=(CheckCategories.SECRETS,),
            supported_resources=("Microsoft.Web/sites/config", "Microsoft.Web/sites"),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        props = _props(conf)
        if self.entity_type == "Microsoft.Web/sites":
            site_config = props.get("siteConfig")
            items = site_config.get("appSettings") if isinstance(site_config, dict) else None
            settings = {
                str(i.get("name")): i.get("value")
                for i in (items if isinstance(items, list) else [])
                if isinstance(i, dict)
            }
        elif conf.get("name") == "appsettings":
            settings = props
        else:
            return CheckResult.PASSED
        for name, value in settings.items():
            if SECRET_NAME.search(name) or SECRET_VALUE.search(json.dumps(value, default=str)):
                return CheckResult.FAILED
        return CheckResult.PASSED


class StorageSharedKeyOff(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Storage account has shared key access disabled",
            id="CKV_RELAY_5",
            categories=(CheckCategories.IAM,),
            supported_resources=("Microsoft.Storage/storageAccounts",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        ok = _props(conf).get("allowSharedKeyAccess") is False
        return CheckResult.PASSED if ok else CheckResult.FAILED


class AppInsightsLocalAuthOff(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Application Insights accepts only Entra ID ingestion (DisableLocalAuth)",
            id="CKV_RELAY_6",
            categories=(CheckCategories.IAM,),
            supported_resources=("Microsoft.Insights/components",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        ok = _props(conf).get("DisableLocalAuth") is True
        return CheckResult.PASSED if ok else CheckResult.FAILED


signalr_serverless_no_keys = SignalRServerlessNoKeys()
openai_no_keys = OpenAINoKeys()
no_key_listing_role = NoKeyListingRole()
no_secret_app_setting = NoSecretAppSetting()
storage_shared_key_off = StorageSharedKeyOff()
app_insights_local_auth_off = AppInsightsLocalAuthOff()
