from django.urls import path

from focusgroups import views

app_name = "focusgroups"

urlpatterns = [
    path("", views.index, name="index"),
]
