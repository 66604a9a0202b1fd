"""Running for real: /healthz, request ids and JSON logs with redaction, e-mail from EMAIL_URL,
every task on a queue of its kind, `make run`'s preflight and `check --deploy` with a full set
of production values. (The whole platform as processes: tests/test_smoke_production.py.)"""

import io
import json
import logging
import os
import runpy
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path
from unittest import mock

import pytest
from celery.signals import task_postrun, task_prerun
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.http import HttpResponse
from django.test import RequestFactory

from flash import health, logs
from flash import tasks as flash_tasks
from flash.celery import app as celery_app
from flash.middleware import RequestIdMiddleware

ROOT = Path(__file__).resolve().parent.parent
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1
VAULT_KEYS = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


# --- /healthz ----------------------------------------------------------------------------


@pytest.fixture
def heartbeat_key(monkeypatch):
    """A heartbeat key of this test's own: parallel runs may share the cache's Redis."""
    key = f"test:beat-heartbeat:{uuid.uuid4().hex}"
    monkeypatch.setattr(health, "HEARTBEAT_KEY", key)
    yield key
    cache.delete(key)


@pytest.fixture
def production_parts(settings, heartbeat_key):
    """Redis and a broker configured (both the local Redis), beat's heartbeat fresh."""
    settings.REDIS_URL = REDIS
    settings.CELERY_BROKER_URL = REDIS
    flash_tasks.beat_heartbeat.apply()  # what a sync worker does when beat sends it
    return settings


def healthz(client, **extra):
    response = client.get("/healthz", **extra)
    assert response["Content-Type"] == "application/json"
    return response, response.json()


@pytest.mark.django_db
def test_healthz_is_200_when_every_part_answers(client, production_parts):
    response, body = healthz(client)
    assert response.status_code == 200, body
    assert body["status"] == "ok" and body["failing"] == []
    checks = body["checks"]
    assert {name: c["status"] for name, c in checks.items()} == {
        "database": "ok",
        "redis": "ok",
        "broker": "ok",
        "beat": "ok",
    }
    assert 0 <= checks["beat"]["age_s"] < 60
    assert "no-store" in response["Cache-Control"]
    # Nothing about where the parts live, and no session for a load balancer's calls.
    text = response.content.decode()
    assert "redis://" not in text and "127.0.0.1" not in text and "postgres" not in text
    assert not response.cookies


@pytest.mark.django_db
def test_healthz_without_redis_or_broker_says_so_and_is_healthy(client, settings):
    settings.REDIS_URL = ""
    settings.CELERY_BROKER_URL = ""
    response, body = healthz(client)
    assert response.status_code == 200
    assert {n: c["status"] for n, c in body["checks"].items()} == {
        "database": "ok",
        "redis": "not configured",
        "broker": "eager",
        "beat": "not configured",
    }


@pytest.mark.django_db
def test_healthz_is_503_naming_the_database_when_it_is_down(client, production_parts):
    with mock.patch.object(connection, "cursor", side_effect=OperationalError("db host down")):
        response, body = healthz(client)
    assert response.status_code == 503
    assert body["status"] == "fail" and body["failing"] == ["database"]
    assert body["checks"]["database"] == {
        "status": "fail",
        "error": "OperationalError",
        "ms": body["checks"]["database"]["ms"],
    }
    assert "db host down" not in response.content.decode()  # the type, never the message


@pytest.mark.django_db
def test_healthz_is_503_naming_redis_when_it_is_unreachable(client, production_parts):
    production_parts.REDIS_URL = UNREACHABLE
    response, body = healthz(client)
    assert response.status_code == 503
    assert "redis" in body["failing"] and body["checks"]["redis"]["status"] == "fail"
    assert body["checks"]["database"]["status"] == "ok"
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db
def test_healthz_is_503_naming_the_broker_when_it_is_unreachable(client, production_parts):
    production_parts.CELERY_BROKER_URL = UNREACHABLE
    response, body = healthz(client)
    assert response.status_code == 503
    assert body["failing"] == ["broker"]


