"""An ``*-lxc`` stack on the local LXC node: the service's CT, made by ralf instead of OpenTofu.

Same contract as an OpenTofu stack in the runner: plan mode says what would change and touches
nothing; apply makes the CT exist and run, reports ``changed`` (1 when it created or started the
CT, 0 when it was already running) and never destroys anything (that is ``ralf lab down``).
"""

from __future__ import annotations

from typing import TextIO

from ralf.backends.lxc.node import LxcNode
from ralf.catalog import Stack
from ralf.errors import RalfError
from ralf.stacks.context import Outcome, RunContext
from ralf.states import Result

WOULD = {"created": "would create and start", "started": "would start", "unchanged": "running, nothing to do"}
DID = {"created": "created and started", "started": "started", "unchanged": "already running, left alone"}


def run_lxc_stack(ctx: RunContext, stack: Stack, apply: bool, log: TextIO) -> Outcome:
    def say(line: str) -> None:
        log.write(line + "\n")
        log.flush()
        ctx.say(line)

    node = LxcNode(ctx.platform, on_output=say)
    ct = ctx.platform.services[stack.service].ct_id
    try:
        what = node.ensure_ct(stack.service, apply=apply)
    except RalfError as e:
        return Outcome(Result.FAILED, note=str(e))
    text = (DID if apply else WOULD)[what]
    say(f"[ralf] CT {ct} ({stack.service}) on LXC node {node.host.name}: {text}")
    return Outcome(Result.SUCCEEDED, changed=0 if what == "unchanged" else 1, note=f"CT {ct}: {text}")
