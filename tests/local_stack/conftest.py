"""Fixtures for the local gateway: a started `Gateway` on a free port with fake function pools (fast,
in-process), and one real local stack (keys checked, as on deployed stages)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gateway_kit import API_KEY, RunningGateway

from devkit.template import RestApiSpec, Stack
from local_stack.gateway import Gateway
from local_stack.runner import start_local_stack


@pytest.fixture(scope="session")
def template_api() -> RestApiSpec:
    api = Stack().rest_api()
    assert api is not None
    return api


@pytest.fixture
def start_gateway(template_api) -> Iterator[Callable[..., RunningGateway]]:
    """start_gateway({(method, resource): pool}, keyed={resources}, api=..., **Gateway options): the
    template's API (stage, Cors, GatewayResponses) unless `api` is given."""
    servers = []

    def start(
        routes: dict[tuple[str, str], Any],
        *,
        keyed: frozenset[str] | set[str] = frozenset(),
        api: RestApiSpec | None = None,
        **options: Any,
    ) -> RunningGateway:
        api = api or template_api
        gateway = Gateway(api.stage, {}, api=api, **options)
        for (method, resource), pool in routes.items():
            gateway.add_route(method, resource, pool, resource in keyed)
        server = gateway.serve("127.0.0.1", 0)
        # A short poll interval: shutdown() at the end of each test waits for one.
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return RunningGateway(gateway, server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def keyed_local_stack(tmp_path_factory):
    """The real local stack with keys checked (and the integration timeout given on the command line,
    at its default, so the option is run through)."""
    stack = start_local_stack(
        tmp_path_factory.mktemp("gateway-stack"), "--api-key", API_KEY, "--warm", "1", "--integration-timeout", "29"
    )
    yield stack
    stack.stop()
