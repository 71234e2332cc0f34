from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class BackofficeConfig(AppConfig):
    """The operators' side: the users admin, analytics pages and management commands."""

    default = True
    name = "backoffice"
    label = "backoffice"
    verbose_name = "Back office"


class BackofficeAdminConfig(admin_apps.AdminConfig):
    """Django's admin app, serving Cohorta's admin site (dashboard and analytics pages)."""

    default = False
    default_site = "backoffice.site.CohortaAdminSite"
