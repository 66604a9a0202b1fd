import os

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flash.settings")

app = Celery("flash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["flash"])  # flash.tasks: beat's heartbeat


@setup_logging.connect
def _django_logging(**kwargs):
    """Workers and beat log through Django's LOGGING (JSON in production), not Celery's own
    format; connecting this signal is what stops Celery from configuring logging itself."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


_task_tokens: dict[str, object] = {}


@task_prerun.connect
def _task_id_on(task_id=None, **kwargs):
    """Every log line a task writes carries its id (flash/logs.py)."""
    from flash import logs

    _task_tokens[task_id] = logs.task_id.set(task_id)


@task_postrun.connect
def _task_id_off(task_id=None, **kwargs):
    from flash import logs

    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            logs.task_id.reset(token)
        except ValueError:  # set in another context (a pool that switched threads)
            logs.task_id.set(None)
