"""``ralf bootstrap``: from an empty node to a running Phase 1, in the runbook's binding order.

The plan: for each Phase 1 service in the order the platform lists it (MinIO, PostgreSQL, Gitea,
Semaphore), its pair — the service's stacks (``*-lxc`` then ``*-config``; MinIO's with local state)
run by ralf itself, since Semaphore does not exist yet — then its smoke; then the seeding of the
Semaphore project (what ``ralf semaphore seed`` does); then ``<prefix> Phase1 Smoke`` as a task in
Semaphore, the first thing Semaphore itself runs. A platform without a ``semaphore`` section (the
real-container lab) ends after the pairs, and the plan says so.

It runs through the deploy machinery (:func:`ralf.deploy.execute`), so it is journaled like a
deploy (request ``bootstrap``), stops at the first failure with a triage, and ``--resume`` continues
at the failed step. Every step is idempotent: a rerun on a platform that is up changes nothing and
the summary says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ralf.catalog import Catalog
from ralf.deploy.local_exec import LocalExecutor
from ralf.deploy.results import FAILED, SUCCEEDED, StepContext, StepOutcome
from ralf.errors import RalfError, UsageError
from ralf.planner import Plan, Step
from ralf.states import Result

REQUEST = "bootstrap"
COMMAND = "ralf bootstrap"
SEED_STEP = "semaphore seed"
MIRROR_STEP = "gitea mirror"


def bootstrap_plan(catalog: Catalog) -> Plan:
    p = catalog.platform
    steps: list[Step] = []
    services = catalog.services_of(catalog.phase1)
    holder = _mirror_service(catalog)
    for n, s in enumerate(services, 1):
        apply = catalog.template(catalog.service_apply(s))
        stacks = ", ".join(apply.stacks)
        steps.append(Step(apply.name, "apply", apply.stacks, None, f"pair {n}/{len(services)}: {s} ({stacks}), run by ralf"))
        steps.append(Step(catalog.service_smoke(s), "smoke", (), s, f"check {s} before the next pair"))
        if s == holder:
            steps.append(_mirror_step(p))
    if p.semaphore is None:
        msg = ("Phase 1 pair by pair; the platform file has no semaphore section: no seeding and no Semaphore smoke")
    else:
        if p.mirror is not None and holder is None:
            steps.append(_mirror_step(p))
        steps.append(Step(SEED_STEP, "seed", (), None,  # type: ignore[arg-type]
                          f"make project {p.semaphore.project!r} hold the runbook's templates"))
        ph1 = catalog.template_name(p.phase1_group.word, "Smoke")
        steps.append(Step(ph1, "smoke", (), p.phase1_group.name, "the first task Semaphore runs: Phase 1 smoke"))
        msg = "Phase 1 pair by pair, then the Semaphore project, then Phase 1's smoke through Semaphore"
    return Plan(REQUEST, steps, REQUEST, msg)


def _mirror_step(p: Any) -> Step:
    return Step(MIRROR_STEP, "mirror", (), None,  # type: ignore[arg-type]
                f"{p.mirror.owner}/{p.mirror.name} in Gitea mirrors {p.mirror.source_url}: what Semaphore's tasks run")


def _mirror_service(catalog: Catalog) -> str | None:
    """The Phase 1 service that runs the mirror's Gitea (None: Gitea is not part of Phase 1)."""
    p = catalog.platform
    if p.mirror is None or p.mirror.service not in catalog.services_of(catalog.phase1):
        return None
    return p.mirror.service


@dataclass
class Changes:
    """What the run changed, step by step (None: not known)."""

    per_step: dict[str, int | None] = field(default_factory=dict)

    @property
    def none(self) -> bool:
        return all(v == 0 for v in self.per_step.values())


