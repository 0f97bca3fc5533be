"""The smoke engine: all services of a target at once, each one's layers in order.

Per service, layers run in the runbook's triage order; the checks of one layer run together.
The first layer with a failing check is the diagnosis and the layers after it are SKIPPED.
Layers that need the exec transport when none is configured are NOT CHECKED and do not stop the
run. Within the public-endpoint layer, connect checks run first: when a TCP connect to a host and
port fails, the HTTP checks on that same host and port are skipped instead of retrying for their
whole deadline, so a dead service is reported within one connect timeout.

Every service of the target runs at once (up to ``MAX_CONCURRENCY``), each a task on one event loop: the
TCP and HTTP checks wait on the loop, commands in CTs go in batches (:mod:`ralf.transport_batch`), and
only checks built on blocking libraries take a thread. 200 services take little more than the slowest
one: checks wait on the network, and a thread each would spend the CPU. With a ``deadline`` for the whole
target, a service still unfinished then (an endpoint that accepts and never answers) is reported FAIL at
the layer it was in and the report is returned: it never holds the others' results.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ralf.smoke.checks import Context, Outcome, run_check_async
from ralf.smoke.layers import ENDPOINT, LAYERS, PlannedCheck, plan_service
from ralf.smoke.results import FAIL, NOT_CHECKED, SKIPPED, CheckResult, CheckStatus, ServiceResult, SmokeReport
from ralf.transport_batch import Batcher

OnCheck = Callable[[str, CheckResult], None]

# Services checked at once when not told: all of the target's, up to this many (I/O-bound).
MAX_CONCURRENCY = 256


def run_smoke(
    target: str,
    platform,
    *,
    transport=None,
    concurrency: int | None = None,
    on_check: OnCheck | None = None,
    retry_interval: float = 1.0,
    deadline: float | None = None,
) -> SmokeReport:
    """Smoke-check every service of ``target`` (a service, a group, ``phase1`` or ``platform``).

    ``transport`` defaults to the one ``platform.exec`` selects. ``concurrency`` bounds how many
    services run at once (default: all, up to ``MAX_CONCURRENCY``); 1 runs services and checks strictly
    one by one (the original's way). ``deadline``: seconds for the whole target (default: none beyond
    each check's own timeouts); services unfinished then are FAIL "no result within the deadline".
    ``on_check(service, result)`` is called in the calling thread as each check finishes.
    Raises :class:`ralf.errors.UsageError` for an unknown target or a bad concurrency.
    """
    from ralf.catalog import Catalog
    from ralf.errors import UsageError
    from ralf.transport import transport_for

    if concurrency is not None and concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, got {concurrency}")
    if deadline is not None and deadline <= 0:
        raise UsageError(f"the deadline must be more than 0 seconds, got {deadline:g}")
    tgt = Catalog(platform).target(target)
    run = _Run(platform, transport if transport is not None else transport_for(platform),
               serial=concurrency == 1, retry_interval=retry_interval, on_check=on_check,
               concurrency=concurrency or min(MAX_CONCURRENCY, max(1, len(tgt.services))))
    start = time.monotonic()
    # On a local LXC node the checks run inside its network namespace (this thread's sockets, and the
    # threads started here, inherit it).
    from ralf.backends.lxc.node import platform_network

    with platform_network(platform):
        try:
            services = asyncio.run(run.target(list(tgt.services), deadline))
        finally:
            # On an interruption, return at once; blocking checks already running end on their own
            # timeouts instead of holding the caller until every deadline has passed.
            run.pool.shutdown(wait=False, cancel_futures=True)
    return SmokeReport(
        target=target,
        services=services,
        duration_ms=_ms(start),
        transport=run.transport.kind,
    )


class _Run:
    """One smoke run: every service a task on one event loop; checks that block (ssl handshakes, minio,
    the PostgreSQL probe, a transport without batching) in a thread pool of the run's own."""

    def __init__(self, platform, transport, *, serial: bool, retry_interval: float, on_check: OnCheck | None,
                 concurrency: int) -> None:
        self.platform = platform
        self.transport = transport
        self.serial = serial
        self.retry_interval = retry_interval
        self.on_check = on_check
        self.concurrency = concurrency
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="smoke")
        # Commands for the same place that come together (200 services' unit checks on one lab host, the
        # CTs of one Proxmox node) run in one process instead of one each: see ralf.transport_batch.
        self.batcher = Batcher(transport, self.pool)
        self.progress: dict[str, tuple[ServiceResult, str]] = {}  # each service's result so far, its layer now
        self.closed = False  # after the deadline, checks that still finish report to no one

    def report(self, name: str, r: CheckResult) -> None:
        if self.on_check is not None and not self.closed:
            self.on_check(name, r)

    async def target(self, names: list[str], deadline: float | None) -> list[ServiceResult]:
        gate = asyncio.Semaphore(self.concurrency)

        async def gated(name: str) -> ServiceResult:
            async with gate:
                return await self.service(name)

        tasks = [asyncio.ensure_future(gated(n)) for n in names]
        ticker = asyncio.ensure_future(_tick())
        try:
            await asyncio.wait(tasks, timeout=deadline)
            results = [t.result() if t.done() else _overdue(n, self.platform, self.progress, deadline or 0, self.report)
                       for n, t in zip(names, tasks, strict=True)]
        finally:
            self.closed = True
            for t in [*tasks, ticker]:
                t.cancel()
        return results

    async def service(self, name: str) -> ServiceResult:
        """One service, layer by layer; stops at the first failing layer and skips the rest. ``progress``
        gets the result object at once, so that what is done is known if the service is abandoned at the
        target's deadline."""
        service = self.platform.services[name]
        start = time.monotonic()
        result = ServiceResult(name=name, group=service.group)
        ctx = Context(service=service, platform=self.platform, transport=self.transport,
                      retry_interval=self.retry_interval, batcher=self.batcher)
        planned = plan_service(name, service, self.platform, self.transport)

        def notify(r: CheckResult) -> CheckResult:
            self.report(name, r)
            return r

        failed: CheckResult | None = None
        for layer in LAYERS:
            batch = [p for p in planned if p.layer == layer]
            if not batch:
                continue
            self.progress[name] = (result, layer)
            if failed is not None:
                for p in batch:
                    result.checks.append(notify(_result(p, SKIPPED, f"not run: {failed.layer} failed")))
                continue
            result.checks += await self.layer(batch, ctx, notify)
            failed = next((r for r in result.checks if r.layer == layer and r.status == FAIL), None)
            if failed is not None:
                result.failed_layer = layer
                result.diagnosis = f"{name}: FAIL at {layer} — {failed.detail}"
        result.duration_ms = _ms(start)
        return result

    async def layer(self, batch: list[PlannedCheck], ctx: Context, notify) -> list[CheckResult]:
        """The layer's results in declaration order."""
        why_not = self.transport.unavailable(ctx.service) if any(p.needs_transport for p in batch) else None
        done: dict[int, CheckResult] = {}
        ready = []
        for i, p in enumerate(batch):
            if p.needs_transport and why_not:
                done[i] = notify(_result(p, NOT_CHECKED, why_not))
            else:
                ready.append(i)
        if batch[0].layer == ENDPOINT:
            connects = [i for i in ready if batch[i].kind == "tcp"]
            done.update(await self.all(batch, connects, ctx, notify))
            dead = {(batch[i].host, batch[i].port) for i in connects if done[i].status == FAIL}
            rest = []
            for i in ready:
                p = batch[i]
                if i in done:
                    continue
                if p.kind in ("http", "https") and (p.host, p.port) in dead:
                    done[i] = notify(_result(p, SKIPPED, f"not run: TCP connect to {p.host}:{p.port} failed"))
                else:
                    rest.append(i)
            done.update(await self.all(batch, rest, ctx, notify))
        else:
            done.update(await self.all(batch, ready, ctx, notify))
        return [done[i] for i in range(len(batch))]

    async def all(self, batch: list[PlannedCheck], indices: list[int], ctx: Context, notify) -> dict[int, CheckResult]:
        async def timed(i: int) -> CheckResult:
            p = batch[i]
            begun = time.monotonic()
            outcome: Outcome = await run_check_async(p, ctx, self.pool)
            r = _result(p, outcome.status, outcome.detail, _ms(begun))
            r.cert_days_left = outcome.cert_days_left
            return notify(r)

        if self.serial or len(indices) == 1:
            return {i: await timed(i) for i in indices}
        return dict(zip(indices, await asyncio.gather(*(timed(i) for i in indices)), strict=True))


