"""Deterministic SVG avatars: the same persona always gets the same face, no external images."""

import hashlib
from html import escape

_BACKGROUNDS = ["#eef2ff", "#fef3c7", "#dcfce7", "#fce7f3", "#e0f2fe", "#ede9fe", "#ffedd5", "#f1f5f9"]
_SKIN = ["#f5d0b5", "#e8b48f", "#c68d67", "#a26a45", "#7a4b2e", "#5b3620"]
_HAIR = ["#2d1b10", "#5a3825", "#8d5524", "#c9a66b", "#e6cf9c", "#9ca3af", "#1f2937", "#7c2d12"]
_SHIRT = ["#4f46e5", "#0ea5e9", "#16a34a", "#db2777", "#f59e0b", "#7c3aed", "#0f766e", "#b91c1c"]


def _pick(options: list[str], digest: bytes, index: int) -> str:
    return options[digest[index] % len(options)]


def avatar_svg(seed: str, *, size: int = 96, title: str = "") -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    background, skin = _pick(_BACKGROUNDS, digest, 0), _pick(_SKIN, digest, 1)
    hair, shirt = _pick(_HAIR, digest, 2), _pick(_SHIRT, digest, 3)
    hair_style = digest[4] % 3
    hair_shape = {
        0: '<path d="M30 42c0-14 9-22 18-22s18 8 18 22c-4-6-10-9-18-9s-14 3-18 9z"/>',
        1: '<path d="M28 50c-2-20 8-30 20-30s22 10 20 30c-2-10-6-14-20-16-14 2-18 6-20 16z"/>',
        2: '<path d="M26 64c-4-26 6-44 22-44s26 18 22 44c-2-18-6-26-22-28-16 2-20 10-22 28z"/>',
    }[hair_style]
    glasses = (
        '<g fill="none" stroke="#1f2937" stroke-width="1.6"><circle cx="41" cy="44" r="4.5"/>'
        '<circle cx="55" cy="44" r="4.5"/><path d="M45.5 44h5"/></g>'
        if digest[5] % 4 == 0
        else ""
    )
    label = f"<title>{escape(title)}</title>" if title else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 96 96" width="{size}" height="{size}" role="img" '
        f'class="avatar">{label}<rect width="96" height="96" rx="48" fill="{background}"/>'
        f'<path d="M18 96c2-18 14-26 30-26s28 8 30 26z" fill="{shirt}"/>'
        f'<rect x="42" y="58" width="12" height="12" rx="4" fill="{skin}"/>'
        f'<ellipse cx="48" cy="44" rx="15" ry="17" fill="{skin}"/>'
        f'<g fill="{hair}">{hair_shape}</g>'
        f'<circle cx="42" cy="45" r="1.6" fill="#1f2937"/><circle cx="54" cy="45" r="1.6" fill="#1f2937"/>'
        f'<path d="M43 53c3 2.5 7 2.5 10 0" stroke="#7f1d1d" stroke-width="1.6" fill="none" stroke-linecap="round"/>'
        f"{glasses}</svg>"
    )
