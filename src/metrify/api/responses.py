"""orjson responses: several times faster than the standard library's JSON encoder."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

#: how every JSON answer is encoded: UTC times with a Z, non-string keys allowed
JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=JSON_OPTIONS)
