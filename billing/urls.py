from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("", views.index, name="index"),
    path("buy/", views.buy, name="buy"),
    path("checkout/<str:session_id>/status/", views.checkout_status, name="checkout-status"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
]
