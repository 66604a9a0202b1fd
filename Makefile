# Flash — the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
# The demo's vault key is public on purpose: demo secrets are sandbox secrets.
DEMO_ENV := DEBUG=1 DATABASE_URL=$${DEMO_DATABASE_URL:-sqlite:///db.sqlite3} \
	PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://127.0.0.1:8000} \
	FLASH_VAULT_KEYS=$${FLASH_VAULT_KEYS:-demo:ZGVtby1vbmx5LWtleS1mb3Itc2FuZGJveC1zZWNyZXQ=} \
	CLAWBACK_SETTLE_SECONDS=$${CLAWBACK_SETTLE_SECONDS:-0}
TEST_DB ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/flash)

.PHONY: install demo test lint bench chromium run preflight

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# The browser tests drive Debian's chromium; install it when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The platform sandbox (Amazon, TikTok Shop and Shopify emulator) runs beside the app on
# 127.0.0.1:8765 for as long as the demo does; the demo team's channels are connected to it.
demo: install
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py demo
	@$(DEMO_ENV) $(BIN)/python manage.py run_sandbox --port 8765 > .sandbox.log 2>&1 & \
	  sandbox=$$!; \
	  $(DEMO_ENV) $(BIN)/python manage.py dispatch_events --loop 10 > .events.log 2>&1 & \
	  events=$$!; trap 'kill $$sandbox $$events 2>/dev/null' EXIT INT TERM; \
	  $(DEMO_ENV) $(BIN)/python manage.py demo_channels --sandbox http://127.0.0.1:8765 && \
	  $(DEMO_ENV) $(BIN)/python manage.py demo_claims && \
	  echo "  Platform sandbox: http://127.0.0.1:8765 (credentials in .sandbox.log)" && \
	  $(DEMO_ENV) $(BIN)/python manage.py runserver 127.0.0.1:8000

test: install chromium
	DATABASE_URL=$(TEST_DB) $(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(DEMO_ENV) $(BIN)/python manage.py makemigrations --check --dry-run

bench: install
	DATABASE_URL=$(TEST_DB) $(BIN)/python -m bench

# Production on one machine (docs/operations.md): gunicorn, one Celery worker per queue and
# exactly one beat, against PostgreSQL, Redis and a broker from the environment or .env.
# Refuses to start without them. Ctrl-C (or any process exiting) stops them all.
WEB_BIND ?= 0.0.0.0:8000
WEB_WORKERS ?= 3
WORKER_CONCURRENCY ?= 2
BEAT_SCHEDULE_FILE ?= $(VENV)/celerybeat-schedule
CELERY := $(BIN)/celery -A flash --quiet

preflight: install
	@$(BIN)/python -m flash.health preflight

run: SHELL := /bin/bash
run: preflight
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py check --deploy
	@pids=(); \
	  stop() { kill "$${pids[@]}" 2>/dev/null; wait; }; trap 'stop; exit 130' INT TERM; \
	  $(BIN)/gunicorn flash.wsgi:application --bind $(WEB_BIND) --workers $(WEB_WORKERS) \
	    --logger-class flash.logs.GunicornLogger --access-logfile - & pids+=($$!); \
	  for queue in webhooks verify sync clawback; do \
	    $(CELERY) worker -Q $$queue -n $$queue@%h -c $(WORKER_CONCURRENCY) \
	      --without-gossip --without-mingle & pids+=($$!); \
	  done; \
	  $(CELERY) beat --schedule $(BEAT_SCHEDULE_FILE) & pids+=($$!); \
	  echo "Flash is running: web on $(WEB_BIND), workers webhooks verify sync clawback, beat."; \
	  wait -n; status=$$?; echo "a Flash process exited ($$status); stopping the others" >&2; \
	  stop; exit 1
