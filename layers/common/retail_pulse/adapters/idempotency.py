"""Idempotent submit: a retried POST with the same `Idempotency-Key` returns the first answer and
enqueues nothing new (Powertools idempotency, records in their own DynamoDB table with a TTL);
the same key with another body is a 409. Keys are the client's own: the record is keyed by the
client (API key id) and its key, so two clients using the same key never meet."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from retail_pulse.domain.errors import IdempotencyConflict, InvalidRequest

MAX_KEY_LENGTH = 255
KEY_TTL_S = 24 * 3600


class IdempotentSubmit:
    """Wraps one submit call so that a repeated key replays the recorded answer."""

    def __init__(self, table_name: str, submit: Callable[[str | None, str], dict]) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            # The body's hash is stored with the answer: the same key with another body is refused.
            payload_validation_jmespath="body_sha256",
            expires_after_seconds=KEY_TTL_S,
            raise_on_no_idempotency_key=False,
        )
        persistence = DynamoDBPersistenceLayer(table_name=table_name)

        @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=self.config)
        def submit_once(request: dict) -> dict:
            return submit(request["body"], request["client_id"])

        self._submit_once = submit_once
        self._submit = submit

    def __call__(self, key: str | None, body: str | None, context: Any, client_id: str) -> dict:
        if key is None or key == "":
            # No key: not idempotent, as the API documents.
            return self._submit(body, client_id)
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidRequest(f"Idempotency-Key: at most {MAX_KEY_LENGTH} characters")
        self.config.register_lambda_context(context)
        request = {
            "key": f"{client_id}#{key}",  # another client's same key is another record
            "client_id": client_id,
            "body": body,
            "body_sha256": hashlib.sha256((body or "").encode()).hexdigest(),
        }
        try:
            return self._submit_once(request=request)
        except IdempotencyValidationError:
            raise IdempotencyConflict("Idempotency-Key: already used with a different request body") from None
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyConflict("Idempotency-Key: the first request with this key is still running") from None
