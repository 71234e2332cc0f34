from django import forms


class BuyForm(forms.Form):
    pack_id = forms.IntegerField(min_value=1)
    # Rendered fresh with the page, one per pack: the Stripe idempotency key for this click.
    attempt = forms.UUIDField()
