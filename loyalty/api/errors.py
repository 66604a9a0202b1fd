"""One error shape for the whole API: {"error": {"code", "message", "field"?}}."""

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from loyalty.errors import LoyaltyError

_CODES = {
    exceptions.NotAuthenticated: "unauthorized",
    exceptions.AuthenticationFailed: "unauthorized",
    exceptions.PermissionDenied: "missing_scope",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ParseError: "malformed_json",
}


def error_response(
    code: str, message: str, http_status: int, field: str | None = None, headers=None
) -> Response:
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    return Response({"error": body}, status=http_status, headers=headers)


def _first_error(detail, path=""):
    """The first (field, message) in a DRF ValidationError detail."""
    if isinstance(detail, dict):
        for name, value in detail.items():
            field = name if name != "non_field_errors" else path
            return _first_error(value, f"{path}.{field}" if path and field else field)
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], path)
    return path or None, str(detail)


def exception_handler(exc, context):
    if isinstance(exc, LoyaltyError):
        return error_response(exc.code, exc.message, exc.status, field=exc.field)
    if isinstance(exc, Http404):
        return error_response("not_found", "Not found.", status.HTTP_404_NOT_FOUND)
    if isinstance(exc, exceptions.ValidationError):
        field, message = _first_error(exc.detail)
        if field:
            message = f"{field}: {message}"
        return error_response("invalid_request", message, 400, field=field)
    if isinstance(exc, exceptions.APIException):
        headers = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait))
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        code = next((c for t, c in _CODES.items() if isinstance(exc, t)), "error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_response(code, detail, exc.status_code, headers=headers)
    return None
