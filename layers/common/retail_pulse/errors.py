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
