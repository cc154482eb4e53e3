"""Who may use the server: bind rules, the access token, DNS-rebinding and cross-site checks.

Rules (issue 13): 127.0.0.1 by default. Any other bind address needs an access token (generated
unless given, printed in the URL) and TLS (`--tls-cert/--tls-key`) or an explicit `--insecure`
(browsers give the camera only to secure contexts off localhost). A token, once given in the URL,
is kept in an HttpOnly, SameSite=Strict cookie so the page's own requests carry it.
"""
from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import secrets

from engine.errors import InputError

COOKIE = "mprt_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class AccessPolicy:
    host: str
    token: str | None           # None: no token needed (loopback without --token)
    tls: bool
    loopback_only: bool         # bound to loopback: only loopback Host headers (DNS rebinding)

    def token_ok(self, offered: str | None) -> bool:
        if self.token is None:
            return True
        return offered is not None and hmac.compare_digest(offered.encode(), self.token.encode())

    def host_ok(self, host_header: str | None) -> bool:
        if not self.loopback_only:
            return True
        if not host_header:
            return False
        name = host_header.rsplit(":", 1)[0] if not host_header.startswith("[") else host_header.split("]")[0] + "]"
        return name in LOOPBACK_NAMES


def access_policy(host: str, token: str | None, tls_cert: str | None, tls_key: str | None,
                  insecure: bool) -> AccessPolicy:
    """Checks the bind rules; generates a token where one is required and none was given."""
    if bool(tls_cert) != bool(tls_key):
        raise InputError("--tls-cert and --tls-key go together (a PEM certificate and its private key)")
    if token is not None and (len(token) < 16 or not token.isprintable() or " " in token):
        raise InputError("--token: expected at least 16 printable characters without spaces")
    loopback = is_loopback(host)
    if not loopback:
        if not tls_cert and not insecure:
            raise InputError(f"--host {host}: off localhost browsers give the camera only to https pages; give "
                             "--tls-cert CERT.pem --tls-key KEY.pem, or --insecure to serve plain http anyway")
        token = token or secrets.token_urlsafe(24)
    return AccessPolicy(host=host, token=token, tls=bool(tls_cert), loopback_only=loopback)
