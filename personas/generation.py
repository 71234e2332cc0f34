"""Starting AI work on personas: generation briefs, AI modification, image descriptions.

Everything here answers at once: it validates, reserves credits (402 before
any work when they are short) and creates a Job; the work runs in
personas/jobs.py."""

import uuid

from django.conf import settings
from django.db import transaction

from billing.services import credits_spend
from cohorta.core.models import get_app_settings
from cohorta.errors import ApplicationError
from cohorta.jobs.services import job_create
from personas import uploads
from personas.models import Folder, GenerationBrief, GroundingSource, Persona

MAX_COUNT = 20
DOCUMENT_KINDS = {"pdf", "docx", "txt", "md", "csv"}
IMAGE_KINDS = {"jpeg", "png", "webp"}
MAX_SOURCES = 5


def _check_count(count) -> int:
    try:
        count = int(count)
    except (TypeError, ValueError):
        raise ApplicationError(
            "How many personas? Give a number from 1 to 20.",
            code="validation_error",
            extra={"fields": {"count": ["Enter a whole number from 1 to 20."]}},
        ) from None
    if not 1 <= count <= MAX_COUNT:
        raise ApplicationError(
            f"You can generate between 1 and {MAX_COUNT} personas at a time; you asked for {count}.",
            code="validation_error",
            extra={"fields": {"count": [f"Must be between 1 and {MAX_COUNT}."]}},
        )
    return count


def _check_ages(age_min, age_max) -> tuple[int | None, int | None]:
    def parse(value):
        if value in (None, ""):
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ApplicationError("Ages must be whole numbers.", code="validation_error") from None
        if not 18 <= number <= 90:
            raise ApplicationError("Ages must be between 18 and 90.", code="validation_error")
        return number

    low, high = parse(age_min), parse(age_max)
    if low is not None and high is not None and low > high:
        raise ApplicationError("The minimum age is above the maximum age.", code="validation_error")
    return low, high


def brief_start(
    *,
    owner,
    description: str,
    count,
    age_min=None,
    age_max=None,
    locations: list[str] | str | None = None,
    gender_mix: str = "",
    folder: Folder | None = None,
    files=(),
    image_description: str = "",
) -> GenerationBrief:
    """Validate the brief and its files, reserve the credits, create the job."""
    cleaned = _brief_cleaned(
        owner=owner,
        description=description,
        count=count,
        age_min=age_min,
        age_max=age_max,
        locations=locations,
        gender_mix=gender_mix,
        folder=folder,
        files=files,
        image_description=image_description,
    )
    with transaction.atomic():
        brief, unit_cost = _brief_record(owner=owner, cleaned=cleaned)
        job = job_create(
            owner=owner,
            kind="persona_generation",
            target=brief,
            total=brief.count,
            params={"brief_id": brief.pk, "unit_cost": unit_cost},
            message="Waiting to start",
        )
        brief.job = job
        brief.save(update_fields=["job"])
    return brief


def brief_create(*, owner, description: str, count, folder: Folder | None = None) -> tuple[GenerationBrief, int]:
    """A brief with its credits reserved (ledger key ``brief:<id>:reserve``) and no job of its own, for work
    that generates it inside a job of another kind (``personas.jobs.brief_generate``). Returns the brief and
    the credits per persona reserved; call it inside a transaction that creates that job."""
    cleaned = _brief_cleaned(owner=owner, description=description, count=count, folder=folder)
    with transaction.atomic():
        return _brief_record(owner=owner, cleaned=cleaned)


def _brief_cleaned(
    *,
    owner,
    description: str,
    count,
    age_min=None,
    age_max=None,
    locations: list[str] | str | None = None,
    gender_mix: str = "",
    folder: Folder | None = None,
    files=(),
    image_description: str = "",
) -> dict:
    description = (description or "").strip()
    if len(description) < 10:
        raise ApplicationError(
            "Describe the audience in a sentence or two (at least 10 characters).",
            code="validation_error",
            extra={"fields": {"description": ["Too short."]}},
        )
    count = _check_count(count)
    age_min, age_max = _check_ages(age_min, age_max)
    if isinstance(locations, str):
        locations = [part.strip() for part in locations.replace("\n", ",").split(",")]
    locations = [location for location in (locations or []) if location][:20]
    files = list(files)
    if len(files) > MAX_SOURCES:
        raise ApplicationError(f"Attach at most {MAX_SOURCES} documents.", code="validation_error")
    if folder is not None and folder.owner_id != owner.pk:
        raise ApplicationError("No such folder.", code="not_found", status_code=404)
    # Read every document before spending anything: a bad file costs nothing.
    extracted = []
    for upload in files:
        kind = uploads.validate_upload(upload, allowed=DOCUMENT_KINDS)
        extracted.append((upload, kind, uploads.extract_text(upload, kind)))
    return {
        "description": description[:4000],
        "count": count,
        "age_min": age_min,
        "age_max": age_max,
        "locations": locations,
        "gender_mix": gender_mix.strip()[:120],
        "folder": folder,
        "image_description": (image_description or "").strip()[:4000],
        "extracted": extracted,
    }


def _brief_record(*, owner, cleaned: dict) -> tuple[GenerationBrief, int]:
    """Create the brief and its sources and reserve its credits; inside the caller's transaction."""
    extracted = cleaned.pop("extracted")
    unit_cost = get_app_settings().persona_credit_cost
    count = cleaned["count"]
    brief = GenerationBrief.objects.create(owner=owner, **cleaned)
    for upload, kind, text in extracted:
        GroundingSource.objects.create(
            brief=brief,
            kind=kind,
            filename=upload.name[:255],
            size=upload.size,
            text=text.text,
            segments=text.segments or [],
            truncated=text.truncated,
            warnings=text.warnings,
        )
    if unit_cost:
        credits_spend(
            user=owner,
            amount=unit_cost * count,
            idempotency_key=f"brief:{brief.pk}:reserve",
            reference=f"brief:{brief.pk}",
            description=f"Generate {count} persona{'s' if count != 1 else ''}",
        )
    return brief, unit_cost


def persona_modify_start(*, persona: Persona, instruction: str):
    instruction = (instruction or "").strip()
    if len(instruction) < 3:
        raise ApplicationError(
            "Say what to change, e.g. “make her more price-sensitive”.",
            code="validation_error",
            extra={"fields": {"instruction": ["Too short."]}},
        )
    if len(instruction) > 1000:
        raise ApplicationError("Keep the change under 1,000 characters.", code="validation_error")
    cost = get_app_settings().persona_modify_credit_cost
    with transaction.atomic():
        job = job_create(
            owner=persona.owner,
            kind="persona_modify",
            target=persona,
            total=1,
            params={"persona_id": persona.pk, "instruction": instruction, "cost": cost},
        )
        if cost:
            credits_spend(
                user=persona.owner,
                amount=cost,
                idempotency_key=f"job:{job.pk}:spend",
                reference=f"persona:{persona.pk}",
                description=f"AI change to {persona.name}",
            )
    return job


def image_describe_start(*, owner, upload):
    kind = uploads.validate_upload(upload, allowed=IMAGE_KINDS)
    data_url = uploads.image_data_url(upload, kind)
    return job_create(
        owner=owner,
        kind="image_description",
        total=1,
        params={"_image": data_url, "filename": upload.name[:255], "token": uuid.uuid4().hex},
        message="Waiting to look at the image",
    )


def upload_limit_mb() -> int:
    return settings.UPLOAD_MAX_MB
