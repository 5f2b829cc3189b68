"""API Gateway REST resource matching, driven by the template's routes: `/api/jobs/{id}` and
`{proxy+}` parameters, a trailing slash ignored, literal segments before parameters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass
class Route:
    method: str
    resource: str
    target: Any  # what serves the route: a worker pool, a handler module, ...
    pattern: re.Pattern
    rank: tuple
    api_key_required: bool = False

    @classmethod
    def build(cls, method: str, resource: str, target: Any, api_key_required: bool = False) -> Route:
        parts, rank = [], []
        for segment in resource.strip("/").split("/") if resource.strip("/") else []:
            if segment.endswith("+}"):
                parts.append(f"(?P<{segment[1:-2]}>.+)")
                rank.append(2)
            elif segment.startswith("{"):
                parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
                rank.append(1)
            else:
                parts.append(re.escape(segment))
                rank.append(0)
        pattern = re.compile("^/" + "/".join(parts) + "/*$")
        return cls(method.upper(), resource, target, pattern, tuple(rank), api_key_required)


class RouteTable:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, resource: str, target: Any, api_key_required: bool = False) -> None:
        self.routes.append(Route.build(method, resource, target, api_key_required))
        self.routes.sort(key=lambda r: r.rank)  # literal segments win over parameters, as API Gateway

    def resource_of(self, path: str) -> str | None:
        """The resource API Gateway picks for `path`: the most specific that matches."""
        return next((r.resource for r in self.routes if r.pattern.match(path)), None)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str] | None, bool]:
        """(route, path parameters, whether the path is a resource at all); an explicit method of
        the resource wins over its ANY."""
        resource = self.resource_of(path)
        if resource is None:
            return None, None, False
        candidates = [r for r in self.routes if r.resource == resource]
        route = next((r for r in candidates if r.method == method.upper()), None)
        route = route or next((r for r in candidates if r.method == "ANY"), None)
        if route is None:
            return None, None, True
        m = route.pattern.match(path)
        return route, (m.groupdict() or None) if m else None, True


def function_routes(stack: Any, target_for: Any) -> RouteTable:
    """The template's Api routes, each served by `target_for(function_spec)`."""
    table = RouteTable()
    for spec in stack.functions(resolve_environment=False).values():
        for route in spec.routes:
            table.add(route.method, route.path, target_for(spec), route.api_key_required)
    return table
