"""Rendering a :class:`SmokeReport`: human lines in the original's spirit, and JUnit XML for CI.

    [smoke] OK https vaultwarden-nginx https://10.10.40.20/ 41 ms
    [smoke] FAIL tls n8n-tls 10.10.40.30:443 12 ms — certificate expired 3 days ago
    [smoke] n8n: FAIL at nginx/TLS — certificate expired 3 days ago
    [smoke] Done (automation): 1 service — 0 OK, 0 WARN, 1 FAIL in 0.1 s

JSON is ``SmokeReport.to_dict()``.
"""

from __future__ import annotations

from ralf.smoke.results import FAIL, NOT_CHECKED, OK, SKIPPED, WARN, CheckResult, ServiceResult, SmokeReport


def check_line(c: CheckResult) -> str:
    line = f"[smoke] {c.status} {c.kind} {c.name} {c.endpoint}"
    if c.status not in (SKIPPED, NOT_CHECKED):
        line += f" {c.duration_ms} ms"
    if c.status != OK or c.kind == "tls":
        line += f" — {c.detail}"
    elif "insecure" in c.detail:
        line += " (insecure)"
    return line


def service_line(s: ServiceResult) -> str:
    if s.status == FAIL and s.diagnosis:
        skipped = sum(c.status == SKIPPED for c in s.checks)
        return f"[smoke] {s.diagnosis}" + (f" ({skipped} later checks skipped)" if skipped else "")
    checked = [c for c in s.checks if c.status not in (SKIPPED, NOT_CHECKED)]
    parts = [f"{len(checked)} check{'s' if len(checked) != 1 else ''}"]
    if s.cert_days_left is not None:
        parts.append(f"certificate {s.cert_days_left} days left")
    warns = [c for c in s.checks if c.status == WARN]
    if warns:
        parts.append("WARN: " + "; ".join(f"{c.name} {c.detail}" for c in warns))
    nc = s.not_checked
    if nc:
        parts.append(f"{len(nc)} not checked ({nc[0].detail})")
    return f"[smoke] {s.name}: {s.status} — {', '.join(parts)}"


def summary_line(r: SmokeReport) -> str:
    c = r.counts()
    n = len(r.services)
    return (
        f"[smoke] Done ({r.target}): {n} service{'s' if n != 1 else ''} — "
        f"{c[OK]} OK, {c[WARN]} WARN, {c[FAIL]} FAIL in {r.duration_ms / 1000:.1f} s"
    )


def human_lines(r: SmokeReport) -> list[str]:
    """Per service its check lines and its summary, then every failing service again, then the total."""
    out: list[str] = []
    for s in r.services:
        out += [check_line(c) for c in s.checks]
        out.append(service_line(s))
    failed = r.failed
    if len(failed) > 1:
        out.append(f"[smoke] {len(failed)} services failed:")
        out += [f"[smoke]   {s.diagnosis}" for s in failed]
    out.append(summary_line(r))
    return out


def junit_xml(r: SmokeReport) -> str:
    """One testsuite per service, one testcase per check; WARN passes with a note in system-out."""
    import xml.etree.ElementTree as ET

    def count(checks, *statuses) -> str:
        return str(sum(c.status in statuses for c in checks))

    all_checks = [c for s in r.services for c in s.checks]
    root = ET.Element("testsuites", name=f"ralf smoke {r.target}", tests=str(len(all_checks)),
                      failures=count(all_checks, FAIL), skipped=count(all_checks, SKIPPED, NOT_CHECKED),
                      time=f"{r.duration_ms / 1000:.3f}")
    for s in r.services:
        suite = ET.SubElement(root, "testsuite", name=s.name, tests=str(len(s.checks)),
                              failures=count(s.checks, FAIL), errors="0",
                              skipped=count(s.checks, SKIPPED, NOT_CHECKED), time=f"{s.duration_ms / 1000:.3f}")
        for c in s.checks:
            case = ET.SubElement(suite, "testcase", classname=f"smoke.{s.name}.{c.layer.replace(' ', '_')}",
                                 name=f"{c.kind} {c.name}", time=f"{c.duration_ms / 1000:.3f}")
            if c.status == FAIL:
                ET.SubElement(case, "failure", message=c.detail, type=c.kind).text = f"{c.endpoint}: {c.detail}"
            elif c.status in (SKIPPED, NOT_CHECKED):
                ET.SubElement(case, "skipped", message=f"{c.status}: {c.detail}")
            elif c.status == WARN:
                ET.SubElement(case, "system-out").text = f"WARN: {c.detail}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
