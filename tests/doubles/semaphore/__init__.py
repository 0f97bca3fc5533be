"""The fake Semaphore server: :class:`FakeSemaphore` (see :mod:`doubles.semaphore.server`)."""

from doubles.semaphore.server import FakeSemaphore, Logged

__all__ = ["FakeSemaphore", "Logged"]
