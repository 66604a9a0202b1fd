from django.apps import AppConfig


class ChannelsAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "channels_app"
    verbose_name = "Sales channels"

    def ready(self):
        from . import vault

        vault.ring()  # a missing or malformed key ring stops start-up, not the first save
        from . import order_bridge  # noqa: F401 - registers its Celery task with workers
