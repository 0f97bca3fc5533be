"""``ralf stacks list`` / ``ralf stacks run``: the stack runner on the command line.

Without flags, ``run`` reads the selection from the environment as Semaphore sets it:
``ONLY_STACKS`` (ordered whitelist), ``START_AT`` (stacks at or after it) and ``AUTO_APPLY``
("1" applies, anything else plans). Child output streams live; the summary comes last.
"""

from __future__ import annotations

import os
import sys

import click

from ralf.cli.common import console, emit_json, json_option, load, platform_option, table


def _selection_options(f):
    f = click.option("--start-at", "start_at", metavar="NNN", default=None,
                     help="Keep stacks whose name sorts at or after NNN (default: $START_AT).")(f)
    f = click.option("--only", "only", metavar="S1,S2", multiple=True,
                     help="Only these stacks, in this order (default: $ONLY_STACKS).")(f)
    return f


@click.group()
@platform_option
def stacks() -> None:
    """List or run the OpenTofu (*-lxc) and Ansible (*-config) stacks."""


@stacks.command("list")
@_selection_options
@platform_option
@json_option
def list_cmd(only: tuple[str, ...], start_at: str | None, as_json: bool) -> None:
    """Stacks in run order, their type, and whether the current selection includes them."""
    from ralf.catalog import Catalog
    from ralf.stacks.selection import empty_selection, resolve_selection, select_stacks

    catalog = Catalog(load())
    sel = resolve_selection(os.environ, only=only or None, start_at=start_at)
    # an empty selection is still a listing (every stack, none selected); `stacks run` refuses it
    chosen = select_stacks(catalog, sel.only, sel.start_at, only_source=sel.only_source,
                           start_source=sel.start_source, allow_empty=True)
    note = (f"{empty_selection(sel.only, sel.start_at, sel.only_source, sel.start_source)}; "
            "`ralf stacks run` would refuse to run") if not chosen else None
    order = {s.name: i for i, s in enumerate(chosen, 1)}
    rows = []
    for s in catalog.stacks:
        state = ("local" if s.local_state else "s3") if s.type == "tofu" else ""
        rows.append({**s.to_dict(), "state": state, "selected": s.name in order, "position": order.get(s.name)})
    if as_json:
        emit_json({"mode": "apply" if sel.apply else "plan", "only": sel.only, "start_at": sel.start_at,
                   "stacks": rows, **({"note": note} if note else {})})
        return
    table(
        f"Stacks ({sel.describe()})",
        ["stack", "type", "service", "group", "state", "selected"],
        [[r["name"], r["type"], r["service"], r["group"], r["state"],
          f"yes (#{r['position']})" if r["selected"] else "no"] for r in rows],
    )
    if note:
        click.echo(f"note: {note}")


@stacks.command("run")
@_selection_options
@click.option("--apply/--plan", "apply", default=None,
              help="Apply, or only plan / syntax-check (default: $AUTO_APPLY, \"1\" applies).")
@click.option("--wait", is_flag=True, help="Wait for another run's lock instead of failing.")
@click.option("--tofu-binary", metavar="NAME", default=None,
              help="OpenTofu executable (default: $RALF_TOFU, else tofu; terraform also works).")
@click.option("--state-dir", metavar="DIR", default=None, help="State directory (default: $RALF_STATE_DIR …).")
@click.option("--allow-destroy", "allow_destroy", metavar="STACK", multiple=True,
              help="Let this OpenTofu stack's plan delete or replace resources (a CT and its data); "
                   "without it such a plan is refused before apply. No variable sets this.")
@platform_option
@json_option
def run_cmd(only: tuple[str, ...], start_at: str | None, apply: bool | None, wait: bool,
            tofu_binary: str | None, state_dir: str | None, allow_destroy: tuple[str, ...], as_json: bool) -> None:
    """Run the selected stacks (tofu init, plan, guard, apply; ansible-playbook) and print a summary.

    Exit 0 only when every stack succeeded; 1 when one failed (a refused destroy included); 130 when interrupted.
    """
    from pathlib import Path

    from ralf.stacks import run_stacks
    from ralf.stacks.selection import resolve_selection

    platform = load()
    sel = resolve_selection(os.environ, only=only or None, start_at=start_at, apply=apply)
    stream = sys.stderr if as_json else sys.stdout

    def out(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    result = run_stacks(
        platform, sel.only, sel.start_at, apply=sel.apply, state_dir=Path(state_dir) if state_dir else None,
        on_output=out, wait=wait, tofu_binary=tofu_binary,
        command=" ".join(["ralf", *sys.argv[1:]]), only_source=sel.only_source, start_source=sel.start_source,
        allow_destroy=[n for raw in allow_destroy for n in raw.replace(",", " ").split()],
    )
    if as_json:
        emit_json(result.to_dict())
    else:
        print_summary(result)
    if result.exit_code:
        sys.exit(result.exit_code)  # click swallows its Exit when not standalone; SystemExit passes through


def print_summary(result) -> None:
    rows = []
    for r in result.results:
        changed = "" if r.changed is None else str(r.changed)
        rows.append([r.stack, r.type, r.action, r.result, f"{r.duration:.1f}s", changed, r.log_path or "", r.note])
    sys.stdout.flush()
    table("Summary", ["stack", "type", "action", "result", "duration", "changed", "log", "note"], rows)
    if result.interrupted:
        verdict = "interrupted"
    elif result.ok:
        total = result.changed
        verdict = "all stacks succeeded" + ("" if total is None else
                                            ("; nothing changed" if total == 0 else f"; {total} change(s)"))
    else:
        verdict = "failed"
    console().print(f"{verdict} — {len(result.results)} stack(s), {result.duration:.1f}s, run {result.run_dir}")
