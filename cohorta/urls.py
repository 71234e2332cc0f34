from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from cohorta.web import views as web_views

admin.site.site_header = "Cohorta back office"
admin.site.site_title = "Cohorta admin"
admin.site.index_title = "Operations"

urlpatterns = [
    path("", web_views.home, name="dashboard"),
    path("healthz", web_views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page links; lazy because the hashed name is
    # only known once the staticfiles manifest can be read, not at import.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("img/favicon.ico")), name="favicon"),
    path("accounts/", include("allauth.urls")),
    path("settings/", include("cohorta.accounts.urls")),
    path("jobs/", include("cohorta.jobs.urls")),
    path("personas/", include("personas.urls")),
    path("focus-groups/", include("focusgroups.urls")),
    path("surveys/", include("surveys.urls")),
    path("usage/", include("usage.urls")),
    path("billing/", include("billing.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("cohorta.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

handler404 = "cohorta.web.errors.not_found"
handler500 = "cohorta.web.errors.server_error"
