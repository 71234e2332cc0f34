from django.urls import path

from cohorta.accounts import views

urlpatterns = [
    path("", views.settings_profile, name="settings_profile"),
    path("tokens/", views.settings_tokens, name="settings_tokens"),
    path("tokens/<int:token_id>/revoke/", views.settings_token_revoke, name="settings_token_revoke"),
]
