"""Test doubles for the seams ralf cannot run here: a fake Semaphore server and a fake Proxmox VE API.

They live with the tests and are never installed or imported by the product (``src/ralf``); tests import
them as ``doubles`` (``tests/`` is on pytest's path), benchmarks add ``tests/`` to ``sys.path`` themselves.

- :mod:`doubles.semaphore`: :class:`~doubles.semaphore.FakeSemaphore`, Semaphore's REST API and ``/api/ws``
  on 127.0.0.1 as ``/work/shared/semaphore/BEHAVIOUR.md`` describes the real server (2.10 and 2.16);
- :mod:`doubles.proxmox`: :class:`~doubles.proxmox.FakeProxmox`, the few Proxmox VE API calls ralf makes.
"""
