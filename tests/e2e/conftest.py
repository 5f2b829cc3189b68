"""End-to-end fixtures: the local stack in a subprocess on a free port, driven over HTTP."""

from __future__ import annotations

import pytest

from local_stack.runner import start_local_stack

CALLBACK_SIGNING_SECRET = "e2e-signing-secret"  # noqa: S105 - signs the local stack's job callbacks


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """Fast settings for tests: tiny processing delay. The queues keep the template's visibility
    timeout: Lambda refuses one shorter than its function's timeout (a batch still running would be
    delivered again), and the local stack does too."""
    stack = start_local_stack(
        tmp_path_factory.mktemp("local-stack"),
        "--max-concurrency",
        "4",
        "--callback-signing-secret",
        CALLBACK_SIGNING_SECRET,
        "--env",
        "PROCESSING_DELAY_MIN_S=0",
        "PROCESSING_DELAY_MAX_S=0.02",
        "DOWNLOAD_READ_TIMEOUT_S=1",
    )
    yield stack
    stack.stop()


API_KEY = "test-key-0123456789abcdef"
SECOND_API_KEY = "second-client-key-9876543210"  # another client (tests/e2e/test_tenants.py)
ADMIN_API_KEY = "admin-key-5555555555"  # sees every client's jobs
CLIENT_QUOTA = 8  # images of one client in flight on the keyed stack (6 batches, 60 images, fit at once)


@pytest.fixture(scope="session")
def keyed_stack(tmp_path_factory):
    """A second local stack that requires `x-api-key`, as deployed stages do: API_KEY and
    SECOND_API_KEY are two clients, ADMIN_API_KEY the admin; each client has CLIENT_QUOTA images
    in flight at most (tests/e2e/test_quotas.py)."""
    stack = start_local_stack(
        tmp_path_factory.mktemp("keyed-stack"),
        "--api-key",
        API_KEY,
        "--api-key",
        SECOND_API_KEY,
        "--admin-api-key",
        ADMIN_API_KEY,
        "--warm",
        "1",
        "--max-concurrency",
        "6",
        "--env",
        "PROCESSING_DELAY_MIN_S=0",
        "PROCESSING_DELAY_MAX_S=0.02",
        f"CLIENT_IMAGE_QUOTA={CLIENT_QUOTA}",
    )
    yield stack
    stack.stop()
