"""Where a resume restarts: the Apply–Smoke pair is the unit.

After a failed Smoke the fix is pushed to the repository, and only an Apply brings it to the
platform, so ``ralf deploy --resume`` restarts at the Apply steps that Smoke checks, not at the
Smoke itself (``--only-failed-step`` keeps the old behaviour). The Applies a Smoke checks are the
ones just before it whose stacks belong to services of its target: in the standard order the group's
Apply; with pattern A each changed service's Apply before the group smokes; none for a Smoke run on
its own (a template request, or the final smokes of a cleanroom for groups it did not apply).
"""

from __future__ import annotations

from typing import Any


def _services_of_apply(step: Any, catalog: Any) -> set[str]:
    return {catalog.stack_index[s].service for s in step.stacks if s in catalog.stack_index}


def restart_index(plan: Any, failed_index: int, catalog: Any) -> int:
    """The first step to run again when step ``failed_index`` failed: the earliest Apply its Smoke checks,
    or ``failed_index`` itself when it is not a Smoke or checks no Apply of this plan."""
    steps = plan.steps
    failed = steps[failed_index]
    target = catalog.targets.get(failed.target or "") if failed.kind == "smoke" else None
    if target is None:
        return failed_index
    covered = set(target.services)
    start = failed_index
    seen_apply = False
    for j in range(failed_index - 1, -1, -1):
        step = steps[j]
        if step.kind == "smoke":
            if seen_apply or step.target == failed.target:
                break  # an earlier pair: its Apply was checked by its own Smoke
            continue  # another group's Smoke of the same block (pattern A)
        seen_apply = True
        if _services_of_apply(step, catalog) & covered:
            start = j
    return start