class BootstrapExecutor:
    """Pairs and their smokes run locally; the seeding and the last smoke go to Semaphore once it exists."""

    name = "bootstrap"

    def __init__(self, platform: Any, *, run_stacks: Callable | None = None, run_smoke: Callable | None = None,
                 make_client: Callable | None = None, seed: Callable | None = None,
                 semaphore_options: dict | None = None, make_gitea: Callable | None = None) -> None:
        self.platform = platform
        self.changes = Changes()
        self._real_stacks = run_stacks
        self.local = LocalExecutor(platform, run_stacks=self._counting_stacks, run_smoke=run_smoke)
        self._make_client = make_client
        self._seed = seed
        self._sem_options = semaphore_options or {}
        self._make_gitea = make_gitea
        self._client: Any = None  # a SemaphoreClient, made on first use

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def prepare(self, plan: Plan) -> None:
        self.local.prepare(Plan(plan.pattern, [s for s in plan.steps if s.kind == "apply"], plan.request))

    def _counting_stacks(self, platform, only, **kw):
        run = self._real_stacks
        if run is None:
            from ralf.stacks import run_stacks
            run = run_stacks
        result = run(platform, only, **kw)
        self.changes.per_step[",".join(only)] = getattr(result, "changed", None)
        return result

    def _client_now(self):
        if self._client is None:
            make = self._make_client
            if make is None:
                from ralf.semaphore.settings import client_from_platform
                make = client_from_platform
            self._client = make(self.platform)
        return self._client

    def run_step(self, step: Step, ctx: StepContext) -> StepOutcome:
        if step.kind == "seed":
            return self._run_seed(ctx)
        if step.kind == "mirror":
            return self._run_mirror(ctx)
        if step.kind == "smoke" and step.target == self.platform.phase1_group.name and self.platform.semaphore:
            return self._run_in_semaphore(step, ctx)
        return self.local.run_step(step, ctx)

    def _run_seed(self, ctx: StepContext) -> StepOutcome:
        from ralf.semaphore.desired import desired_state

        seed = self._seed
        if seed is None:
            from ralf.semaphore.reconcile import seed as reconcile_seed
            seed = reconcile_seed
        ctx.on_status("running")
        lines: list[str] = []

        def emit(line: str) -> None:
            lines.append(line)
            ctx.on_line(line)

        try:
            result = seed(self._client_now(), desired_state(Catalog(self.platform)), emit=emit)
        except RalfError as e:
            emit(f"[seed] error: {e}")
            return StepOutcome(FAILED, message=str(e), error=str(e), log=lines)
        self.changes.per_step[SEED_STEP] = 1 if result.changed else 0
        return StepOutcome(SUCCEEDED, message=f"CHANGED={1 if result.changed else 0}", log=lines)

    def _run_mirror(self, ctx: StepContext) -> StepOutcome:
        from ralf.gitea.api import GiteaApi
        from ralf.gitea.mirror import ensure_mirror

        ctx.on_status("running")
        lines: list[str] = []
        branch = self.platform.semaphore.repository.branch if self.platform.semaphore else "main"
        try:
            api = (self._make_gitea or GiteaApi.from_platform)(self.platform)
            try:
                result = ensure_mirror(api, self.platform.mirror, branch)
            finally:
                api.close()
        except RalfError as e:
            line = f"error: {e}"
            ctx.on_line(line)
            return StepOutcome(FAILED, message=str(e), error=str(e), log=[line])
        for line in result.lines:
            lines.append(line)
            ctx.on_line(line)
        self.changes.per_step[MIRROR_STEP] = 1 if result.changed else 0
        return StepOutcome(SUCCEEDED, message=f"CHANGED={1 if result.changed else 0}", log=lines)

    def _run_in_semaphore(self, step: Step, ctx: StepContext) -> StepOutcome:
        from ralf.deploy.semaphore_exec import SemaphoreExecutor

        try:
            ex = SemaphoreExecutor(self._client_now(), self.platform.semaphore.project, **self._sem_options)
            ex.prepare(Plan(REQUEST, [step], REQUEST))
        except RalfError as e:
            return StepOutcome(FAILED, message=str(e), error=str(e), log=[f"[semaphore] {e}"])
        return ex.run_step(step, ctx)


def find_resumable(journal: Any, ref: str | None) -> str:
    """The run id ``--resume`` means: the one given, or the newest bootstrap run that did not succeed."""
    if ref not in (None, "", "last", "latest"):
        run = journal.run(int(ref)) if str(ref).isdigit() else None
        if run is not None and run.get("request") != REQUEST:
            raise UsageError(f"run {ref} is not a bootstrap run (it was `{run.get('request') or 'deploy'}`); "
                             "continue it with `ralf deploy --resume`")
        return str(ref)
    for run in journal.recent_runs(limit=200):
        if run.get("request") == REQUEST and run.get("result") not in (SUCCEEDED, Result.RUNNING):
            if journal.resumed_by(run["id"]) is None:
                return str(run["id"])
    raise UsageError("no failed or stopped bootstrap run in the journal to resume")


def summary_line(changes: Changes, preflight_actions: list[str], ok: bool) -> str:
    if not ok:
        return ""
    if changes.none and not preflight_actions:
        return "bootstrap: the platform was already up — nothing changed"
    changed = [k for k, v in changes.per_step.items() if v]
    unknown = [k for k, v in changes.per_step.items() if v is None]
    parts = preflight_actions + [f"{k} changed" for k in changed] + [f"{k}: changes not counted" for k in unknown]
    return "bootstrap: " + "; ".join(parts)
