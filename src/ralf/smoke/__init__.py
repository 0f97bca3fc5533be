"""Layered, parallel smoke checks of a target (a service, a group, ``phase1`` or ``platform``).

``run_smoke(target, platform)`` is the library API the CLI, the executor and triage share; it
returns a :class:`SmokeReport` and never raises for a dead service (only for a usage error).
"""

from ralf.smoke.engine import run_smoke
from ralf.smoke.results import CheckResult, ServiceResult, SmokeReport

__all__ = ["run_smoke", "SmokeReport", "ServiceResult", "CheckResult"]
