"""Every v2 API call leaves one audit row: key, team, method, path, status, latency, client.

One small INSERT after the response is built; never bodies, headers or secrets."""

import logging
import time

from django.http import JsonResponse

from loyalty.models import ApiRequestLog

log = logging.getLogger(__name__)
API_PREFIX = "/api/v2/"


class ApiAuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        started = time.monotonic()
        response = self.get_response(request)
        key = getattr(request, "flash_api_key", None)
        try:
            ApiRequestLog.objects.create(
                team_id=key.team_id if key else None,
                api_key=key,
                method=request.method[:10],
                path=request.path[:300],
                status=response.status_code,
                latency_ms=int((time.monotonic() - started) * 1000),
                client_ip=request.META.get("REMOTE_ADDR") or None,
            )
        except Exception:  # an audit failure must not turn a good answer into a 500
            log.exception("could not write the API audit row")
        return response

    def process_exception(self, request, exception):
        if request.path.startswith(API_PREFIX):
            log.exception("unhandled error in %s %s", request.method, request.path)
            return JsonResponse(
                {"error": {"code": "server_error", "message": "Something went wrong on our side."}},
                status=500,
            )
        return None
