from django.core.management.base import BaseCommand, CommandError

from billing.stripe_setup import stripe_setup
from cohorta.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Record dj-stripe's platform Account, API key and WebhookEndpoint from STRIPE_SECRET_KEY and "
        "STRIPE_WEBHOOK_SECRET. Idempotent; the release step runs it after migrate."
    )

    def add_arguments(self, parser):
        parser.add_argument("--site-url", default="", help="e.g. https://cohorta.example.com, to print the full URL")
        parser.add_argument(
            "--if-configured", action="store_true", help="do nothing (successfully) when the Stripe secrets are unset"
        )

    def handle(self, *args, site_url: str, if_configured: bool, **options):
        try:
            done = stripe_setup(site_url=site_url)
        except ApplicationError as exc:
            if if_configured and exc.code == "payments_not_configured":
                self.stdout.write("Stripe is not configured (no STRIPE_SECRET_KEY/STRIPE_WEBHOOK_SECRET); skipped.")
                return
            raise CommandError(exc.message) from None
        endpoint = done.endpoint
        self.stdout.write(
            f"Stripe account {done.account.id} ({'live' if endpoint.livemode else 'test'} mode); webhook endpoint "
            f"{'created' if done.created else 'updated'}.\n"
            f"Webhook URL: {site_url.rstrip('/') or '<your site>'}/stripe/webhook/{endpoint.djstripe_uuid}/ "
            f"(or {site_url.rstrip('/') or '<your site>'}/billing/stripe/webhook/)"
        )
