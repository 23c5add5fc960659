"""Secrets out of displays and logs: URLs, webhook addresses and object-store keys.

A setting's value can carry a credential in several places: the password of a URL
(``postgresql://u:pw@h/db``), an object store's access key and secret
(``s3://KEY:SECRET@bucket/lake``), a query parameter (``?token=...``,
``?X-Amz-Signature=...``) and, for webhooks, the path itself (Slack, Teams and Discord
put the token there: ``https://hooks.slack.com/services/T0/B0/XXXX``). Everything that
prints settings or a webhook address (``metrify config``, the alert sink's retry log)
goes through these functions, so no display can forget one of them.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK: Final = "***"
#: words in a setting or query-parameter name whose value is a secret.
SECRET_WORDS: Final = (
    "password",
    "passwd",
    "secret",
    "token",
    "key",
    "signature",
    "sig",
    "credential",
    "jaas",
    "oauthbearer.config",
)
#: schemes whose URL user name is an access key id, not a harmless login name.
_KEYED_SCHEMES: Final = frozenset({"s3", "s3a", "s3n", "gs", "gcs", "az", "abfs", "abfss", "adl"})


def is_secret_name(name: str) -> bool:
    """True when a setting or parameter named ``name`` holds a secret."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def mask_url(url: str, *, hide_path: bool = False) -> str:
    """``url`` with its credentials replaced by ``***``.

    The password always; the user name too for object stores (it is the access key id);
    the value of every query parameter whose name reads like a secret; and with
    ``hide_path`` every query value and the whole path (a webhook's token). A string that
    is not a URL comes back unchanged.
    """
    if "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    # userinfo ends at the LAST "@" before the query: a secret key may itself hold "/"
    # (AWS secrets do), which would end a parser's authority early and leak its tail
    head = rest.split("?", 1)[0].split("#", 1)[0]
    if "@" in head:
        at = head.rindex("@")
        user, colon, _password = head[:at].partition(":")
        if scheme.lower() in _KEYED_SCHEMES:
            user = MASK
        rest = f"{user}{':' + MASK if colon else ''}{rest[at:]}"
    try:
        parts = urlsplit(f"{scheme}://{rest}")
    except ValueError:  # not parseable as a URL: show nothing of it rather than a secret
        return MASK
    netloc = parts.netloc
    path = parts.path
    if hide_path and path not in ("", "/"):
        path = "/" + MASK
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if hide_path or is_secret_name(k) else v) for k, v in pairs], safe="*"
        )
    fragment = MASK if parts.fragment and hide_path else parts.fragment
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def mask_webhook_url(url: str) -> str:
    """A webhook address fit for a log line: scheme and host only (path and query hidden)."""
    return mask_url(url, hide_path=True)


def mask_tree(value: Any, name: str = "") -> Any:
    """A copy of a settings tree (dicts, lists, scalars) with every secret masked.

    A value whose name reads like a secret is replaced whole; a name ending in
    ``webhook_url`` hides its path and query; every other string is masked as a URL.
    """
    if isinstance(value, dict):
        return {k: mask_tree(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_tree(v, name) for v in value]
    if not isinstance(value, str):
        return value
    lowered = name.lower()
    if lowered.endswith("webhook_url"):
        return mask_webhook_url(value)
    if is_secret_name(lowered) and not lowered.endswith(("public_key", "_url")):
        # an already masked value (pydantic shows a SecretStr as "**********") stays
        return value if not value.strip("*") else MASK
    return mask_url(value)
