from django.apps import AppConfig


class StreamingConfig(AppConfig):
    name = "streaming"
    verbose_name = "Live quotes"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (plan changes reach open connections)
