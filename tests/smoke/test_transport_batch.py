"""Commands in batches: the script run by real shells, its parser from data, each transport's one process for
a batch (exact command lines, never executed remotely), and the event loop's group commit."""

from __future__ import annotations

import asyncio
import dataclasses
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from ralf import transport_batch
from ralf.transport import ExecResult, LocalTransport, LxcTransport, PctTransport, RecordingTransport, SshTransport
from ralf.transport_batch import Batcher, parse, script

TOKEN = "ralf-0123456789abcdef"

# What a unit or port command can do: answer, fail with a message, exit early, be missing, be broken.
COMMANDS = [
    "echo active",
    "echo inactive; echo 'Unit x.service could not be found.' >&2; exit 3",
    "case svc in dead) exit 3;; *) exit 0;; esac",
    "printf 'a\\nb\\n'; echo warning >&2",
    "definitely-not-a-command-ralf",
    "exit 5 )",
    "echo \"$1\" 'it'\\''s'",
    "cat",  # reads stdin: nothing, as when run alone
]


@pytest.fixture
def svc(make_platform):
    return make_platform({"svc": {"ct_id": 4242}}).services["svc"]


# Batches always run under sh (dash on Debian), which writes each block at once; one after another, bash too.
@pytest.mark.parametrize(("shell", "parallel"), [("sh", False), ("bash", False), ("sh", True)],
                         ids=["sh one after another", "bash one after another", "sh all at once"])
