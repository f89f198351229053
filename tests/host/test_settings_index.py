"""Settings files, storage connection mapping and indexing refusals (no servers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.host.config import HostConfigError, load_host_json
from local.host.index import IndexError_, load_functions
from local.settings_files import (
    LocalSettingsError,
    apply_to_environ,
    dev_storage_connection_string,
    load_local_settings,
    masked,
)


def test_file_values_fill_the_environment_without_overriding_it(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"Values": {"A": "file", "B": "file", "N": 3, "T": True},
                    "Host": {"CORS": "http://a.test, http://b.test/", "LocalHttpPort": 7123}})
    )  # fmt: skip
    (tmp_path / "local.settings.json.example").write_text(json.dumps({"Values": {"C": "ex"}}))
    local = load_local_settings(tmp_path)
    env = {"A": "env"}
    apply_to_environ(local, env)
    assert env == {"A": "env", "B": "file", "N": "3", "T": "true"}
    assert local.cors == ["http://a.test", "http://b.test"]
    assert local.local_http_port == 7123


@pytest.mark.parametrize(
    "content", ["{not json", json.dumps({"IsEncrypted": True, "Values": {}}), "[1]"]
)
def test_unusable_settings_file_is_refused_naming_it(tmp_path: Path, content: str) -> None:
    (tmp_path / "local.settings.json").write_text(content)
    with pytest.raises(LocalSettingsError, match=r"local\.settings\.json"):
        load_local_settings(tmp_path)


def test_development_storage_maps_to_the_given_azurite_ports() -> None:
    conn = dev_storage_connection_string("UseDevelopmentStorage=true", (1, 2, 3))
    assert "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1" in conn
    assert "QueueEndpoint=http://127.0.0.1:2/devstoreaccount1" in conn
    assert "TableEndpoint=http://127.0.0.1:3/devstoreaccount1" in conn
    other = "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=y"
    assert dev_storage_connection_string(other) == other


def test_masking_hides_keys_but_not_plain_values() -> None:
    assert masked("AzureWebJobsStorage", "AccountName=a;AccountKey=abc;") == (
        "AccountName=a;AccountKey=***;"
    )
    assert masked("AZURE_OPENAI_API_KEY", "k") == "***"
    assert masked("CLIENT_TOKEN_MINUTES", "10") == "10"
    assert masked("AZURE_OPENAI_ENDPOINT", "http://x") == "http://x"


def _app(tmp_path: Path, body: str) -> Path:
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\napp = func.FunctionApp()\n" + body
    )
    return tmp_path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("@app.route(route='x')\ndef f(req: func.HttpRequest, extra: str) -> str:\n    return ''\n",
         r"function 'f': parameters \['extra'\] are declared in Python"),
        ("@app.queue_trigger(arg_name='m', queue_name='%MISSING_Q%', connection='')\n"
         "def q(m: func.QueueMessage) -> None:\n    pass\n",
         r"function 'q': app setting 'MISSING_Q'"),
        ("@app.queue_trigger(arg_name='m', queue_name='Bad_Name', connection='')\n"
         "def q(m: func.QueueMessage) -> None:\n    pass\n",
         r"function 'q': binding 'm': invalid queue name"),
        ("raise RuntimeError('broken at import')\n", "importing function_app.py failed"),
    ],
)  # fmt: skip
def test_index_refusals_name_the_function_and_the_problem(
    tmp_path: Path, body: str, expected: str
) -> None:
    with pytest.raises(IndexError_, match=expected):
        load_functions(_app(tmp_path, body), {})


def test_app_settings_override_host_json_values_as_the_real_host(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(json.dumps({
        "version": "2.0",
        "extensions": {"durableTask": {"hubName": "RelayHub"}, "queues": {"batchSize": 4}},
    }))  # fmt: skip
    env = {
        "AzureFunctionsJobHost__extensions__durableTask__hubName": "Stack1a2b",
        "AzureFunctionsJobHost__Extensions__Queues__BatchSize": "8",  # keys match any case
        "AzureFunctionsJobHost__extensions__http__routePrefix": "v1",  # absent: added
        "UNRELATED": "x",
    }
    config = load_host_json(tmp_path, env)
    assert config.raw["extensions"]["durableTask"]["hubName"] == "Stack1a2b"
    assert config.queues.batch_size == 8 and config.http.route_prefix == "v1"
    assert "UNRELATED" not in json.dumps(config.raw)
    # Without an environment the file is read as it is.
    assert load_host_json(tmp_path).raw["extensions"]["durableTask"]["hubName"] == "RelayHub"
    with pytest.raises(HostConfigError):
        load_host_json(tmp_path, {"AzureFunctionsJobHost__extensions____x": "1"})
