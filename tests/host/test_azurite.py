"""The Azurite launcher used by every test stack and by `make dev`."""

from __future__ import annotations

import socket

import pytest
from azure.data.tables import TableServiceClient

from local.azurite import Azurite


def test_a_taken_port_is_a_clear_error_not_a_squatter_mistaken_for_azurite() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        azurite = Azurite(table_port=taken)
        with pytest.raises(RuntimeError, match="in use"):
            azurite.start(timeout=30)
        assert azurite.proc is None or azurite.proc.poll() is not None


def test_ports_it_chooses_serve_real_storage() -> None:
    with Azurite() as azurite:
        service = TableServiceClient.from_connection_string(azurite.connection_string)
        service.create_table("launcher")
        assert [t.name for t in service.list_tables()] == ["launcher"]
