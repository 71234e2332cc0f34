from django.urls import path

from cohorta.accounts import views

urlpatterns = [
    path("", views.settings_profile, name="settings_profile"),
    path("tokens/", views.settings_tokens, name="settings_tokens"),
    path("tokens/<int:token_id>/revoke/", views.settings_token_revoke, name="settings_token_revoke"),
    path("data/", views.settings_data, name="settings_data"),
    path("data/status/", views.settings_data_status, name="settings_data_status"),
    path("data/export/", views.settings_data_export, name="settings_data_export"),
    path("data/exports/<str:job_id>/download/", views.settings_data_download, name="settings_data_download"),
    path("delete/", views.settings_delete, name="settings_delete"),
    path("deleted/", views.account_deleted, name="account_deleted"),
]
