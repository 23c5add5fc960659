"""``/docs`` and ``/redoc`` work without the internet: every URL the pages name is on the
server itself, the assets answer with JavaScript and CSS, and the pages' security policy
admits what they run (their inline script by hash) and nothing from elsewhere."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from support.api import Api

#: URLs in attributes and in the inline script (Swagger UI's configuration)
_ATTRIBUTE_URL = re.compile(r'\b(?:src|href|spec-url)="([^"]*)"')
_SCRIPT_URL = re.compile(r"\burl: '([^']*)'")
_INLINE = re.compile(r"<script>(.*?)</script>", re.S)
_ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_docs_pages_name_only_their_own_origin(api: Api, page: str) -> None:
    response = api.client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "//" not in re.sub(r"<!--.*?-->", "", html, flags=re.S).replace(
        "window.location.origin", ""
    ), "no absolute or protocol-relative URL"
    urls = _ATTRIBUTE_URL.findall(html) + _SCRIPT_URL.findall(html)
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    for url in urls:
        suffix = next((s for s in _ASSET_TYPES if url.endswith(s)), None)
        if suffix is None:
            continue
        asset = api.client.get(url)
        assert asset.status_code == 200, url
        assert _ASSET_TYPES[suffix] in asset.headers["content-type"], url
        assert len(asset.content) > 1000, url
    policy = response.headers["content-security-policy"]
    assert "https:" not in policy and "http:" not in policy and "*" not in policy
    assert (
        "script-src 'self'" in policy
        and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    )
    for script in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy


def test_swagger_ui_loads_its_bundle_and_styles(api: Api) -> None:
    html = api.client.get("/docs").text
    scripts = [u for u in _ATTRIBUTE_URL.findall(html) if u.endswith(".js")]
    styles = [u for u in _ATTRIBUTE_URL.findall(html) if u.endswith(".css")]
    assert len(scripts) == 1 and len(styles) == 1
    assert b"SwaggerUIBundle" in api.client.get(scripts[0]).content
    assert "'/openapi.json'" in html
    assert '"validatorUrl": null' in html  # no call to a public schema validator


def test_redoc_loads_its_bundle(api: Api) -> None:
    html = api.client.get("/redoc").text
    (script,) = [u for u in _ATTRIBUTE_URL.findall(html) if u.endswith(".js")]
    assert b"Redoc" in api.client.get(script).content
    assert 'spec-url="/openapi.json"' in html
