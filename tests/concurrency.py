"""Real concurrent clients: threads, each with its own PostgreSQL connection, released together."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections


def run_concurrently(work: Callable[[int], object], clients: int) -> list:
    """Run work(0..clients-1) in `clients` threads that start at the same instant; their results."""
    barrier = threading.Barrier(clients)

    def one(index: int):
        try:
            barrier.wait(timeout=30)
            return work(index)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [pool.submit(one, index) for index in range(clients)]
        return [future.result() for future in futures]


# Concurrent clients must see each other's commits, so these tests commit for real (and the
# conftest reloads the reference data that the flush after each one wipes).
committing = pytest.mark.django_db(transaction=True)
