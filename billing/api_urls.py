from django.urls import path

from billing import api

urlpatterns = [
    path("billing/packs/", api.CreditPackListView.as_view(), name="billing-packs"),
    path("billing/checkout/", api.CheckoutCreateView.as_view(), name="billing-checkout"),
    path("billing/checkout/<str:session_id>/", api.CheckoutDetailView.as_view(), name="billing-checkout-detail"),
]
