"""Plan execution (``ralf deploy``): the runbook's steps as Semaphore tasks, or in-process (break-glass).

- :mod:`ralf.deploy.facade`: a deploy without the CLI — :func:`plan_request` / :func:`plan_resume`, then
  :func:`run` (executor choice, commit check, probes, journal, SIGTERM);
- :mod:`ralf.deploy.runner`: :func:`execute` (run, journal, stop at the first failure, triage) and
  :func:`resume_point`;
- :mod:`ralf.deploy.semaphore_exec`: :class:`SemaphoreExecutor` (start, follow, stream, stop);
- :mod:`ralf.deploy.local_exec`: :class:`LocalExecutor` (stack runner and smoke engine);
- :mod:`ralf.deploy.output`: progress lines and the summary; :mod:`ralf.deploy.results`: the data.
"""

from ralf.deploy.facade import Planned, plan_request, plan_resume, run
from ralf.deploy.local_exec import LocalExecutor
from ralf.deploy.output import Reporter, summary_lines
from ralf.deploy.results import RunReport, StepContext, StepOutcome, StepReport
from ralf.deploy.runner import DEFAULT_TIMEOUT, execute, resume_point
from ralf.deploy.semaphore_exec import SemaphoreExecutor

__all__ = [
    "DEFAULT_TIMEOUT",
    "LocalExecutor",
    "Planned",
    "Reporter",
    "RunReport",
    "SemaphoreExecutor",
    "StepContext",
    "StepOutcome",
    "StepReport",
    "execute",
    "plan_request",
    "plan_resume",
    "resume_point",
    "run",
    "summary_lines",
]
