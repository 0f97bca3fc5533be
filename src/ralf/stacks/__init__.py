"""The stack runner (``ralf stacks``): what Semaphore's Apply templates and break-glass recovery run.

``select_stacks`` / ``selection_from_env`` decide which stacks run (``ONLY_STACKS``, ``START_AT``,
``AUTO_APPLY``); ``run_stacks`` runs them (OpenTofu for ``*-lxc``, Ansible for ``*-config``) under
the state directory's lock and returns a :class:`RunResult` with one :class:`StackResult` per stack.
"""

from ralf.stacks.runner import RunResult, StackResult, run_stacks
from ralf.stacks.selection import Selection, resolve_selection, select_stacks, selection_from_env

__all__ = [
    "RunResult",
    "Selection",
    "StackResult",
    "resolve_selection",
    "run_stacks",
    "select_stacks",
    "selection_from_env",
]
