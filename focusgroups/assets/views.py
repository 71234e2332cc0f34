"""Pages for a session's assets: upload documents and images, see what the personas will see, remove them."""

from collections.abc import Sequence

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models.functions import Length, Substr
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cohorta.accounts.http import AuthenticatedHttpRequest
from cohorta.errors import ApplicationError
from focusgroups.access import get_asset_for_user, get_focus_group_for_user
from focusgroups.assets import services as asset_services
from focusgroups.models import Asset, AssetKind, FocusGroup

PREVIEW_CHARS = 400

_DOCUMENT_TYPES = {
    "application/pdf": ("bi-file-earmark-pdf", "PDF"),
    asset_services.DOCUMENT_CONTENT_TYPES["docx"]: ("bi-file-earmark-word", "Word"),
    "text/plain": ("bi-file-earmark-text", "Text"),
    "text/markdown": ("bi-markdown", "Markdown"),
}


def _asset_rows(focus_group: FocusGroup) -> Sequence[Asset]:
    rows = list(
        Asset.objects.filter(focus_group=focus_group)
        .select_related("job")
        .defer("text")
        .annotate(preview=Substr("text", 1, PREVIEW_CHARS + 1), text_chars=Length("text"))
    )
    for asset in rows:
        if asset.kind == AssetKind.DOCUMENT:
            asset.icon, asset.type_label = _DOCUMENT_TYPES.get(asset.content_type, ("bi-file-earmark", "Document"))
            asset.preview_cut = asset.text_chars > PREVIEW_CHARS
            asset.preview = asset.preview[:PREVIEW_CHARS]
        else:
            asset.icon, asset.type_label = "bi-file-earmark-image", "Image"
            job = asset.job
            asset.describing = not asset.description and job is not None and job.is_active
            asset.simulated = bool(job and isinstance(job.result, dict) and job.result.get("simulated"))
    return rows


def _context(focus_group: FocusGroup, **extra) -> dict:
    rows = _asset_rows(focus_group)
    total_chars = sum(getattr(asset, "text_chars", 0) or 0 for asset in rows if asset.kind == AssetKind.DOCUMENT)
    return {
        "focus_group": focus_group,
        "tab": "assets",
        "assets": rows,
        "describing": any(getattr(asset, "describing", False) for asset in rows),
        "max_assets": asset_services.MAX_ASSETS,
        "room": max(0, asset_services.MAX_ASSETS - len(rows)),
        "total_chars": total_chars,
        "max_total_chars": asset_services.MAX_TOTAL_TEXT_CHARS,
        "upload_limit_mb": settings.UPLOAD_MAX_MB,
        "accept": ".pdf,.docx,.txt,.md,.markdown,.jpg,.jpeg,.png,.webp",
        "errors": [],
        **extra,
    }


def _page(request: AuthenticatedHttpRequest, focus_group: FocusGroup, *, status: int = 200, **extra) -> HttpResponse:
    return render(request, "focusgroups/assets.html", _context(focus_group, **extra), status=status)


def _upload_name(upload) -> str:
    return str(getattr(upload, "name", "") or "upload").replace("\\", "/").rsplit("/", 1)[-1][:120]


@login_required
@require_http_methods(["GET", "POST"])
def assets(request: AuthenticatedHttpRequest, fg_id: int) -> HttpResponse:
    try:
        focus_group = get_focus_group_for_user(request.user, fg_id, for_write=request.method == "POST")
    except ApplicationError as exc:  # archived: read-only
        return _page(
            request, get_focus_group_for_user(request.user, fg_id), status=exc.status_code, page_error=exc.message
        )

    if request.method == "GET":
        if request.htmx:
            return render(request, "focusgroups/_asset_list.html", _context(focus_group))
        return _page(request, focus_group)

    uploads = request.FILES.getlist("files") or request.FILES.getlist("file")
    if not uploads:
        return _page(
            request,
            focus_group,
            status=400,
            errors=[{"filename": "", "message": "Choose one or more files to upload."}],
        )
    added: list[Asset] = []
    errors: list[dict] = []
    for upload in uploads:
        try:
            added.append(asset_services.asset_add(focus_group=focus_group, upload=upload))
        except ApplicationError as exc:
            if exc.status_code == 409:  # archived meanwhile
                return _page(request, focus_group, status=409, page_error=exc.message)
            errors.append({"filename": exc.extra.get("filename") or _upload_name(upload), "message": exc.message})
    if added:
        names = ", ".join(f"“{asset.filename}”" for asset in added)
        text = f"Added {names}."
        if any(asset.kind == AssetKind.IMAGE for asset in added):
            text += " Images are being described; the description appears below when it is ready."
        messages.success(request, text)
    if not errors:
        return redirect("focusgroups:assets", fg_id=focus_group.pk)
    return _page(request, focus_group, status=400, errors=errors)


@login_required
@require_POST
def asset_delete(request: AuthenticatedHttpRequest, fg_id: int, asset_id: int) -> HttpResponse:
    try:
        focus_group = get_focus_group_for_user(request.user, fg_id, for_write=True)
    except ApplicationError as exc:
        return _page(
            request, get_focus_group_for_user(request.user, fg_id), status=exc.status_code, page_error=exc.message
        )
    asset = get_asset_for_user(request.user, asset_id, focus_group_id=focus_group.pk)
    try:
        asset_services.asset_delete(asset=asset)
    except ApplicationError as exc:
        return _page(request, focus_group, status=exc.status_code, page_error=exc.message)
    messages.success(request, f"Removed “{asset.filename}”.")
    return redirect("focusgroups:assets", fg_id=focus_group.pk)


@login_required
@require_GET
def asset_image(request: AuthenticatedHttpRequest, fg_id: int, asset_id: int) -> FileResponse:
    """The stored (re-encoded) image, to its owner only; never a redirect to a public media URL."""
    asset = get_asset_for_user(request.user, asset_id, focus_group_id=fg_id)
    if asset.kind != AssetKind.IMAGE or not asset.image:
        raise Http404("No such image")
    content_type = asset.content_type
    if content_type not in asset_services.STORED_IMAGE_TYPES:
        content_type = "application/octet-stream"
    try:
        handle = asset.image.storage.open(asset.image.name, "rb")
    except (FileNotFoundError, OSError):
        raise Http404("No such image") from None
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
