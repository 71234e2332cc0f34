from django.apps import AppConfig


class ValidationConfig(AppConfig):
    name = "validation"
    verbose_name = "Validation"

    def ready(self) -> None:
        # Connects to ``job_ended``: a validation moves on when its panel, then its survey run, ends.
        from validation import receivers  # noqa: F401
