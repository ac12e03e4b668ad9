"""Journey tests: the test's own session is closed at the end (the web requests replace the
thread's scoped session, so the conftest's teardown would not end a read transaction the test
left open — on PostgreSQL that blocks the TRUNCATE between tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _close_the_test_session(session) -> Iterator[None]:  # noqa: ANN001
    yield
    session.rollback()
    session.close()
