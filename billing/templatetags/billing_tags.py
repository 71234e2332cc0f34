from decimal import Decimal

from django import template

from billing import selectors
from billing.models import CreditTransactionKind

register = template.Library()

_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}

# The ledger's kinds as a customer would say them.
_KIND_LABELS: dict[str, str] = {
    CreditTransactionKind.TRIAL: "Free trial",
    CreditTransactionKind.GRANT: "Added by an admin",
    CreditTransactionKind.PURCHASE: "Purchase",
    CreditTransactionKind.SPEND: "Used",
    CreditTransactionKind.REFUND: "Given back",
    CreditTransactionKind.ADJUSTMENT: "Correction",
}


@register.filter
def kind_label(kind: str) -> str:
    return _KIND_LABELS.get(kind, str(kind).title())


@register.filter
def ledger_description(entry) -> str:
    return selectors.ledger_description(entry)


@register.filter
def money(amount: Decimal | None, currency: str = "usd") -> str:
    """$49, $49.50, 49.00 CHF: whole amounts without cents, as on a price tag."""
    if amount is None:
        return ""
    amount = Decimal(amount)
    text = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    symbol = _SYMBOLS.get((currency or "").lower())
    return f"{symbol}{text}" if symbol else f"{text} {currency.upper()}"


@register.filter
def per_credit(pack) -> str:
    """The price of one credit in a pack, to compare packs at a glance."""
    if not pack.credits:
        return ""
    each = (Decimal(pack.price) / pack.credits).quantize(Decimal("0.01"))
    symbol = _SYMBOLS.get(pack.currency.lower())
    return f"{symbol}{each}" if symbol else f"{each} {pack.currency.upper()}"
