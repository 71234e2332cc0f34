from functools import partial

from django.contrib import admin
from django.urls import path

from backoffice import margins, views


class CohortaAdminSite(admin.AdminSite):
    """The operators' home: Django's admin with a dashboard on the index page and analytics pages.

    Installed as the default admin site (``BackofficeAdminConfig``), so every
    ``@admin.register`` in the project lands here.
    """

    site_header = "Cohorta back office"
    site_title = "Cohorta admin"
    index_title = "Operations"
    index_template = "admin/backoffice_index.html"

    def get_urls(self):
        # Before the default patterns: their <app_label>/ catch-all would swallow "analytics/".
        pages = [
            path(
                f"analytics/{page.slug}" if page.slug else "analytics/",
                self.admin_view(partial(views.analytics_page, site=self, page=page)),
                name=page.url_name,
            )
            for page in views.PAGES
        ]
        return [*pages, *super().get_urls()]

    def each_context(self, request):
        context = super().each_context(request)
        context["analytics_pages"] = views.PAGES
        return context

    # The apps operators use most come first; the rest (auth, allauth, MFA…) follow alphabetically.
    APP_ORDER = ["accounts", "usage", "billing", "core", "jobs", "audit", "focusgroups", "personas", "privacy"]
    APP_NAMES = {"account": "Sign-in email addresses (allauth)", "core": "App settings"}

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        for app in apps:
            app["name"] = self.APP_NAMES.get(app["app_label"], app["name"])
        rank = {label: n for n, label in enumerate(self.APP_ORDER)}
        return sorted(apps, key=lambda app: (rank.get(app["app_label"], len(rank)), app["name"].lower()))

    def index(self, request, extra_context=None):
        extra_context = {"dashboard": margins.dashboard_summary(), **(extra_context or {})}
        return super().index(request, extra_context)
