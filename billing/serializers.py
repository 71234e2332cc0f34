from rest_framework import serializers

from billing.models import CheckoutSession, CreditPack, CreditTransaction


class CreditCostsSerializer(serializers.Serializer):
    persona = serializers.IntegerField(help_text="Credits per persona created by AI.")
    session_run = serializers.IntegerField(help_text="Credits to run a focus group in autonomous mode.")
    persona_modify = serializers.IntegerField(help_text="Credits per AI modification of a persona.")


class CreditsSerializer(serializers.Serializer):
    balance = serializers.IntegerField()
    costs = CreditCostsSerializer()


class CreditTransactionSerializer(serializers.ModelSerializer):
    class Meta:
        model = CreditTransaction
        fields = ["id", "kind", "delta", "balance_after", "reference", "description", "refund_of", "created_at"]
        read_only_fields = fields


class CreditPackSerializer(serializers.ModelSerializer):
    price = serializers.DecimalField(max_digits=10, decimal_places=2, help_text="In the pack's currency, e.g. 49.00.")

    class Meta:
        model = CreditPack
        fields = ["id", "name", "credits", "price", "currency"]
        read_only_fields = fields


class CheckoutInputSerializer(serializers.Serializer):
    pack_id = serializers.IntegerField(min_value=1)
    attempt_id = serializers.UUIDField(
        required=False,
        help_text="A UUID you choose per purchase. Sending the same one again (a retry after a timeout or a 503) "
        "returns the same checkout instead of opening a second one.",
    )


class CheckoutCreatedSerializer(serializers.Serializer):
    checkout_url = serializers.URLField(help_text="Stripe's hosted payment page: send the buyer there.")
    session_id = serializers.CharField(help_text="The Checkout Session id (cs_…).")


class CheckoutSessionSerializer(serializers.ModelSerializer):
    session_id = serializers.CharField(source="stripe_id")
    price = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="Amount charged, in currency units.")

    class Meta:
        model = CheckoutSession
        fields = [
            "session_id",
            "status",
            "pack_name",
            "credits",
            "price",
            "currency",
            "receipt_url",
            "amount_refunded",
            "credits_clawed_back",
            "created_at",
            "paid_at",
        ]
        read_only_fields = fields
