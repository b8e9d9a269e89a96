"""CSRF protection for every POST (forms and the JSON API alike).

The token is a random value kept in the signed session cookie. A form sends it
back in the `csrf_token` field, a script in the `X-CSRF-Token` header (its value
is in the page's `<meta name="csrf-token">` and at GET /api/session). Another
site can neither read the token nor (SameSite=Lax) send our cookie along with a
cross-site POST. A present Origin header must be our own as well.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

from syndicator.web.auth import WebSession

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class CSRFError(Exception):
    """A POST without the right token; the message says what to do."""


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # older clients and curl send none; the token still decides
    # Compare host[:port] only: behind a TLS proxy the scheme we see may be http.
    host = request.headers.get("host", "").lower()
    return origin.lower().split("://", 1)[-1] == host


async def check_csrf(request: Request, sess: WebSession) -> None:
    """Raise CSRFError unless the request carries this session's token."""
    if not _same_origin(request):
        raise CSRFError("this request came from another site (Origin header); refused")
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
    if not token:
        raise CSRFError(
            "the form's security token is missing; reload the page and try again "
            f"(scripts: send the {CSRF_HEADER} header, see GET /api/session)"
        )
    if not hmac.compare_digest(token.encode(), sess.csrf.encode()):
        raise CSRFError(
            "the form's security token is out of date (you logged in or out since); "
            "reload the page and try again"
        )
