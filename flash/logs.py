"""Logs an operator can ship and search: one JSON object per line, with the request's id (or
the Celery task's) on every line, and nothing a log must not carry.

- ``request_id`` / ``task_id`` live in context variables: ``flash.middleware`` sets the first
  for a web request, ``flash.celery`` the second while a task runs; ``ContextFilter`` copies
  them onto each record.
- ``JsonFormatter`` (``LOG_FORMAT=json``, the default with DEBUG off) writes
  ``{"time", "level", "logger", "message", "request_id", "task_id", "exception"?}``.
- ``RedactingFormatter`` is the plain-text format (DEBUG, the demo).
- Both pass every message and traceback through ``redact``: values of secret-looking keys
  (password, secret, token, authorization, api key, postal code, e-mail), bearer tokens, our
  own key and secret formats, and anything shaped like an e-mail address are masked. The code
  already avoids logging such things; this is the net under it. Redaction happens in the
  formatter, on the rendered line, so the record itself is left as it was.
- ``GunicornLogger`` gives gunicorn's own error and access lines the same format.
"""

from __future__ import annotations

import json
import logging
import os
import re
from contextvars import ContextVar
from datetime import UTC, datetime

from gunicorn import glogging

request_id: ContextVar[str | None] = ContextVar("flash_request_id", default=None)
task_id: ContextVar[str | None] = ContextVar("flash_task_id", default=None)

MASK = "[redacted]"
EMAIL_MASK = "[email]"

_SENSITIVE_KEY = (
    r"pass(?:word|wd|phrase)?|secret|client[_-]?secret|app[_-]?secret|token|access[_-]?token"
    r"|refresh[_-]?token|api[_-]?key|authorization|cookie|session[_-]?id|csrf[_-]?token"
    r"|postal(?:[_ -]?code)?|zip(?:[_ -]?code)?|e-?mail(?:[_-]?address)?"
)
_PATTERNS = [
    # key=value, key: value, "key": "value", 'key': 'value' (also in JSON and query strings)
    re.compile(
        rf"""(?ix)
        (?P<key>["']?\b[\w-]*(?:{_SENSITIVE_KEY})\b["']?)
        (?P<sep>\s*[:=]\s*)
        (?P<value>"[^"]*"|'[^']*'|(?:bearer|basic|token)\s+\S+|[^\s,;&)}}\]]+)
        """
    ),
    # "postal code 90210" / "zip 10018" in prose: a code after the words, no separator
    re.compile(
        r"(?i)(?P<key>\b(?:postal|zip)(?:[ _-]?code)?)(?P<sep>\s+)"
        r"(?P<value>[A-Z0-9][A-Z0-9 -]{1,9}\d\b)"
    ),
]
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
# Our own and the platforms' credential formats, wherever they appear.
_TOKENS = re.compile(
    r"\b(?:fl_live_|fl_test_|whsec_|shpat_|shpss_|shpca_|Atzr\|)[A-Za-z0-9_|=.-]{6,}"
)
# An address ends in a name, not a number: "redis://:**@127.0.0.1:6379" stays readable.
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")


def _mask_value(match: re.Match) -> str:
    value = match.group("value")
    quote = value[0] if value[:1] in "\"'" else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{MASK}{quote}"


def redact(text: str) -> str:
    """``text`` with secrets, postal codes and e-mail addresses masked."""
    if not text:
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(_mask_value, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _TOKENS.sub(MASK, text)
    return _EMAIL.sub(EMAIL_MASK, text)


class ContextFilter(logging.Filter):
    """Puts the current request id and task id on every record (None outside of either)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        if getattr(record, "task_id", None) is None:
            record.task_id = task_id.get()
        return True


class RedactingFormatter(logging.Formatter):
    """The plain-text format, redacted. ``%(request_id)s`` needs ``ContextFilter``."""

    def format(self, record: logging.LogRecord) -> str:
        # A copy: another handler (JSON) may read the same record and wants null, not "-".
        record = logging.makeLogRecord(record.__dict__)
        for name in ("request_id", "task_id"):
            if getattr(record, name, None) is None:
                setattr(record, name, "-")
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; every string in it redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
            "task_id": getattr(record, "task_id", None) or task_id.get(),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class GunicornLogger(glogging.Logger):
    """gunicorn's error and access logs in the project's format (``--logger-class``).

    An access line names the method, the path without its query string (a search box's query
    may hold an address), the status, the time taken and the request id the app answered with.
    """

    def setup(self, cfg):
        super().setup(cfg)
        json_lines = _log_format() == "json"
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if json_lines:
                    handler.setFormatter(JsonFormatter())
                else:
                    handler.setFormatter(RedactingFormatter(handler.formatter._fmt))
                handler.addFilter(ContextFilter())

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        headers = dict((k.lower(), v) for k, v in resp.headers)
        status = str(resp.status).split(None, 1)[0]
        ms = request_time.seconds * 1000 + request_time.microseconds // 1000
        self.access_log.info(
            "%s %s %s %sms",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
            status,
            ms,
            extra={"request_id": headers.get("x-request-id")},
        )


def _log_format() -> str:
    """The project's LOG_FORMAT, read through its settings (which also read .env); gunicorn's
    master has not loaded the app yet."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flash.settings")
    try:
        from django.conf import settings

        return settings.LOG_FORMAT
    except Exception:  # settings that cannot load stop the workers with a clearer message
        return "json"