async def _tick() -> None:
    """Wake the loop every 0.2 s: a KeyboardInterrupt sent by ``interrupt_main`` (a deploy's deadline), which
    cannot wake a blocked select, then surfaces within 0.2 s, as Ctrl-C does."""
    while True:
        await asyncio.sleep(0.2)


def _overdue(name: str, platform, progress: dict[str, tuple[ServiceResult, str]], deadline: float,
             on_check: OnCheck) -> ServiceResult:
    """A service still being checked when the target's deadline passed: FAIL at the layer it was in."""
    partial, layer = progress.get(name, (None, LAYERS[0]))
    done = list(partial.checks) if partial is not None else []
    result = ServiceResult(name=name, group=platform.services[name].group, checks=done)
    r = CheckResult(layer=layer, kind="deadline", name="target deadline", endpoint="", status=FAIL,
                    detail=f"no result within the target's deadline of {deadline:g} s (a check still waits for an "
                           "answer)", duration_ms=int(deadline * 1000))
    on_check(name, r)
    result.checks.append(r)
    result.failed_layer = layer
    result.diagnosis = f"{name}: FAIL at {layer} — {r.detail}"
    result.duration_ms = int(deadline * 1000)
    return result


def _result(p: PlannedCheck, status: CheckStatus, detail: str, duration_ms: int = 0) -> CheckResult:
    return CheckResult(layer=p.layer, kind=p.kind, name=p.name, endpoint=p.endpoint, status=status,
                       detail=detail, duration_ms=duration_ms)


def _ms(start: float) -> int:
    return int(round((time.monotonic() - start) * 1000))
