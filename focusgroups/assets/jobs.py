"""Job kind for focus-group assets: the vision model describes an uploaded image for the personas."""

import base64

from cohorta.errors import ApplicationError
from cohorta.jobs.errors import JobFailure
from cohorta.jobs.registry import job_kind
from focusgroups.models import Asset, AssetKind
from llm.errors import LLMError
from llm.gateway import complete
from llm.prompts import fence, render_prompt

CONCEPT_MAX_CHARS = 2000


def _data_url(asset: Asset) -> str:
    with asset.image.open("rb") as handle:
        data = handle.read()
    return f"data:{asset.content_type};base64,{base64.b64encode(data).decode('ascii')}"


@job_kind("asset_description", label="Image description (focus group)")
def asset_description(job, ctx):
    asset = (
        Asset.objects.select_related("focus_group")
        .filter(pk=job.params.get("asset_id"), kind=AssetKind.IMAGE, focus_group__owner=job.owner)
        .first()
    )
    if asset is None or not asset.image:
        raise JobFailure("The image was removed before it could be described.")
    focus_group = asset.focus_group
    ctx.progress(0, 1, "Looking at the image")
    try:
        image_url = _data_url(asset)
    except OSError:
        raise JobFailure("The stored image could not be read. Remove it and upload it again.") from None
    concept = (focus_group.concept or "").strip()
    prompt = render_prompt(
        "focusgroups:asset_description",
        {"concept": fence("session concept", concept[:CONCEPT_MAX_CHARS]) if concept else ""},
    )
    try:
        result = complete(
            feature="asset_description",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": prompt},
                        {"type": "image_url", "image_url": {"url": image_url}},
                    ],
                }
            ],
            user=job.owner,
            job=job,
            focus_group_id=focus_group.pk,
            focus_group_cap_usd=focus_group.cost_cap_usd,
        )
    except (LLMError, ApplicationError) as exc:
        raise JobFailure(exc.message) from None
    description = result.text.strip()
    # The asset may have been removed meanwhile: then there is nothing to update.
    Asset.objects.filter(pk=asset.pk).update(description=description)
    ctx.progress(1, 1, "Described")
    return {
        "asset_id": asset.pk,
        "focus_group_id": focus_group.pk,
        "filename": asset.filename,
        "description": description,
        "simulated": result.simulated,
    }
