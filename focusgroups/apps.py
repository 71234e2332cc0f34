from django.apps import AppConfig


class FocusgroupsConfig(AppConfig):
    name = "focusgroups"
    verbose_name = "Focus groups"

    def ready(self) -> None:
        # Imported here because Django loads models before apps are ready: the usage pages title
        # sessions by their ids through this lookup (usage sits below focus groups).
        from focusgroups.selectors import focus_group_titles
        from usage.labels import session_titles_register

        session_titles_register(focus_group_titles)
