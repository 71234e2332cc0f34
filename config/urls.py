from django.apps import apps
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from cohorta.accounts import sso
from web import views as web_views

admin.site.site_header = "Cohorta back office"
admin.site.site_title = "Cohorta admin"
admin.site.index_title = "Operations"

# Generic OpenID Connect sign-in (when that provider is configured), on allauth's own paths but with the
# ID token's signature always checked (cohorta/accounts/sso.py); listed first so these answer, not allauth's.
sso_urlpatterns = (
    [
        path("accounts/oidc/<str:provider_id>/login/", sso.oidc_login, name="openid_connect_login"),
        path("accounts/oidc/<str:provider_id>/login/callback/", sso.oidc_callback, name="openid_connect_callback"),
    ]
    if apps.is_installed("allauth.socialaccount.providers.openid_connect")
    else []
)

urlpatterns = [
    # The API first: clients poll it most, and Django tries each pattern in order until one matches.
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", web_views.home, name="dashboard"),
    path("healthz", web_views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page links; lazy because the hashed name is
    # only known once the staticfiles manifest can be read, not at import.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("img/favicon.ico")), name="favicon"),
    *sso_urlpatterns,
    path("accounts/", include("allauth.urls")),
    path("settings/", include("cohorta.accounts.urls")),
    path("settings/", include("privacy.urls")),
    path("jobs/", include("cohorta.jobs.urls")),
    path("personas/", include("personas.urls")),
    path("focus-groups/", include("focusgroups.urls")),
    path("surveys/", include("surveys.urls")),
    path("panels/", include("panels.urls")),
    path("validation/", include("validation.urls")),
    path("usage/", include("usage.urls")),
    path("billing/", include("billing.urls")),
    path("stripe/", include("billing.stripe_urls")),
    path("admin/", admin.site.urls),
]

handler404 = "web.errors.not_found"
handler500 = "web.errors.server_error"
