"""Clients (tenants): every API key is a client, and a job belongs to the key that submitted it.

API Gateway puts the id of the key it checked in `requestContext.identity.apiKeyId` (never the
client's to choose); the local stack fills it the same way (an id derived from the key, or
DEFAULT_CLIENT when it checks no key). A caller sees its own jobs, results, exports and uploads; a
key listed in the `AdminApiKeyIds` parameter sees every client's jobs. Anything of another client
answers exactly as something that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass

# The client of requests on a route where no key is checked (`sam local start-api`, the local stack
# without --api-key): on AWS every data route requires a key, so apiKeyId is always there.
DEFAULT_CLIENT = "local-default-key"
ADMIN_SCOPE = "*"  # what paging tokens of an admin's all-clients listings are bound to


@dataclass(frozen=True)
class Caller:
    """Who asks: `client_id` is the API key's id; `admin` sees every client's jobs."""

    client_id: str
    admin: bool = False

    def sees(self, client_id: str | None) -> bool:
        """Whether something of `client_id` (None: from before jobs had clients) is this caller's."""
        return self.admin or (client_id is not None and client_id == self.client_id)

    @property
    def scope(self) -> str:
        """What a paging token is bound to: a token of one client's listing is refused by another's."""
        return ADMIN_SCOPE if self.admin else self.client_id

    @property
    def client_filter(self) -> str | None:
        """The client a job listing or a visit query is limited to; None for an admin (every client's)."""
        return None if self.admin else self.client_id


def parse_key_ids(raw: str) -> frozenset[str]:
    """`AdminApiKeyIds` as the functions get it: ids separated by commas (spaces ignored)."""
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def caller_of(api_key_id: str | None, admin_key_ids: frozenset[str] = frozenset()) -> Caller:
    client_id = api_key_id or DEFAULT_CLIENT
    return Caller(client_id, admin=client_id in admin_key_ids)
