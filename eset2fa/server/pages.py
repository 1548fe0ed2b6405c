"""The phone pages: one-time enrollment links (`/e/<token>`) and push answers with number matching
(`/p/<request id>?t=<token>`).

Each page is a Starlette route in `routes`, rendered from a template in `templates/` that extends
`base.html` with `context.render(request, "name.html", {...})` (autoescaped, with the strict
Content-Security-Policy). Built on top of the server skeleton; empty until then.
"""

from __future__ import annotations

routes: list = []
