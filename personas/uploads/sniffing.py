"""What a file's first bytes say it is, whatever its name claims, and the rejection when the two disagree."""

from __future__ import annotations

from personas.uploads.common import UploadRejected, display_name, reject

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Signatures that are never text (each starts with a byte no text file starts with).
_BINARY_SIGNATURES = (
    (OLE_MAGIC, "an old-style Office file (.doc/.xls/.ppt) or a password-protected Office document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x7fELF", "a program"),
    (b"PK\x05\x06", "an empty ZIP archive"),
)
_SNIFFED_DESCRIPTION = {
    "pdf": "a PDF",
    "zip": "a ZIP archive",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "webp": "a WebP image",
    "gif": "a GIF image",
}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


def sniff_kind(head: bytes) -> str | None:
    """The container type announced by a file's first bytes, or None (plain text or unknown)."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


def _binary_signature(head: bytes) -> str | None:
    """Describe a known binary format that sniff_kind does not name, or None."""
    for magic, description in _BINARY_SIGNATURES:
        if head.startswith(magic):
            return description
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return "an HEIC/HEIF photo"
        if brand in (b"avif", b"avis"):
            return "an AVIF image"
        return "an MP4/MOV video"
    return None


def known_signature(head: bytes) -> str | None:
    """Describe the file format announced by the first bytes, or None (plain text or unknown)."""
    kind = sniff_kind(head)
    if kind:
        return _SNIFFED_DESCRIPTION[kind]
    return _binary_signature(head)


def describe_content(head: bytes) -> str:
    signature = known_signature(head)
    if signature:
        return signature
    if not head.strip():
        return "blank space"
    if b"\x00" in head:
        return "binary data of an unknown type"
    return "plain text"


def content_mismatch(uploaded_file, head: bytes, what: str, action: str) -> UploadRejected:
    return reject(
        uploaded_file,
        "content_mismatch",
        f"{display_name(uploaded_file)} {what}: its contents look like {describe_content(head)}. {action}",
    )
