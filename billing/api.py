from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors
from billing.serializers import CreditsSerializer, CreditTransactionSerializer


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
