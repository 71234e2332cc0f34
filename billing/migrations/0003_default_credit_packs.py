from decimal import Decimal

from django.db import migrations

DEFAULT_PACKS = [
    # (name, credits, price in USD, sort order)
    ("Starter", 50, Decimal("49.00"), 10),
    ("Pro", 220, Decimal("199.00"), 20),
    ("Scale", 600, Decimal("499.00"), 30),
]


def create_default_packs(apps, schema_editor):
    CreditPack = apps.get_model("billing", "CreditPack")
    # Only on a fresh install: packs an operator already set up are theirs.
    if CreditPack.objects.exists():
        return
    for name, credits, price, sort_order in DEFAULT_PACKS:
        CreditPack.objects.create(name=name, credits=credits, price=price, currency="usd", sort_order=sort_order)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_credit_packs_and_stripe"),
    ]

    operations = [
        migrations.RunPython(create_default_packs, migrations.RunPython.noop),
    ]
