"""``ralf semaphore``: seed the project from the platform (``seed``), list templates, ping the server."""

from __future__ import annotations

import sys

import click

from ralf.cli.common import console, emit_json, json_option, load, platform_option, table


@click.group("semaphore")
@platform_option
def semaphore() -> None:
    """Seed and inspect the Semaphore project (what stack 041 does).

    Connection: semaphore.url (or $SEMAPHORE_URL) with $SEMAPHORE_TOKEN, or $SEMAPHORE_USER and
    $SEMAPHORE_PASSWORD, or the admin credentials in semaphore.credentials_file."""


@semaphore.command()
@platform_option
@click.option("--check", is_flag=True, help="Only print the drift; exit 1 if there is any. Changes nothing.")
@click.option("--prune", is_flag=True,
              help="Delete ralf's own objects (marked 'managed by ralf') that the platform no longer names.")
@click.option("--no-view", is_flag=True, help="Do not group the templates in a view.")
@json_option
def seed(check: bool, prune: bool, no_view: bool, as_json: bool) -> None:
    """Make the project hold exactly the templates, environments, inventory and repository the
    platform names. Prints the plan with field-level diffs; the last line is CHANGED=0 or CHANGED=1.

    Objects ralf made carry a marker ("managed by ralf" in a template's description, RALF_MANAGED=1 in
    an environment, a comment atop the inventory); one with a desired name but no marker is adopted.
    Everything else in the project is the user's and is left alone. With --check, exit 1 on drift,
    which includes ralf's objects the platform no longer names."""
    from ralf.catalog import Catalog
    from ralf.semaphore.desired import desired_state
    from ralf.semaphore.reconcile import seed as run_seed
    from ralf.semaphore.settings import client_from_platform

    platform = load()
    desired = desired_state(Catalog(platform), view=not no_view)
    emit = None if as_json else click.echo
    with client_from_platform(platform) as client:
        result = run_seed(client, desired, check=check, prune=prune, emit=emit)
    if as_json:
        emit_json(result.to_dict())
    else:
        if result.project_id is not None:
            click.echo(f"PROJECT_ID={result.project_id}")
        if check:
            click.echo(f"DRIFT={int(result.drift)}")
        click.echo(f"CHANGED={int(result.changed)}")
    if check and result.drift:
        sys.exit(1)  # click.exceptions.Exit is swallowed by main()'s standalone_mode=False


@semaphore.command()
@platform_option
@json_option
def templates(as_json: bool) -> None:
    """The project's templates with their last task's status and time."""
    from ralf.errors import UsageError
    from ralf.semaphore.settings import client_from_platform
    from ralf.semaphore.status import template_status

    platform = load()
    if platform.semaphore is None:
        raise UsageError("the platform file has no semaphore section, so it names no Semaphore project")
    with client_from_platform(platform) as client:
        pid, rows = template_status(client, platform.semaphore.project)
    if as_json:
        emit_json({"project_id": pid, "templates": rows})
        return
    table(f"Templates of project {pid}", ["id", "name", "last task", "status", "time"],
          [[r["id"], r["name"], r["last_task_id"], r["last_status"] or "never run", r["last_time"]] for r in rows])


@semaphore.command()
@platform_option
@json_option
def ping(as_json: bool) -> None:
    """Check that the server answers and the credentials work; print its version.

    A failure says which: TLS (certificate not trusted, handshake), connection refused, timeout, or
    an answer that is not Semaphore's."""
    from ralf.errors import SemaphoreError
    from ralf.semaphore.settings import client_from_settings, settings_from_platform

    settings = settings_from_platform(load())
    try:
        with client_from_settings(settings) as client:
            client.check_ping()
            version = client.info().get("version")
    except SemaphoreError as e:
        if as_json:
            emit_json({"url": settings.url, "alive": False, "problem": e.message})
        raise
    if as_json:
        emit_json({"url": settings.url, "alive": True, "version": version})
    else:
        console().print(f"{settings.describe()}: ok, {version}")
