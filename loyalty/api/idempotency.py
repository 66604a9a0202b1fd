"""Idempotency-Key: the first answer to a request is stored and replayed to its retries."""

import hashlib
import json
import re

from django.db import IntegrityError, transaction
from rest_framework.response import Response

from loyalty import errors
from loyalty.models import ApiIdempotencyRecord

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[!-~]([ -~]{0,198}[!-~])?$")  # printable ASCII, no edge spaces


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotency_key(request) -> str | None:
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if not KEY_PATTERN.match(value):
        raise errors.InvalidInput(
            f"{HEADER} must be 1 to 200 printable ASCII characters.", field=HEADER
        )
    return value


def run_idempotent(request, handler) -> Response:
    """Call ``handler(key)`` at most once per (API key, Idempotency-Key).

    The record is inserted first, in the same transaction as the work: a concurrent retry's
    insert waits on the unique index until this one commits, then replays its answer.
    """
    key = idempotency_key(request)
    if key is None:
        return handler(None)
    fingerprint = _fingerprint(request)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = ApiIdempotencyRecord.objects.create(
                    api_key=request.auth, key=key, request_hash=fingerprint
                )
        except IntegrityError:
            record = ApiIdempotencyRecord.objects.get(api_key=request.auth, key=key)
            if record.request_hash != fingerprint:
                raise errors.IdempotencyConflict(
                    f"This {HEADER} was used for a different request."
                ) from None
            return Response(
                record.response, status=record.status, headers={"Idempotent-Replayed": "true"}
            )
        response = handler(key)
        record.status, record.response = response.status_code, response.data
        record.save(update_fields=["status", "response"])
        return response
