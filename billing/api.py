from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors
from billing.serializers import (
    CheckoutCreatedSerializer,
    CheckoutInputSerializer,
    CheckoutSessionSerializer,
    CreditPackSerializer,
    CreditsSerializer,
    CreditTransactionSerializer,
)
from billing.stripe_checkout import checkout_session_create

_ERROR = OpenApiResponse(description='The standard error body: {"error": {"code", "message", …}}.')


@extend_schema(tags=["credits"], responses=CreditsSerializer)
class CreditsView(APIView):
    """Your credit balance and what AI work costs in credits."""

    def get(self, request):
        data = {"balance": selectors.credits_balance(user=request.user), "costs": selectors.credit_costs()}
        return Response(CreditsSerializer(data).data)


@extend_schema(tags=["credits"])
class CreditLedgerView(generics.ListAPIView):
    """Every change to your credits, newest first."""

    serializer_class = CreditTransactionSerializer

    def get_queryset(self):
        return selectors.ledger_for_user(user=self.request.user)


@extend_schema(tags=["billing"])
class CreditPackListView(generics.ListAPIView):
    """The credit packs on sale."""

    serializer_class = CreditPackSerializer
    pagination_class = None  # a handful of packs

    def get_queryset(self):
        return selectors.credit_packs_on_sale()


@extend_schema(
    tags=["billing"],
    request=CheckoutInputSerializer,
    responses={
        201: CheckoutCreatedSerializer,
        404: _ERROR,
        409: _ERROR,
        503: OpenApiResponse(
            description="`payments_not_configured` (no Stripe keys: an admin grants credits instead) or "
            "`payment_provider_error` (Stripe failed; retry with the same attempt_id)."
        ),
    },
)
class CheckoutCreateView(APIView):
    """Start buying a pack: returns Stripe's hosted checkout page. Credits arrive when Stripe confirms the
    payment (poll the checkout, or watch your balance)."""

    def post(self, request):
        data = CheckoutInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        checkout = checkout_session_create(
            user=request.user,
            pack_id=data.validated_data["pack_id"],
            attempt_id=data.validated_data.get("attempt_id"),
            return_url=request.build_absolute_uri(reverse("billing:index")),
        )
        body = CheckoutCreatedSerializer({"checkout_url": checkout.url, "session_id": checkout.stripe_id}).data
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(tags=["billing"], responses={200: CheckoutSessionSerializer, 404: _ERROR})
class CheckoutDetailView(APIView):
    """One of your checkouts: pending until Stripe confirms, then paid (or failed/expired), with the receipt."""

    def get(self, request, session_id: str):
        checkout = selectors.checkout_session_for_user(user=request.user, session_id=session_id)
        if checkout is None:
            raise Http404
        return Response(CheckoutSessionSerializer(checkout).data)
