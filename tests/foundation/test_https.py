"""ralf.https: whom the Proxmox, Gitea and Semaphore clients trust, and how a failed request reads."""

from __future__ import annotations

import ssl

import httpx
import pytest

from ralf import https
from ralf.bootstrap.proxmox_api import ProxmoxApi, ProxmoxError
from ralf.errors import RalfError
from ralf.gitea.api import GiteaApi, GiteaError
from ralf.pki import CA


def test_trust_is_the_system_store_a_ca_file_or_nothing(tmp_path):
    ca = CA(tmp_path / "ca.pem", tmp_path / "ca.key")
    ca.issue(tmp_path / "leaf", "svc.test", ["127.0.0.1"])  # makes the CA's files
    assert https.trust(None, "X") is True and https.trust(True, "X") is True and https.trust(False, "X") is False
    ctx = https.trust(tmp_path / "ca.pem", "X")
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in ctx.get_ca_certs()] == [c["subject"] for c in
                                                          ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
                                                          .get_ca_certs()]


@pytest.mark.parametrize("content", [None, "not a certificate"], ids=["missing", "not-pem"])
def test_a_ca_file_that_cannot_be_used_is_one_error_naming_it_and_the_service(tmp_path, content):
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    with pytest.raises(GiteaError) as e:
        https.trust(str(path), "Gitea", GiteaError)
    assert str(e.value).startswith(f"cannot use the CA file {path} for Gitea: ")
    with pytest.raises(ProxmoxError, match=f"cannot use the CA file {path} for the Proxmox API: "):
        ProxmoxApi("https://127.0.0.1:8006/api2/json", "u@pam!t", "secret-value", verify=str(path))
    with pytest.raises(GiteaError, match=f"cannot use the CA file {path} for Gitea: "):
        GiteaApi("https://127.0.0.1:3000", "u", "pw", ca_file=str(path))


def _failing(exc: Exception) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_an_untrusted_certificate_names_the_setting_that_fixes_it():
    err = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate")
    with _failing(err) as http, pytest.raises(GiteaError) as e:
        https.request(http, "GET", "https://g.test/api/v1/x", "/x", where="Gitea at https://g.test",
                      untrusted="see mirror.ca_file", error=GiteaError)
    assert str(e.value) == "no answer from Gitea at https://g.test: its TLS certificate is not trusted (see mirror.ca_file)"


@pytest.mark.parametrize(("exc", "text"), [
    (httpx.ConnectError("[Errno 111] Connection refused"), "no answer from the API: [Errno 111] Connection refused"),
    (httpx.ConnectError(""), "no answer from the API: ConnectError"),
    (httpx.ReadTimeout("timed out"), "GET /v failed: ReadTimeout: timed out"),
])
def test_other_failures_say_where_and_what(exc, text):
    with _failing(exc) as http, pytest.raises(RalfError) as e:
        https.request(http, "GET", "https://p.test/v", "/v", where="the API", untrusted="-")
    assert str(e.value) == text


def test_an_answer_is_returned_as_it_came():
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(418, text="teapot"))) as http:
        r = https.request(http, "POST", "https://p.test/v", "/v", where="the API", untrusted="-", json={"a": 1})
    assert (r.status_code, r.text, r.request.content) == (418, "teapot", b'{"a":1}')
