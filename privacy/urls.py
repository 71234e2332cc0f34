from django.urls import path

from privacy import views

urlpatterns = [
    path("data/", views.settings_data, name="settings_data"),
    path("data/status/", views.settings_data_status, name="settings_data_status"),
    path("data/export/", views.settings_data_export, name="settings_data_export"),
    path("data/exports/<str:job_id>/download/", views.settings_data_download, name="settings_data_download"),
    path("delete/", views.settings_delete, name="settings_delete"),
    path("deleted/", views.account_deleted, name="account_deleted"),
]
