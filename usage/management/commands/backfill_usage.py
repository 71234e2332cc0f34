from django.core.management.base import BaseCommand

from usage.services import usage_backfill


class Command(BaseCommand):
    help = (
        "Compute costs for usage events recorded while their model had no price. "
        "With --delete-existing-estimates, also throw away the costs of estimated events and compute them again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--delete-existing-estimates",
            action="store_true",
            help="Recompute the cost of every estimated event from the current price table.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")

    def handle(self, *args, **options):
        result = usage_backfill(
            delete_existing_estimates=options["delete_existing_estimates"], dry_run=options["dry_run"]
        )
        prefix = "Would price" if options["dry_run"] else "Priced"
        self.stdout.write(
            f"{prefix} {result.priced} event(s); recomputed {result.recomputed_estimates} estimate(s); "
            f"{result.still_missing} still without a price."
        )
