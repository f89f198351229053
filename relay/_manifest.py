"""Every setting the app reads, in one literal table.

Each entry says who reads it (`scope`: the code in Azure, locally, or both), who sets it
(`set_by`: us, in infra/ or local.settings.json, or the platform), its type, default and
meaning. `relay.settings` parses the environment against this table; the infra and
local-settings checks compare `infra/` and `local.settings.json.example` against it.

Scopes:
- "both":  read in Azure and locally; infra/ sets it (unless the platform does) and
           local.settings.json.example sets it (unless it has a usable default).
- "azure": only meaningful in Azure; never in local.settings.json.example.
- "local": only for local development; never set by infra/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["MANIFEST", "Setting", "by_name"]

Scope = Literal["both", "azure", "local"]
SetBy = Literal["us", "platform"]
Kind = Literal["str", "int", "float", "bool", "enum", "url", "secret"]


@dataclass(frozen=True)
class Setting:
    name: str
    scope: Scope
    set_by: SetBy
    kind: Kind
    default: str | None  # None: required (unless `optional`)
    meaning: str
    optional: bool = False  # absent is valid and means something (see meaning)
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


# fmt: off
MANIFEST: tuple[Setting, ...] = (
    # --- platform and Functions host -------------------------------------------------
    Setting("AzureWebJobsStorage", "both", "us", "secret", None,
            "Storage for the host, the jobs queue, durable state and the app's tables: a "
            "connection string (UseDevelopmentStorage=true locally). In Azure the identity-"
            "based AzureWebJobsStorage__* settings are used instead.", optional=True),
    Setting("AzureWebJobsStorage__blobServiceUri", "azure", "us", "url", None,
            "Identity-based storage: blob endpoint.", optional=True),
    Setting("AzureWebJobsStorage__queueServiceUri", "azure", "us", "url", None,
            "Identity-based storage: queue endpoint.", optional=True),
    Setting("AzureWebJobsStorage__tableServiceUri", "azure", "us", "url", None,
            "Identity-based storage: table endpoint.", optional=True),
    Setting("AzureWebJobsStorage__credential", "azure", "us", "enum", None,
            "Identity-based storage: 'managedidentity'.", optional=True,
            choices=("managedidentity",)),
    Setting("AzureWebJobsStorage__clientId", "azure", "us", "str", None,
            "Identity-based storage: client id of the user-assigned identity.", optional=True),
    Setting("AZURE_CLIENT_ID", "azure", "us", "str", None,
            "Client id of the app's user-assigned managed identity (SignalR, Azure OpenAI).",
            optional=True),
    Setting("FUNCTIONS_WORKER_RUNTIME", "local", "us", "enum", "python",
            "Worker runtime for func start (Flex Consumption sets it from functionAppConfig).",
            choices=("python",)),
    Setting("WEBSITE_AUTH_ENABLED", "azure", "platform", "bool", None,
            "Set by App Service Authentication when it is on; identity headers are trusted "
            "in Azure only when it is True.", optional=True),
    Setting("WEBSITE_INSTANCE_ID", "azure", "platform", "str", None,
            "Set on every Azure instance; its presence means the app runs in Azure "
            "(dev identity mode refuses to start).", optional=True),
    Setting("APPLICATIONINSIGHTS_CONNECTION_STRING", "azure", "us", "str", None,
            "Application Insights; when set, logs and traces go there through "
            "OpenTelemetry.", optional=True),
    Setting("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "azure", "us", "str", None,
            "'ClientId=<id>;Authorization=AAD' for identity-based ingestion.", optional=True),
    # --- services ---------------------------------------------------------------------
    Setting("AzureSignalRConnectionString", "both", "us", "secret", None,
            "SignalR Service: Endpoint=...;AccessKey=...;Version=1.0; (emulator locally) or "
            "Endpoint=...;AuthType=azure.msi;ClientId=...;Version=1.0; in Azure."),
    Setting("AZURE_OPENAI_ENDPOINT", "both", "us", "url", None,
            "Azure OpenAI resource endpoint, e.g. https://NAME.openai.azure.com (the local "
            "emulator's URL in development)."),
    Setting("AZURE_OPENAI_API_KEY", "local", "us", "secret", None,
            "API key; absent means Entra ID (managed identity) authentication.", optional=True),
    Setting("AZURE_OPENAI_DEPLOYMENT", "both", "us", "str", None,
            "Name of the chat model deployment."),
    Setting("AZURE_OPENAI_API_VERSION", "both", "us", "str", "v1",
            "'v1' uses the v1 API (/openai/v1/, no api-version); a dated version such as "
            "2024-10-21 uses /openai/deployments/{deployment}/... with that api-version."),
    Setting("MODEL_PROFILE", "both", "us", "enum", "chat",
            "How request options map to the model: 'chat' (temperature, max_tokens) or "
            "'reasoning' (temperature fixed at 1, max_completion_tokens).",
            choices=("chat", "reasoning")),
    Setting("SIGNALR_HUB", "both", "us", "str", "stream", "SignalR hub name."),
    # --- identity ---------------------------------------------------------------------
    Setting("AUTH_MODE", "both", "us", "enum", "platform",
            "'platform': trust App Service Authentication headers only when "
            "WEBSITE_AUTH_ENABLED is True; 'dev': the caller sends x-ms-client-principal-id "
            "itself (local only; refused in Azure).", choices=("platform", "dev")),
    # --- pipeline ---------------------------------------------------------------------
    Setting("JOBS_QUEUE", "both", "us", "str", "jobs", "Storage queue of submitted jobs."),
    Setting("TABLE_PREFIX", "both", "us", "str", "relay",
            "Prefix of the app's Table storage tables (alphanumeric)."),
    Setting("BATCH_WINDOW_MS", "both", "us", "int", "90",
            "Deltas after the first coalesce for at most this long before a send.",
            minimum=0, maximum=5000),
    Setting("BATCH_MAX_BYTES", "both", "us", "int", "2048",
            "Largest encoded SignalR message (envelope included); at most one 2 KB "
            "billing unit.", minimum=256, maximum=2048),
    Setting("PROMPT_MAX_CHARS", "both", "us", "int", "32000",
            "Longest prompt, and longest single message content.", minimum=1, maximum=1000000),
    Setting("SYSTEM_MAX_CHARS", "both", "us", "int", "8000", "Longest system prompt.",
            minimum=0, maximum=1000000),
    Setting("MESSAGES_MAX", "both", "us", "int", "64", "Most turns in a messages list.",
            minimum=1, maximum=1000),
    Setting("MAX_TOKENS_LIMIT", "both", "us", "int", "4096",
            "Largest maxTokens a job may ask for.", minimum=1, maximum=1000000),
    Setting("USER_MAX_CONCURRENT_JOBS", "both", "us", "int", "4",
            "Jobs one user may have queued or running at once.", minimum=1),
    Setting("USER_JOBS_PER_MINUTE", "both", "us", "int", "20",
            "Jobs one user may submit per minute.", minimum=1),
    Setting("GLOBAL_MAX_CONCURRENT_JOBS", "both", "us", "int", "100",
            "Jobs queued or running across all users; size it to the deployment's quota.",
            minimum=1),
    Setting("JOB_MAX_ATTEMPTS", "both", "us", "int", "3",
            "Attempts of the streaming activity before the job fails.", minimum=1, maximum=10),
    Setting("JOB_TIMEOUT_SECONDS", "both", "us", "int", "600",
            "A job still running after this long is failed.", minimum=10, maximum=86400),
    Setting("LLM_STALL_TIMEOUT_SECONDS", "both", "us", "int", "30",
            "A model stream silent for this long counts as stalled (a retryable failure).",
            minimum=1, maximum=600),
    Setting("CLIENT_TOKEN_MINUTES", "both", "us", "int", "10",
            "Lifetime of SignalR client access tokens issued by negotiate.",
            minimum=1, maximum=60),
    Setting("RETENTION_DAYS", "both", "us", "int", "7",
            "Finished jobs, transcripts and durable history are purged after this many days.",
            minimum=1, maximum=3650),
)
# fmt: on


def by_name() -> dict[str, Setting]:
    return {s.name: s for s in MANIFEST}
