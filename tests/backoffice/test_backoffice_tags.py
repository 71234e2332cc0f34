from decimal import Decimal

from backoffice.templatetags.backoffice_tags import usd


def test_a_loss_reads_minus_dollars_not_dollars_minus():
    assert usd(Decimal("-0.06")) == "-$0.06"
    assert usd(Decimal("1234.5")) == "$1,234.50"
    assert usd(Decimal("0")) == "$0.00"
    assert usd(None) == "—"
