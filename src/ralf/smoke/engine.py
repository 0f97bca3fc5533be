"""The smoke engine: all services of a target at once, each one's layers in order.

Per service, layers run in the runbook's triage order; the checks of one layer run together.
The first layer with a failing check is the diagnosis and the layers after it are SKIPPED.
Layers that need the exec transport when none is configured are NOT CHECKED and do not stop the
run. Within the public-endpoint layer, connect checks run first: when a TCP connect to a host and
port fails, the HTTP checks on that same host and port are skipped instead of retrying for their
whole deadline, so a dead service is reported within one connect timeout.

Every service of the target runs at once (up to ``MAX_CONCURRENCY`` threads: checks wait on the network,
not the CPU), so 200 services take about as long as the slowest one. With a ``deadline`` for the whole
target, a service still unfinished then (an endpoint that accepts and never answers) is reported FAIL at
the layer it was in and the report is returned: it never holds the others' results.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from ralf.smoke.checks import Context, Outcome, run_check
from ralf.smoke.layers import ENDPOINT, LAYERS, PlannedCheck, plan_service
from ralf.smoke.results import FAIL, NOT_CHECKED, SKIPPED, CheckResult, CheckStatus, ServiceResult, SmokeReport

OnCheck = Callable[[str, CheckResult], None]

# Services checked at once when not told: all of the target's, up to this many threads (I/O-bound).
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
    ``on_check(service, result)`` is called from worker threads as each check finishes.
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
    serial = concurrency == 1  # asked for: one by one, in this thread (the original's way)
    concurrency = concurrency or min(MAX_CONCURRENCY, max(1, len(tgt.services)))
    transport = transport if transport is not None else transport_for(platform)
    start = time.monotonic()
    progress: dict[str, tuple[ServiceResult, str]] = {}  # each service's result so far and its layer now
    closed = False  # after the deadline, checks that still finish report to no one

    def report(name: str, r: CheckResult) -> None:
        if on_check is not None and not closed:
            on_check(name, r)

    def one(name: str) -> ServiceResult:
        return smoke_service(name, platform, transport, serial=serial, on_check=report,
                             retry_interval=retry_interval, partial=progress)

    # On a local LXC node the checks run inside its network namespace (threads started here inherit it).
    from ralf.backends.lxc.node import platform_network

    with platform_network(platform):
        if serial and deadline is None:
            services = [one(n) for n in tgt.services]
        else:
            pool = ThreadPoolExecutor(max_workers=min(concurrency, len(tgt.services)), thread_name_prefix="smoke")
            try:
                futures = [pool.submit(one, n) for n in tgt.services]
                end = None if deadline is None else start + deadline
                # Short waits keep the main thread responsive: a KeyboardInterrupt (Ctrl-C, or a deploy
                # deadline's interrupt_main, which cannot wake a blocked wait) surfaces within 0.2 s.
                while wait(futures, timeout=0.2 if end is None else max(0.0, min(0.2, end - time.monotonic()))
                           ).not_done:
                    if end is not None and time.monotonic() >= end:
                        break
                services = [f.result() if f.done() or deadline is None
                            else _overdue(n, platform, progress, deadline, report)
                            for n, f in zip(tgt.services, futures, strict=True)]
                closed = True
            finally:
                # On an interruption, return at once; checks already running end on their own timeouts
                # instead of holding the caller until every deadline has passed.
                pool.shutdown(wait=False, cancel_futures=True)
    return SmokeReport(
        target=target,
        services=services,
        duration_ms=_ms(start),
        transport=transport.kind,
    )


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


def smoke_service(name: str, platform, transport, *, serial: bool = False, on_check: OnCheck | None = None,
                  retry_interval: float = 1.0, partial: dict | None = None) -> ServiceResult:
    """One service, layer by layer; stops at the first failing layer and skips the rest. ``partial`` gets
    the result object at once, so that what is done is known if the service is abandoned at a deadline."""
    service = platform.services[name]
    start = time.monotonic()
    result = ServiceResult(name=name, group=service.group)

    ctx = Context(service=service, platform=platform, transport=transport, retry_interval=retry_interval)
    planned = plan_service(name, service, platform, transport)

    def notify(r: CheckResult) -> CheckResult:
        if on_check is not None:
            on_check(name, r)
        return r

    failed: CheckResult | None = None
    for layer in LAYERS:
        batch = [p for p in planned if p.layer == layer]
        if not batch:
            continue
        if partial is not None:
            partial[name] = (result, layer)
        if failed is not None:
            for p in batch:
                result.checks.append(notify(_result(p, SKIPPED, f"not run: {failed.layer} failed")))
            continue
        result.checks += _run_layer(batch, ctx, transport, serial, notify)
        failed = next((r for r in result.checks if r.layer == layer and r.status == FAIL), None)
        if failed is not None:
            result.failed_layer = layer
            result.diagnosis = f"{name}: FAIL at {layer} — {failed.detail}"
    result.duration_ms = _ms(start)
    return result


def _run_layer(batch: list[PlannedCheck], ctx: Context, transport, serial: bool, notify) -> list[CheckResult]:
    """The layer's results in declaration order."""
    why_not = transport.unavailable(ctx.service) if any(p.needs_transport for p in batch) else None
    done: dict[int, CheckResult] = {}
    ready = []
    for i, p in enumerate(batch):
        if p.needs_transport and why_not:
            done[i] = notify(_result(p, NOT_CHECKED, why_not))
        else:
            ready.append(i)
    if batch[0].layer == ENDPOINT:
        connects = [i for i in ready if batch[i].kind == "tcp"]
        done.update(_run_all(batch, connects, ctx, serial, notify))
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
        done.update(_run_all(batch, rest, ctx, serial, notify))
    else:
        done.update(_run_all(batch, ready, ctx, serial, notify))
    return [done[i] for i in range(len(batch))]


def _run_all(batch: list[PlannedCheck], indices: list[int], ctx: Context, serial: bool,
             notify) -> dict[int, CheckResult]:
    if serial or len(indices) <= 1:
        return {i: notify(_timed(batch[i], ctx)) for i in indices}
    with ThreadPoolExecutor(max_workers=len(indices)) as pool:
        return dict(zip(indices, pool.map(lambda i: notify(_timed(batch[i], ctx)), indices), strict=True))


def _timed(p: PlannedCheck, ctx: Context) -> CheckResult:
    start = time.monotonic()
    outcome: Outcome = run_check(p, ctx)
    r = _result(p, outcome.status, outcome.detail, _ms(start))
    r.cert_days_left = outcome.cert_days_left
    return r


def _result(p: PlannedCheck, status: CheckStatus, detail: str, duration_ms: int = 0) -> CheckResult:
    return CheckResult(layer=p.layer, kind=p.kind, name=p.name, endpoint=p.endpoint, status=status,
                       detail=detail, duration_ms=duration_ms)


def _ms(start: float) -> int:
    return int(round((time.monotonic() - start) * 1000))
