"""Request id and the health check, the two outermost middlewares, and WhiteNoise for the
static files (see MIDDLEWARE)."""

from __future__ import annotations

import os
import re
import uuid

from whitenoise.middleware import WhiteNoiseMiddleware

from . import health, logs

# An id a proxy or a client sent is kept when it is a plain token; anything else (too long,
# spaces, an address, markup) is replaced, so a header cannot inject into the logs.
_SANE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
HEADER = "X-Request-ID"


def request_id_for(incoming: str | None) -> str:
    if incoming and _SANE_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Takes the caller's X-Request-ID (a load balancer's or a client's) or makes one, puts it
    on every log line of the request and answers with it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = request_id_for(request.headers.get(HEADER))
        request.request_id = rid
        token = logs.request_id.set(rid)
        try:
            response = self.get_response(request)
        finally:
            logs.request_id.reset(token)
        response[HEADER] = rid
        return response


class HealthCheckMiddleware:
    """Answers GET/HEAD /healthz before anything else runs: no host validation (load balancers
    call by IP address, which ALLOWED_HOSTS rightly does not list), no HTTPS redirect (they
    call the instance over plain HTTP), no session, no authentication."""

    PATHS = ("/healthz", "/healthz/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info in self.PATHS and request.method in ("GET", "HEAD"):
            return health.healthz(request)
        return self.get_response(request)


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise serving collectstatic's files from gunicorn, minus its warning in every
    process where STATIC_ROOT was never collected (tests, benchmarks): flash.storage says that
    once, where a page needs a static file."""

    def add_files(self, root, prefix=None):
        if root == self.static_root and not os.path.isdir(root):
            return
        super().add_files(root, prefix)