@pytest.mark.django_db
def test_healthz_is_503_when_beats_heartbeat_is_stale_or_missing(
    client, production_parts, heartbeat_key
):
    cache.set(heartbeat_key, time.time() - 3600, timeout=None)
    response, body = healthz(client)
    assert response.status_code == 503
    assert body["failing"] == ["beat"]
    assert body["checks"]["beat"]["status"] == "stale"
    assert body["checks"]["beat"]["age_s"] >= 3600

    cache.delete(heartbeat_key)  # beat never ran
    response, body = healthz(client)
    assert response.status_code == 503 and body["failing"] == ["beat"]

    flash_tasks.beat_heartbeat.apply()
    assert healthz(client)[0].status_code == 200


@pytest.mark.django_db
def test_healthz_only_runs_the_checks_asked_for(client, production_parts, heartbeat_key):
    cache.delete(heartbeat_key)  # beat is down …
    response, body = healthz(client, QUERY_STRING="only=database,redis")
    assert response.status_code == 200  # … which a load balancer may choose not to care about
    assert set(body["checks"]) == {"database", "redis"}
    assert client.get("/healthz?only=nonsense").status_code == 400


@pytest.mark.django_db
def test_healthz_answers_a_load_balancer_calling_by_ip_over_plain_http(client, settings):
    settings.ALLOWED_HOSTS = ["loyalty.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.CELERY_BROKER_URL = ""
    response = client.get("/healthz", HTTP_HOST="10.0.3.17:8000")
    assert response.status_code == 200  # not 400 (host), not 301 (https)
    assert response["X-Request-ID"]
    # Every other page still validates the host.
    assert client.get("/console/", HTTP_HOST="10.0.3.17:8000").status_code == 400


# --- request ids -------------------------------------------------------------------------


@pytest.fixture
def json_log():
    """A logger writing through the project's JSON formatter and context filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    logger = logging.getLogger(f"test.production.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False

    def lines():
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    logger.lines = lines
    return logger


def test_request_id_is_made_echoed_and_on_every_log_line_of_the_request(json_log):
    seen = {}

    def view(request):
        json_log.info("awarding points")
        seen["id"] = request.request_id
        return HttpResponse("ok")

    middleware = RequestIdMiddleware(view)
    response = middleware(RequestFactory().get("/api/v2/stores"))
    made = response["X-Request-ID"]
    assert len(made) == 32 and made == seen["id"]

    response = middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="lb-7f3a.42:1"))
    assert response["X-Request-ID"] == "lb-7f3a.42:1"

    json_log.info("between requests")
    first, second, outside = json_log.lines()
    assert first["request_id"] == made and first["message"] == "awarding points"
    assert second["request_id"] == "lb-7f3a.42:1"
    assert outside["request_id"] is None


@pytest.mark.parametrize(
    "incoming", ["a b", "<script>", "x" * 200, "maya@example.com", "id\nforged line", ""]
)
def test_an_unsafe_incoming_request_id_is_replaced(incoming):
    middleware = RequestIdMiddleware(lambda request: HttpResponse("ok"))
    response = middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID=incoming))
    assert response["X-Request-ID"] != incoming and len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_a_real_response_carries_the_request_id(client):
    response = client.get("/admin/login/", HTTP_X_REQUEST_ID="req-1234")
    assert response["X-Request-ID"] == "req-1234"


def test_a_task_logs_with_its_task_id(json_log):
    """flash/celery.py's signal handlers around a task run, as a worker sends them."""
    task_prerun.send(sender=None, task_id="5c1e-task", task=None)
    json_log.info("verifying a claim")
    task_postrun.send(sender=None, task_id="5c1e-task", task=None)
    json_log.info("idle")
    during, after = json_log.lines()
    assert during["task_id"] == "5c1e-task" and after["task_id"] is None


# --- JSON logs and redaction -------------------------------------------------------------


def test_the_json_formatter_writes_one_valid_object_per_line(json_log):
    json_log.warning("first line\nsecond line")
    try:
        raise ValueError("boom")
    except ValueError:
        json_log.exception("it failed")
    lines = json_log.lines()
    assert len(lines) == 2  # a newline in a message stays inside its JSON string
    line = lines[0]
    assert set(line) == {"time", "level", "logger", "message", "request_id", "task_id"}
    assert line["level"] == "WARNING" and line["message"] == "first line\nsecond line"
    assert line["time"].endswith("+00:00")
    assert "ValueError: boom" in lines[1]["exception"]


def test_the_projects_console_handler_uses_the_redacting_formatters():
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    assert isinstance(handler.formatter, logs.JsonFormatter | logs.RedactingFormatter)
    assert any(isinstance(f, logs.ContextFilter) for f in handler.filters)


SENSITIVE = {
    "email": "maya.lopez@example.com",
    "postal": "90210",
    "token": "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",
    "api_key": "fl_live_8Hq2kLm0Zt5",
    "password": "hunter2-correct-horse",
    "secret": "s3cr3t-value",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.payload.sig",
}


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_no_email_postal_code_token_or_password_reaches_a_log_line(fmt):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logs.JsonFormatter()
        if fmt == "json"
        else logs.RedactingFormatter("%(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    handler.addFilter(logs.ContextFilter())
    logger = logging.getLogger(f"test.redact.{fmt}")
    logger.addHandler(handler)
    logger.propagate = False
    s = SENSITIVE
    logger.warning("claim by %s, postal code %s", s["email"], s["postal"])
    logger.warning("config {'postal_code': '%s', 'access_token': '%s'}", s["postal"], s["token"])
    logger.warning("key %s used", s["api_key"])
    logger.warning("login password=%s secret: %s", s["password"], s["secret"])
    logger.warning("headers {'Authorization': 'Bearer %s'}", s["bearer"])
    logger.warning('{"email": "%s", "zip": "%s"}', s["email"], s["postal"])
    try:
        raise RuntimeError(f"SMTP refused {s['email']}")
    except RuntimeError:
        logger.exception("send failed")
    out = stream.getvalue()
    for value in SENSITIVE.values():
        assert value not in out, (value, out)
    assert "[email]" in out and "[redacted]" in out
    # What an operator needs stays readable.
    assert "send failed" in out and "claim by" in out


def test_redaction_leaves_ordinary_lines_alone():
    line = "token refresh failed for ch_8Kq: TemporaryError; key=amazon-order:114-3941689-8772232"
    assert logs.redact(line) == line
    assert logs.redact("Connected to redis://:**@127.0.0.1:6379/1") == (
        "Connected to redis://:**@127.0.0.1:6379/1"
    )


# --- settings from the environment -------------------------------------------------------


def settings_with(monkeypatch, **env) -> dict:
    """flash/settings.py evaluated afresh with these environment values (None = unset)."""
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    return runpy.run_path(str(ROOT / "flash" / "settings.py"), run_name="flash_settings_probe")


def test_an_smtp_email_url_configures_the_smtp_backend(monkeypatch):
    s = settings_with(
        monkeypatch,
        DEBUG="0",
        EMAIL_URL="smtp+tls://mailer%40brand.example:p%40ss%2Fw0rd@smtp.example.com:587",
        EMAIL_BACKEND=None,
    )
    assert s["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (s["EMAIL_HOST"], s["EMAIL_PORT"]) == ("smtp.example.com", 587)
    assert (s["EMAIL_HOST_USER"], s["EMAIL_HOST_PASSWORD"]) == ("mailer@brand.example", "p@ss/w0rd")
    assert s["EMAIL_USE_TLS"] is True and not s.get("EMAIL_USE_SSL")

    s = settings_with(monkeypatch, EMAIL_URL="smtp+ssl://u:p@smtp.example.com:465")
    assert s["EMAIL_USE_SSL"] is True and s["EMAIL_PORT"] == 465


def test_without_email_url_the_demo_prints_mail_and_production_sends_none(monkeypatch):
    debug = settings_with(monkeypatch, DEBUG="1", EMAIL_URL=None, EMAIL_BACKEND=None)
    assert debug["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    prod = settings_with(monkeypatch, DEBUG="0", EMAIL_URL=None, EMAIL_BACKEND=None)
    assert prod["EMAIL_BACKEND"] == "django.core.mail.backends.dummy.EmailBackend"


def test_log_format_and_static_storage_follow_debug(monkeypatch):
    debug = settings_with(monkeypatch, DEBUG="1", LOG_FORMAT=None)
    assert debug["LOG_FORMAT"] == "text"
    assert debug["STORAGES"]["staticfiles"]["BACKEND"].endswith("StaticFilesStorage")
    prod = settings_with(monkeypatch, DEBUG="0", LOG_FORMAT=None)
    assert prod["LOG_FORMAT"] == "json"
    assert prod["LOGGING"]["handlers"]["console"]["formatter"] == "json"
    assert prod["STORAGES"]["staticfiles"]["BACKEND"] == "flash.storage.CompressedManifestStorage"
    assert "flash.middleware.StaticFilesMiddleware" in prod["MIDDLEWARE"]  # WhiteNoise
    with pytest.raises(Exception, match="LOG_FORMAT"):
        settings_with(monkeypatch, LOG_FORMAT="xml")


# --- queues ------------------------------------------------------------------------------


def project_tasks() -> set[str]:
    celery_app.loader.import_default_modules()  # autodiscovery, as a worker does at start
    local = {
        app.split(".")[0]
        for app in django_settings.INSTALLED_APPS
        if (ROOT / app.split(".")[0]).is_dir()
    } | {"flash"}
    return {name for name in celery_app.tasks if name.split(".")[0] in local}


def test_every_project_task_is_routed_to_a_queue_of_its_kind():
    routes = django_settings.CELERY_TASK_ROUTES
    queues = django_settings.FLASH_QUEUES
    tasks = project_tasks()
    assert "claims.tasks.verify_claim" in tasks and "flash.tasks.beat_heartbeat" in tasks
    unrouted = sorted(tasks - set(routes))
    assert not unrouted, f"add these to FLASH_QUEUES in flash/settings.py: {unrouted}"
    assert set(routes) <= tasks, f"routes to no task: {sorted(set(routes) - tasks)}"
    assert (
        {r["queue"] for r in routes.values()}
        == set(queues)
        == {
            "webhooks",
            "verify",
            "sync",
            "clawback",
        }
    )
    expected = {
        "channels_app.order_bridge.process_webhook": "webhooks",
        "events.tasks.deliver": "webhooks",
        "claims.tasks.verify_claim": "verify",
        "claims.tasks.retry_due_claims": "verify",
        "channels_app.tasks.refresh_channel_tokens": "sync",
        "events.tasks.dispatch_outbox": "sync",
        "loyalty.tasks.vest_due_awards": "sync",
        "flash.tasks.beat_heartbeat": "sync",
        "claims.tasks.clawback_pass": "clawback",
    }
    assert {name: routes[name]["queue"] for name in expected} == expected
    for entry in django_settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in routes, entry["task"]


def test_messages_land_on_their_own_queue_only():
    """Each queue is bound by its own routing key (one shared key would copy every message into
    every queue on RabbitMQ), and a worker without -Q consumes all four."""
    router = celery_app.amqp.router
    for name, route in django_settings.CELERY_TASK_ROUTES.items():
        queue = router.route({}, name)["queue"]
        assert (queue.name, queue.routing_key) == (route["queue"], route["queue"])
    assert set(celery_app.amqp.queues) == set(django_settings.FLASH_QUEUES)


def test_beat_schedules_the_clawback_pass_and_its_own_heartbeat():
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert schedule["clawback-pass"]["task"] == "claims.tasks.clawback_pass"
    assert schedule["clawback-pass"]["schedule"] == int(
        os.environ.get("CLAWBACK_INTERVAL_SECONDS", 15 * 60)
    )
    assert schedule["beat-heartbeat"]["task"] == "flash.tasks.beat_heartbeat"
    assert schedule["beat-heartbeat"]["schedule"] < django_settings.BEAT_HEARTBEAT_MAX_AGE


# --- production start-up -----------------------------------------------------------------


def production_env(**overrides) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "EMAIL_", "CELERY_", "SECURE_", "SESSION_", "CSRF_"))
        and k not in ("DEBUG", "LOG_FORMAT", "REDIS_URL", "DATABASE_URL", "ALLOWED_HOSTS")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="flash.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="loyalty.example.com",
        CSRF_TRUSTED_ORIGINS="https://loyalty.example.com",
        PUBLIC_BASE_URL="https://loyalty.example.com",
        FLASH_VAULT_KEYS=VAULT_KEYS,
        DATABASE_URL="postgres://flash:pw@127.0.0.1:5432/flash",
        REDIS_URL=REDIS,
        CELERY_BROKER_URL=REDIS,
        EMAIL_URL="smtp+tls://mailer:pw@smtp.example.com:587",
        PORTAL_FRAME_ANCESTORS="https://www.brand.example",
        LOG_FORMAT="json",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def test_check_deploy_is_clean_with_a_full_set_of_production_values():
    """tests/test_commands.py checks the minimum (secret key, hosts); this is the whole
    production environment `make run` starts with, WhiteNoise, JSON logs and SMTP included."""
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout


def preflight(**overrides):
    return subprocess.run(
        [sys.executable, "-m", "flash.health", "preflight"],
        cwd=ROOT,
        env=production_env(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_make_runs_preflight_refuses_without_postgres_redis_and_a_broker():
    ok = preflight()
    assert ok.returncode == 0, ok.stderr

    proc = preflight(DATABASE_URL="sqlite:///flash.sqlite3", REDIS_URL=None, CELERY_BROKER_URL=None)
    assert proc.returncode == 1
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        assert name in proc.stderr
    assert "PostgreSQL" in proc.stderr

    proc = preflight(SECRET_KEY=None)
    assert proc.returncode == 1 and "SECRET_KEY must be set" in proc.stderr


# --- vault key rotation ------------------------------------------------------------------

OLD_RING = "k1:" + "MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE="  # b"1" * 32
NEW_RING = "k9:" + "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk=," + OLD_RING


@pytest.mark.django_db
def test_rotate_vault_key_reseals_channels_webhook_secrets_and_claims_postal_codes(
    settings, team_a, member_a
):
    """Every place a sealed value lives: a key retired while a webhook signing secret or a
    waiting claim's postal code still needs it would lose that value for good."""
    from channels_app import vault
    from channels_app.models import Channel
    from claims import services as claim_services
    from events import services as event_services

    settings.FLASH_VAULT_KEYS = OLD_RING
    channel = Channel(team=team_a, kind="amazon", name="US", config={})
    channel.set_secret("refresh_token", "Atzr|rotation-sentinel")
    channel.save()
    endpoint, signing_secret = event_services.endpoint_create(
        team=team_a, url="https://hooks.brand.example/flash", event_types=["points.awarded"]
    )
    claim_services.rollout_set(channel=channel, stage="on")
    claim = claim_services.claim_submit(
        member=member_a,
        channel_public_id=channel.public_id,
        order_number="114-3941689-8772232",
        postal_code="98101",
    )
    assert vault.key_id_of(claim.sealed_postal_code) == "k1"

    settings.FLASH_VAULT_KEYS = NEW_RING  # the new key first, the old one still in the ring
    with pytest.raises(CommandError, match="1 channel secret.*1 webhook.*1 claim postal"):
        call_command("rotate_vault_key", "--check", stdout=io.StringIO())
    out = io.StringIO()
    call_command("rotate_vault_key", stdout=out)
    assert "3 secret(s) re-encrypted under key 'k9'" in out.getvalue()

    settings.FLASH_VAULT_KEYS = NEW_RING.split(",")[0]  # the old key retired
    call_command("rotate_vault_key", "--check", stdout=io.StringIO())
    for obj in (channel, endpoint, claim):
        obj.refresh_from_db()
    assert channel.secret("refresh_token") == "Atzr|rotation-sentinel"
    assert event_services.endpoint_secret(endpoint=endpoint) == signing_secret
    assert claim_services.postal_code_of(claim) == "98101"
    again = io.StringIO()
    call_command("rotate_vault_key", stdout=again)
    assert again.getvalue().startswith("0 secret(s)")
