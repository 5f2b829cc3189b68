"""Domain errors. Each carries the HTTP status the API maps it to, so handlers need one mapping."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict:
        return {"error": self.message, **self.extra}


class InvalidRequest(DomainError):
    status_code = 400


class JobNotFound(DomainError):
    status_code = 400


class RequestTooLarge(DomainError):
    status_code = 413


class EnqueueFailed(DomainError):
    status_code = 503


class AreaNotFound(DomainError):
    status_code = 400


class StoreNotFound(DomainError):
    status_code = 400


class StoreNotInArea(DomainError):
    status_code = 400


class JobConflict(DomainError):
    """The job's state does not allow it (cancel an ended job, retry an ongoing one, ...)."""

    status_code = 409


class IdempotencyConflict(DomainError):
    """The Idempotency-Key was used with another body, or its first request is still running."""

    status_code = 409
