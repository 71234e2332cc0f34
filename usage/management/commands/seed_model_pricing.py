from pathlib import Path

from django.core.management.base import BaseCommand

from usage.services import PRICE_FILE, pricing_seed_from_file


class Command(BaseCommand):
    help = "Load model prices and aliases from usage/pricing/model_prices.json (idempotent: run twice, same rows)."

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=PRICE_FILE, help="Price file to load (JSON).")

    def handle(self, *args, **options):
        result = pricing_seed_from_file(path=options["file"])
        if options["verbosity"] < 1:
            return
        self.stdout.write(
            f"Model prices: {result.prices_created} created, {result.prices_updated} updated, "
            f"{result.prices_unchanged} unchanged; aliases: {result.aliases_created} created."
        )
