"""The webhook (`notify.webhook_url`): one JSON POST per run that has something to say.

Standard library only. A notification that cannot be delivered is a warning for the caller to
print, never an exception: it must not fail the run it reports on. Warnings name the webhook by
scheme, host and port only; its user info, path and query (where services keep their tokens)
are never shown. User info in the URL (`https://user:password@host/...`) is sent as HTTP Basic
authentication, to the configured host only: redirects are never followed (a 3xx answer is a
failed notification), so neither the credentials nor the payload go anywhere else.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from wa_sessions import __version__

if TYPE_CHECKING:
    from urllib.request import OpenerDirector

PAYLOAD_SCHEMA = 1


def redact_url(url: str) -> str:
    """Given a webhook URL, return it without user info, path, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid webhook URL>"
    if ":" in host:
        host = f"[{host}]"
    scheme = parts.scheme or "?"
    return (
        f"{scheme}://{host}{port}/…"
        if parts.path not in ("", "/") or parts.query
        else f"{scheme}://{host}{port}"
    )


def _without_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """Given a URL, return it without `user:password@` and the Basic auth header that carries them."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, {}
    host = parts.netloc.rpartition("@")[2]
    credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
    header = {"Authorization": "Basic " + base64.b64encode(credentials).decode("ascii")}
    return urlunsplit(parts._replace(netloc=host)), header


def _refusing_redirects() -> OpenerDirector:
    """An opener that does not follow redirects: urllib would send the request again, Basic
    credentials included, to whatever host the Location names; a 3xx becomes an HTTPError."""
    import urllib.request  # already imported by send()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


def _post(url: str, body: bytes, timeout: float) -> None:
    import urllib.request  # already imported by send()

    target, auth = _without_userinfo(url)
    request = urllib.request.Request(
        target,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": f"wa-sessions/{__version__}", **auth},
    )
    with _refusing_redirects().open(request, timeout=timeout) as response:
        response.read(65536)


def _why(error: BaseException) -> str:
    import urllib.error  # already imported by send()

    if isinstance(error, urllib.error.HTTPError):
        error.close()
        if 300 <= error.code < 400:  # its Location is not shown: it may carry secrets too
            return f"HTTP {error.code} (a redirect; redirects are not followed)"
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        if isinstance(reason, TimeoutError | socket.timeout):
            return "timed out"
        return str(getattr(reason, "strerror", None) or reason)
    if isinstance(error, TimeoutError | socket.timeout):
        return "timed out"
    return getattr(error, "strerror", None) or type(error).__name__


def send(url: str, payload: Mapping[str, Any], timeout: float) -> str | None:
    """POST `payload` as JSON to `url` within `timeout` seconds in all.

    Return None when the webhook answered 2xx, else a one-line warning that does not contain the
    URL's secret parts (a 3xx is a failure: redirects are not followed). The overall deadline
    holds even against a server that trickles its answer.
    """
    where = redact_url(url)
    try:
        scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    except ValueError:  # e.g. an unclosed `[` of an IPv6 host
        return f"notification not sent: webhook {where} is not a valid URL"
    if scheme not in ("http", "https"):
        return f"notification not sent: webhook {where} is not an http(s) URL"
    # Loaded here, not at the top: most runs send no notification and should not pay for an HTTP
    # client; and before the thread starts, so the import does not eat into the deadline.
    import urllib.request  # noqa: F401  # used by _post and _why

    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    failure: list[BaseException] = []

    def deliver() -> None:
        try:
            _post(url, body, timeout)
        except BaseException as error:
            failure.append(error)

    worker = threading.Thread(target=deliver, name="wa-sessions-webhook", daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if worker.is_alive():
        return f"notification to {where} failed: timed out after {timeout:g}s"
    if failure:
        return f"notification to {where} failed: {_why(failure[0])}"
    return None
