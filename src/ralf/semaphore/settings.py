"""Connection settings for Semaphore: the platform file's ``semaphore`` section plus the environment.

Precedence, first match wins:

- URL: ``$SEMAPHORE_URL``, else ``semaphore.url``; ``http://`` (the token in clear text) is refused unless
  the server is on this machine (loopback) or ``$SEMAPHORE_ALLOW_HTTP=1`` says so;
- CA file: ``$SEMAPHORE_CA_FILE``, else ``semaphore.ca_file`` (relative to the platform file), else the
  platform's own CA (``<secrets>/ca/ca.pem``) when it exists; TLS is
  always verified (system trust store when no CA file is given);
- credentials: ``$SEMAPHORE_TOKEN``; else ``$SEMAPHORE_USER`` + ``$SEMAPHORE_PASSWORD``; else
  ``SEMAPHORE_ADMIN_NAME`` / ``SEMAPHORE_ADMIN_PASSWORD`` from ``semaphore.credentials_file`` in the
  secrets directory (a user and password are only used to mint an API token).

Secrets are held here only to hand them to the client; ``repr`` and ``describe`` never show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ralf.errors import SecretError, UsageError
from ralf.model import Platform
from ralf.secrets import read_env_file
from ralf.semaphore.client import SemaphoreClient


@dataclass(frozen=True)
class SemaphoreSettings:
    url: str
    ca_file: str | None = None
    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    source: str = ""  # where the credentials came from, for messages

    def describe(self) -> str:
        how = "API token" if self.token else f"user {self.user!r}"
        return f"{self.url} ({how} from {self.source})"


def settings_from_platform(platform: Platform, environ: Mapping[str, str] | None = None) -> SemaphoreSettings:
    from ralf import log, settings

    def env(name: str) -> str | None:
        return settings.get(name, environ)

    sem = platform.semaphore
    url = env("SEMAPHORE_URL") or (sem.url if sem else None)
    if not url:
        raise UsageError("no Semaphore server: the platform file has no semaphore section and SEMAPHORE_URL is unset")
    url = checked_url(url, "SEMAPHORE_URL" if env("SEMAPHORE_URL") else "semaphore.url",
                      allow_http=(env("SEMAPHORE_ALLOW_HTTP") or "") in ("1", "yes", "true"))
    ca = env("SEMAPHORE_CA_FILE") or (str(platform.resolve_path(sem.ca_file)) if sem and sem.ca_file else None)
    if ca is None:
        from ralf.smoke.checks import ca_file_of

        ca = ca_file_of(platform, None)  # Semaphore's nginx serves a certificate from the platform's own CA
    if ca and not Path(ca).is_file():
        raise UsageError(f"the Semaphore CA file {ca} does not exist")
    token, user, password = env("SEMAPHORE_TOKEN"), env("SEMAPHORE_USER"), env("SEMAPHORE_PASSWORD")
    if token:
        return SemaphoreSettings(url, ca, token=token, source="SEMAPHORE_TOKEN")
    if user or password:
        if not (user and password):
            raise UsageError("set both SEMAPHORE_USER and SEMAPHORE_PASSWORD (or SEMAPHORE_TOKEN)")
        return SemaphoreSettings(url, ca, user=user, password=password, source="SEMAPHORE_USER/SEMAPHORE_PASSWORD")
    cred_name = sem.credentials_file if sem else "semaphore.env"
    path = platform.secrets_path / cred_name
    if not path.is_file():
        raise SecretError(
            f"no Semaphore credentials: set SEMAPHORE_TOKEN (or SEMAPHORE_USER and SEMAPHORE_PASSWORD), "
            f"or create {path} with SEMAPHORE_ADMIN_NAME and SEMAPHORE_ADMIN_PASSWORD"
        )
    values = read_env_file(path)
    missing = [k for k in ("SEMAPHORE_ADMIN_NAME", "SEMAPHORE_ADMIN_PASSWORD") if not values.get(k)]
    if missing:
        raise SecretError(f"{path} lacks {' and '.join(missing)}")
    log.redact(values["SEMAPHORE_ADMIN_PASSWORD"])
    return SemaphoreSettings(url, ca, user=values["SEMAPHORE_ADMIN_NAME"], password=values["SEMAPHORE_ADMIN_PASSWORD"],
                             source=str(path))


def checked_url(url: str, source: str, *, allow_http: bool) -> str:
    """The Semaphore URL, or one clear error: malformed, or plain http:// to another machine."""
    import ipaddress
    from urllib.parse import urlsplit

    from ralf import values

    try:
        values.url(url)
    except ValueError as e:
        raise UsageError(f"{source}: {e}") from None
    parts = urlsplit(url)
    if parts.scheme == "http" and not allow_http:
        host = parts.hostname or ""
        try:
            local = ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = host == "localhost"
        if not local:
            raise UsageError(f"{source} is {url}: plain http:// would send the Semaphore token unencrypted; "
                             "use https:// (with semaphore.ca_file for an internal CA), or set "
                             "SEMAPHORE_ALLOW_HTTP=1 to accept that")
    return url


def client_from_settings(settings: SemaphoreSettings, **kwargs) -> SemaphoreClient:
    return SemaphoreClient(settings.url, token=settings.token, user=settings.user, password=settings.password,
                           ca_file=settings.ca_file, **kwargs)


def client_from_platform(platform: Platform, environ: Mapping[str, str] | None = None, **kwargs) -> SemaphoreClient:
    """A client for the platform's Semaphore server (see the module docstring for precedence)."""
    return client_from_settings(settings_from_platform(platform, environ), **kwargs)
