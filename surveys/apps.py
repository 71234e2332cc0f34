from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "surveys"
    verbose_name = "Surveys"

    def ready(self) -> None:
        # Connects to ``job_ended``: a quality check begins when its run ends, and finishes when its retest does.
        from surveys import receivers  # noqa: F401
