from rest_framework import serializers

from billing.models import CreditTransaction


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