def test_each_command_in_a_batch_gives_what_it_gives_alone(shell, parallel):
    out = subprocess.run([shell, "-c", script(COMMANDS, TOKEN, parallel=parallel)], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, check=True)
    for command, got in zip(COMMANDS, parse(out.stdout, TOKEN, len(COMMANDS)), strict=True):
        alone = subprocess.run([shell, "-c", command], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert got is not None, command
        rc, stdout, stderr = got
        assert (rc, stdout) == (alone.returncode, alone.stdout), command
        assert bool(stderr) == bool(alone.stderr), command


@pytest.mark.parametrize(("output", "expected"), [
    # blocks in any order; empty stderr and stdout
    (f"{TOKEN} 1\n\n{TOKEN} 3\ninactive\n{TOKEN} 1 end\n{TOKEN} 0\n\n{TOKEN} 0\nactive\n{TOKEN} 0 end\n",
     [(0, "active\n", ""), (3, "inactive\n", "")]),
    # stderr and a multi-line stdout
    (f"{TOKEN} 0\nno such unit\n\n{TOKEN} 4\na\nb\n{TOKEN} 0 end\n", [(4, "a\nb\n", "no such unit\n"), None]),
    # killed before its end: no block; a block cut short: no result
    (f"{TOKEN} 0\n\n{TOKEN} 0\nactive\n{TOKEN} 0 end\n{TOKEN} 1\n\n{TOKEN} 0\nact", [(0, "active\n", ""), None]),
    # another block's bytes inside one (a shell that wrote a block in pieces): that one is garbled
    (f"{TOKEN} 0\n\n{TOKEN} 1 \n{TOKEN} 0\nactive\n{TOKEN} 1 end\n{TOKEN} 0\nactive\n{TOKEN} 0 end\n",
     [None, None]),
    # an index out of range, an exit code that is not a number, a foreign token
    (f"{TOKEN} 7\n\n{TOKEN} 0\n\n{TOKEN} 7 end\n{TOKEN} 0\n\n{TOKEN} x\n\n{TOKEN} 0 end\n"
     f"ralf-ffffffffffffffff 1\n\nralf-ffffffffffffffff 0\n\nralf-ffffffffffffffff 1 end\n", [None, None]),
])
def test_parse(output, expected):
    assert parse(output, TOKEN, len(expected)) == expected


def test_local_batch_runs_once_and_judges_each_command(svc):
    calls = []
    t = LocalTransport()
    real = t.runner

    def runner(argv, timeout):
        calls.append(argv)
        return real(argv, timeout)

    t = dataclasses.replace(t, runner=runner)
    got = t.run_many([(svc, "echo active", 5), (svc, "echo inactive; exit 3", 5), (svc, "nope-ralf-cmd", 5)])
    assert len(calls) == 1 and calls[0][:2] == ["sh", "-c"]
    assert got[0] == ExecResult(0, "active\n", "") and got[1].rc == 3 and got[1].stdout == "inactive\n"
    assert got[2].rc == 127 and got[2].transport_error.startswith("command not found")  # as run() says it


def test_a_command_past_the_time_limit_times_out_and_those_before_it_stand(svc):
    # one after another, the batch has the commands' times added up (1 s); the last one never ran
    got = LocalTransport().run_many([(svc, "echo active", 0.5), (svc, "sleep 30", 0.25), (svc, "echo never", 0.25)])
    assert got[0] == ExecResult(0, "active\n", "")
    assert got[1].timed_out and got[2].timed_out
    slow = LocalTransport().run_many([(svc, "sleep 0.4; echo a", 0.3), (svc, "sleep 0.4; echo b", 0.6)])
    assert [r.stdout for r in slow] == ["a\n", "b\n"]  # 0.8 s in all, within 0.9 s though each beyond 0.3 s


def test_all_at_once_a_slow_command_holds_no_other(svc):
    t = LocalTransport()
    t.batch_parallel = True
    got = t.run_many([(svc, "sleep 30", 0.5), (svc, "echo active", 0.5)])
    assert got[0].timed_out and got[1] == ExecResult(0, "active\n", "")


def test_a_garbled_block_runs_its_command_again_alone(svc, monkeypatch):
    monkeypatch.setattr(transport_batch, "new_token", lambda: TOKEN)
    calls = []

    def runner(argv, timeout):
        calls.append(argv)
        if len(calls) == 1:  # the batch: the second command's block is missing
            return ExecResult(0, f"{TOKEN} 0\n\n{TOKEN} 0\nactive\n{TOKEN} 0 end\n", "")
        return ExecResult(3, "inactive\n", "")

    got = LocalTransport(runner=runner).run_many([(svc, "systemctl is-active a", 5), (svc, "systemctl is-active b", 5)])
    assert calls[1] == ["sh", "-c", "systemctl is-active b"]
    assert got == [ExecResult(0, "active\n", ""), ExecResult(3, "inactive\n", "")]


def test_pct_batch_is_one_ssh_to_the_node_each_command_its_own_pct_exec(make_platform, monkeypatch):
    monkeypatch.setattr(transport_batch, "new_token", lambda: TOKEN)
    p = make_platform({"a": {"ct_id": 4242}, "b": {"ct_id": 4243}})
    calls = []

    def runner(argv, timeout):
        calls.append((argv, timeout))
        return ExecResult(255, "", "root@pve.test: Permission denied (publickey).\n")

    t = PctTransport(host="pve.test", key_file="/k/id", runner=runner)
    assert t.batch_key(p.services["a"]) == t.batch_key(p.services["b"]) == "root@pve.test"
    got = t.run_many([(p.services["a"], "systemctl is-active app", 5), (p.services["b"], "systemctl is-active 'my unit'", 3)])
    expected = script(["pct exec 4242 -- systemctl is-active app", "pct exec 4243 -- systemctl is-active 'my unit'"],
                      TOKEN, parallel=True)
    assert calls == [(t._ssh("pve.test", shlex.join(["sh", "-c", expected])), 10)]  # the longest budget + connect
    assert calls[0][0][:3] == ["ssh", "-o", "BatchMode=yes"] and "root@pve.test" in calls[0][0]
    # ssh itself failed: every command of the batch says so
    assert [r.transport_error for r in got] == ["ssh root@pve.test failed: root@pve.test: Permission denied (publickey)."] * 2


def test_ssh_batches_per_ct_address(make_platform):
    p = make_platform({"a": {"ct_id": 101}, "b": {"ct_id": 102}})
    t = SshTransport(user="ops")
    assert t.batch_key(p.services["a"]) == f"ops@{p.services['a'].ip}" != t.batch_key(p.services["b"])


def test_lxc_batch_is_one_shell_in_the_node_namespace(make_platform, monkeypatch):
    from ralf.backends.lxc import netns

    monkeypatch.setattr(transport_batch, "new_token", lambda: TOKEN)
    monkeypatch.setattr(netns, "exists", lambda name: True)
    svc = make_platform({"a": {"ct_id": 4242}}).services["a"]
    calls = []
    t = LxcTransport(netns="ralf-lab", lxc_path="/var/lib/ralf/lxc", runner=lambda argv, timeout: calls.append(argv)
                     or ExecResult(0, "", ""))
    assert t.batch_key(svc) == "ct 4242"
    t.run_many([(svc, "systemctl is-active a", 5), (svc, "systemctl is-active b", 5)])
    attach = ["lxc-attach", "-n", "4242", "-P", "/var/lib/ralf/lxc", "--clear-env",
              "-v", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "--", "systemctl", "is-active"]
    expected = script([shlex.join([*attach, "a"]), shlex.join([*attach, "b"])], TOKEN, parallel=False)
    assert calls[0] == netns.lxc_argv("ralf-lab", ["sh", "-c", expected])


class Counting(LocalTransport):
    """The local transport, counting its processes: lone runs and batches with their sizes."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.alone: list[str] = []
        self.batches: list[int] = []
        self.fail = fail

    def run(self, service, command, timeout):
        self.alone.append(command)
        return super().run(service, command, timeout)

    def run_many(self, items):
        self.batches.append(len(items))
        if self.fail:
            raise RuntimeError("boom")
        return super().run_many(items)


def _gather(batcher: Batcher, commands: list[tuple[object, str]]):
    async def main():
        return await asyncio.gather(*(batcher.run(s, c, 5) for s, c in commands), return_exceptions=True)
    return asyncio.run(main())


def test_commands_of_one_turn_go_in_batches_of_at_most_batch_size(svc):
    t = Counting()
    with ThreadPoolExecutor(4) as pool:
        got = _gather(Batcher(t, pool), [(svc, f"echo {i}") for i in range(20)])
    assert sorted(t.batches) == [4, 8, 8]
    assert [r.stdout for r in got] == [f"{i}\n" for i in range(20)]


def test_a_lone_command_is_run_alone_and_an_error_reaches_every_waiter(svc):
    t = Counting()
    with ThreadPoolExecutor(2) as pool:
        assert _gather(Batcher(t, pool), [(svc, "echo active")])[0].stdout == "active\n"
    assert t.alone == ["echo active"]  # run_many of one runs it exactly as run() does
    broken = Counting(fail=True)
    with ThreadPoolExecutor(2) as pool:
        got = _gather(Batcher(broken, pool), [(svc, "echo 1"), (svc, "echo 2")])
    assert [str(e) for e in got] == ["boom", "boom"]


def test_a_transport_without_batches_runs_each_command(svc):
    t = RecordingTransport()
    with ThreadPoolExecutor(2) as pool:
        _gather(Batcher(t, pool), [(svc, "a"), (svc, "b")])
    assert sorted(c for _, c in t.calls) == ["a", "b"]
