"""Credentials never leave the process: URLs are printed, logged, raised and recorded redacted."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"
# Query parameters that carry a secret (compared lower-case, '-' read as '_').
_SECRET_PARAMS = {"key", "api_key", "apikey", "token", "access_token", "auth", "password", "secret", "sig", "signature"}
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str | None) -> str | None:
    """`url` without credentials: user:password@ becomes ***@ and secret query values become ***.

    `http://u:pw@host:8000/v1?key=abc&x=1` -> `http://***@host:8000/v1?key=***&x=1`."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if k.lower().replace("-", "_") in _SECRET_PARAMS else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Every URL inside free text (an exception message, a log line) redacted."""
    return _URL.sub(lambda m: redact_url(m.group(0)) or "", text)
