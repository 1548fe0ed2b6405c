"""The verification API for applications: POST /v1/verify, POST /v1/push, GET /v1/push/<id>.

Every route needs `Authorization: Bearer <api key>` (`eset2fa apikey create NAME`).
"""

from __future__ import annotations

routes: list = []
