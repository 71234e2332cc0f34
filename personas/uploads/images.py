"""How an image is prepared for the vision model: decoded and verified by Pillow, bounded, resized and
re-encoded without metadata into a data: URL."""

from __future__ import annotations

import base64
import io
import logging
import struct

from django.conf import settings

from personas.uploads.common import IMAGE_KINDS, KIND_DESCRIPTION, MB, UploadRejected, display_name, reject

logger = logging.getLogger(__name__)

IMAGE_MAX_PIXELS = 40_000_000
IMAGE_MAX_SIDE = 1568
JPEG_QUALITY = 85


def image_data_url(uploaded_file, kind: str) -> str:
    """A ``data:`` URL for the vision model: decoded and verified by Pillow, at most IMAGE_MAX_PIXELS
    (40 MP) before resizing, EXIF orientation applied, longest side ≤ IMAGE_MAX_SIDE, re-encoded
    without metadata: PNG when the image has real transparency, otherwise JPEG (quality 85, RGB).
    """
    # Pillow loads only when an image is prepared
    from PIL import Image, ImageOps, UnidentifiedImageError

    if kind not in IMAGE_KINDS:
        raise ValueError(f"{kind} is not an image kind")
    name = display_name(uploaded_file)
    limit_bytes = settings.UPLOAD_MAX_MB * MB
    uploaded_file.seek(0)
    try:
        data = uploaded_file.read(limit_bytes + 1)
    finally:
        uploaded_file.seek(0)
    if len(data) > limit_bytes:
        raise reject(
            uploaded_file,
            "too_large",
            f"{name} is over the {settings.UPLOAD_MAX_MB} MB limit. Upload a smaller image.",
        )

    max_pixels = IMAGE_MAX_PIXELS
    if Image.MAX_IMAGE_PIXELS:
        max_pixels = min(max_pixels, Image.MAX_IMAGE_PIXELS)
    too_big = reject(
        uploaded_file,
        "image_too_large",
        f"{name} is too large an image (over {max_pixels / 1_000_000:g} megapixels) and was refused. "
        f"Resize it to at most {IMAGE_MAX_SIDE * 2} pixels on its longest side and upload it again.",
    )
    unreadable = reject(
        uploaded_file,
        "damaged",
        f"{name} is not a readable image: it is damaged, incomplete or not really {KIND_DESCRIPTION[kind]}. "
        "Open it in an image viewer, save or export it again, and upload the new copy.",
    )
    formats = ["PNG", "JPEG", "WEBP"]
    try:
        with Image.open(io.BytesIO(data), formats=formats) as probe:
            width, height = probe.size
            if width * height > max_pixels:
                raise too_big
            probe.verify()
        image: Image.Image = Image.open(io.BytesIO(data), formats=formats)
        if image.format == "JPEG":
            image.draft("RGB", (IMAGE_MAX_SIDE, IMAGE_MAX_SIDE))  # decode big JPEGs at a reduced scale
        image.load()
        image = ImageOps.exif_transpose(image) or image
    except UploadRejected:
        raise
    except Image.DecompressionBombError:
        raise too_big from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        logger.info("Unreadable image upload: %r", exc)
        raise unreadable from None

    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if transparent:
        image = image.convert("RGBA")
        alpha_min, _ = image.getchannel("A").getextrema()
        assert not isinstance(alpha_min, tuple)  # one band: a (min, max) pair, not one per band
        transparent = alpha_min < 255
    image = image.convert("RGBA" if transparent else "RGB")
    image.thumbnail((IMAGE_MAX_SIDE, IMAGE_MAX_SIDE), Image.Resampling.LANCZOS)
    image.info = {}  # no EXIF, ICC, XMP or text chunks carried over

    out = io.BytesIO()
    if transparent:
        image.save(out, format="PNG")
        mime = "image/png"
    else:
        image.save(out, format="JPEG", quality=JPEG_QUALITY)
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(out.getvalue()).decode('ascii')}"
