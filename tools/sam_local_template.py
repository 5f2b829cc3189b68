"""What `make sam-local` hands SAM CLI: a template whose API functions declare every variable they
are given, and the env.json that gives them the local stack's values.

Why a generated template: SAM CLI (1.170) passes a function only the variables its template
declares (`--env-vars` drops the others without a word), and our template does not declare what
only a local run sets: the SDK's endpoint variables, ALLOW_PRIVATE_IMAGE_HOSTS, the settings with
defaults in code. Why rewritten addresses: SAM ignores `--docker-network host`, so its containers
sit on the bridge, where 127.0.0.1 is the container itself; the local AWS endpoints are reached at
the bridge's address on the host instead (tools/tcp_forward.py carries that to 127.0.0.1).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devkit.function_env import RUNTIME_RESERVED, declared_variables
from devkit.template import ROOT

FUNCTION = "AWS::Serverless::Function"
# Resource types SAM's start-api needs for the API functions; the rest (tables, queues, alarms,
# the dashboard) live in the local stack, and some would name resources this template drops.
KEPT_TYPES = {"AWS::Serverless::Api", "AWS::Serverless::LayerVersion"}


def api_functions(template: Mapping[str, Any]) -> list[str]:
    """Logical ids of the functions with an `Api` event (the ones SAM serves)."""
    return [
        logical
        for logical, res in template["Resources"].items()
        if res["Type"] == FUNCTION
        and any(e.get("Type") == "Api" for e in res.get("Properties", {}).get("Events", {}).values())
    ]


def _absolute(uri: str, root: Path) -> str:
    return str((root / uri).resolve())


def sam_template(
    template: Mapping[str, Any], environments: Mapping[str, Mapping[str, str]], root: Path = ROOT
) -> dict[str, Any]:
    """The template for `sam build` / `sam local start-api`, written anywhere (paths made absolute):
    the API functions (events other than Api, and IAM policies, dropped: nothing local uses them),
    their layers and API, every variable in `environments` (function -> its local environment)
    declared in Globals so that env.json can set it."""
    out: dict[str, Any] = copy.deepcopy({k: v for k, v in template.items() if k not in ("Outputs", "Resources")})
    names = declared_variables(environments.values())
    function_globals = out.setdefault("Globals", {}).setdefault("Function", {})
    # Declared with an empty value: env.json gives the value (an empty setting means its default).
    function_globals["Environment"] = {"Variables": dict.fromkeys(names, "")}
    resources: dict[str, Any] = {}
    for logical in api_functions(template):
        res = copy.deepcopy(template["Resources"][logical])
        props = res["Properties"]
        props.pop("Policies", None)
        props.pop("Environment", None)
        props["CodeUri"] = _absolute(props["CodeUri"], root)
        props["Events"] = {name: e for name, e in props.get("Events", {}).items() if e.get("Type") == "Api"}
        resources[logical] = res
    for logical, original in template["Resources"].items():
        if original["Type"] in KEPT_TYPES:
            res = copy.deepcopy(original)
            if "ContentUri" in res.get("Properties", {}):
                res["Properties"]["ContentUri"] = _absolute(res["Properties"]["ContentUri"], root)
            resources[logical] = res
    out["Resources"] = resources
    return out


def container_url(url: str, endpoints: Mapping[str, str], container_host: str) -> str:
    """`url` as a container reaches it: a local endpoint's 127.0.0.1 becomes the host's bridge address."""
    for endpoint in endpoints.values():
        if url.startswith(endpoint):
            host_port = endpoint.split("://", 1)[1]
            port = host_port.rsplit(":", 1)[1]
            return url.replace(host_port, f"{container_host}:{port}", 1)
    return url


def env_json(
    environments: Mapping[str, Mapping[str, str]],
    endpoints: Mapping[str, str],
    container_host: str,
    functions: list[str],
) -> dict[str, dict[str, str]]:
    """SAM's --env-vars file: per function, its local environment with the endpoint addresses (and
    URLs under them, such as the queue's) rewritten for containers. Variables SAM sets itself
    (credentials, region) are left to SAM."""
    return {
        logical: {
            key: container_url(value, endpoints, container_host)
            for key, value in environments[logical].items()
            if key not in RUNTIME_RESERVED
        }
        for logical in functions
    }


def bound_ports(endpoints: Mapping[str, str]) -> list[int]:
    """The ports of the local AWS endpoints (what to forward from the bridge address)."""
    return sorted({int(url.rstrip("/").rsplit(":", 1)[1]) for url in endpoints.values()})
