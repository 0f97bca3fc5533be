"""Semaphore UI: an httpx client and the declarative seeder (`ralf semaphore seed`).

- :mod:`ralf.semaphore.client`: :class:`SemaphoreClient`, the REST API as the real server behaves;
- :mod:`ralf.semaphore.settings`: connection settings from the platform file and the environment;
- :mod:`ralf.semaphore.desired`: the project's desired objects, derived from the catalog;
- :mod:`ralf.semaphore.ownership`: the marker on the objects ralf made (what `--prune` may delete);
- :mod:`ralf.semaphore.reconcile`: read once, diff, plan, apply (`--check`, `--prune`, adoption).

The fake server the tests run against is a test double in ``tests/doubles/semaphore`` (not installed).
"""
