"""dj-stripe replaces billing's hand-written Stripe store.

``StripeEvent`` (each webhook event once, with a delivery count and what Cohorta did with it) and
``StripeCustomer`` (a user's Stripe customer id) are dropped, not copied: no deployment has taken a
real payment yet, so there is nothing in them worth keeping. dj-stripe's ``Event`` and
``WebhookEventTrigger`` (every delivery, with tracebacks) and ``Customer`` (subscriber = the user)
take their place; ``StripeEventOutcome`` keeps, per event id, what an event meant to the ledger
(credited, refused and why, waiting for its checkout). The checkout records
(``CheckoutAttempt``, ``CheckoutSession``) are ours and stay as they are. A customer dropped here is
created again, at Stripe and in dj-stripe, on the user's next purchase.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_checkout_attempt_snapshot_required"),
        ("djstripe", "0003_2_11"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="stripeevent",
            name="checkout_session",
        ),
        migrations.CreateModel(
            name="StripeEventOutcome",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("type", models.CharField(db_index=True, max_length=100)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("processed", "Processed"),
                            ("ignored", "Ignored"),
                            ("unmatched", "Unmatched"),
                            ("failed", "Failed"),
                            ("unknown_checkout", "Unknown checkout"),
                            ("amount_mismatch", "Amount mismatch"),
                            ("currency_mismatch", "Currency mismatch"),
                            ("not_paid", "Not paid"),
                        ],
                        db_index=True,
                        max_length=20,
                    ),
                ),
                (
                    "error",
                    models.TextField(
                        blank=True, help_text="Why it was refused, failed, ignored or matched no account."
                    ),
                ),
                ("clawback_shortfall", models.PositiveIntegerField(default=0)),
                ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ("processed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "checkout_session",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="events",
                        to="billing.checkoutsession",
                    ),
                ),
                (
                    "event",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="cohorta_outcome",
                        to="djstripe.event",
                        to_field="id",
                    ),
                ),
            ],
            options={
                "verbose_name": "Stripe event outcome",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.DeleteModel(
            name="StripeCustomer",
        ),
        migrations.DeleteModel(
            name="StripeEvent",
        ),
    ]
