from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "cohorta.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        # Each app declares its job kinds in a ``jobs.py`` module.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("jobs")
