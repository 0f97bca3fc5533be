"""Commands for the same place, run in one process: the batch script, its parser, and group commit.

Checking 200 services' units means 200 commands. Started one by one, each costs a process on this
machine (and for ``pct`` an SSH connection to the node, where sshd's ``MaxStartups`` refuses a burst of
them). The smoke engine's :class:`Batcher` groups the commands for the same place
(:meth:`ralf.transport.Transport.batch_key`: this machine, one Proxmox node, one CT over SSH) that come
together, and runs each group as one process (:meth:`ralf.transport.Transport.run_many`). Nothing waits
for a batch to fill: a lone command runs at once, exactly as the transport runs it alone, and a burst
costs a few processes instead of one each.

A batch is one POSIX shell script that runs its commands one after another (on this machine, where a
shell's forks cost the CPU the checks share) or all at once (on a Proxmox node, where ``pct exec`` is
slow), each command through ``eval`` so that no command can break the script, and prints each one's exit
code, stdout and stderr in a block framed by a random token. :func:`parse` reads the blocks back; a
block that is missing or garbled is ``None`` and the transport runs that command again alone.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shlex
from collections.abc import Sequence
from typing import Any

# Each command prints one block: "<token> <i>\n<stderr>\n<token> <exit code>\n<stdout>\n<token> <i> end".
# Its stdout is captured by a command substitution, a subshell, so that an `exit` in the command ends only the
# command (trailing newlines are lost, as in any command substitution).
# All at once: its stderr is captured too, and the whole block printed at its end (one write).
_AT_ONCE = ("( _ralf_e=$( {{ _ralf_o=$( eval {cmd} 2>&4 ); _ralf_c=$?; "
            "printf '\\n%s %s\\n%s' \"$_ralf_t\" \"$_ralf_c\" \"$_ralf_o\"; }} 4>&1 ); "
            "printf '%s {i}\\n%s\\n%s {i} end\\n' \"$_ralf_t\" \"$_ralf_e\" \"$_ralf_t\" ) &")
# One after another: nothing else writes meanwhile, so its stderr goes straight into its block (fd 3, the
# script's stdout) and a command costs one fork.
_IN_TURN = ("printf '%s {i}\\n' \"$_ralf_t\"; _ralf_o=$( eval {cmd} 2>&3 ); _ralf_c=$?; "
            "printf '\\n%s %s\\n%s\\n%s {i} end\\n' \"$_ralf_t\" \"$_ralf_c\" \"$_ralf_o\" \"$_ralf_t\"")


def new_token() -> str:
    return "ralf-" + secrets.token_hex(8)


def script(commands: Sequence[str], token: str, *, parallel: bool) -> str:
    """A shell script running ``commands`` and printing each one's result in its framed block as it ends.

    ``parallel``: all at once, each in a background subshell (where commands are slow, as ``pct exec`` is);
    else one after another, which costs a third of the forks (where a batch's commands are quick)."""
    one = _AT_ONCE if parallel else _IN_TURN
    lines = [f"_ralf_t={token}"] + ([] if parallel else ["exec 3>&1"])
    lines += [one.format(cmd=shlex.quote(c), i=i) for i, c in enumerate(commands)]
    if parallel:
        lines.append("wait")
    return "\n".join(lines) + "\n"


def parse(output: str, token: str, n: int) -> list[tuple[int, str, str] | None]:
    """Each command's (exit code, stdout, stderr) from the script's output; None where its block is
    missing (killed before it ended) or garbled (another block's bytes inside it)."""
    found: list[tuple[int, str, str] | None] = [None] * n
    t = re.escape(token)
    for m in re.finditer(rf"^{t} (\d+)\n(.*?)\n{t} \1 end$", output, re.S | re.M):
        i, body = int(m.group(1)), m.group(2)
        stderr, sep, rest = body.partition(f"\n{token} ")
        code, _, stdout = rest.partition("\n")
        if i >= n or not sep or not code.isdigit() or token in stderr or token in rest:
            continue
        found[i] = (int(code), stdout + "\n" if stdout else "", stderr.lstrip("\n"))
    return found


class Batcher:
    """Group commit on the smoke run's event loop, in front of a transport.

    The commands for one place (:meth:`ralf.transport.Transport.batch_key`) that arrive in the same turn
    of the loop are split into batches of at most the transport's ``batch_size`` and run at once, each
    batch in ``pool``; each command's result comes as its batch ends. Nothing waits for a batch to fill:
    a lone command runs on the loop's next turn, as the transport runs it alone."""

    def __init__(self, transport, pool) -> None:
        self.transport = transport
        self.pool = pool
        self._waiting: dict[str, list[tuple[Any, str, float, asyncio.Future]]] = {}
        self._tasks: set[asyncio.Task] = set()

    async def run(self, service, command: str, timeout: float):
        loop = asyncio.get_running_loop()
        key = self.transport.batch_key(service)
        if key is None:
            return await loop.run_in_executor(self.pool, self.transport.run, service, command, timeout)
        done: asyncio.Future = loop.create_future()
        if key not in self._waiting:
            self._waiting[key] = []
            loop.call_soon(self._start, key)
        self._waiting[key].append((service, command, timeout, done))
        return await done

    def _start(self, key: str) -> None:
        waiting = self._waiting.pop(key)
        size = max(1, self.transport.batch_size)
        for i in range(0, len(waiting), size):
            task = asyncio.get_running_loop().create_task(self._run(waiting[i:i + size]))
            self._tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[Any, str, float, asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self.pool, self.transport.run_many, [(s, c, t) for s, c, t, _ in batch])
        except Exception as e:  # noqa: BLE001 - every waiter gets the error, none hangs
            for *_, done in batch:
                if not done.done():
                    done.set_exception(e)
        else:
            for (*_, done), result in zip(batch, results, strict=True):
                if not done.done():  # a service abandoned at the target's deadline
                    done.set_result(result)
