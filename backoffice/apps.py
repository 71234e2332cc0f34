from django.contrib.admin.apps import AdminConfig


class BackofficeAdminConfig(AdminConfig):
    """Django's admin app, serving Cohorta's admin site (dashboard and analytics pages)."""

    default_site = "backoffice.site.CohortaAdminSite"
