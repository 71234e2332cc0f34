"""dj-stripe's webhook URL (``stripe/webhook/<uuid>/``, the name dj-stripe reverses), served through
billing's view, which checks the signature before dj-stripe stores anything."""

from django.urls import path

from billing import views

app_name = "djstripe"

urlpatterns = [
    path("webhook/<uuid:uuid>/", views.stripe_webhook, name="djstripe_webhook_by_uuid"),
]
