"""The offline simulator's "vision": it cannot see a picture, so it describes what Pillow can measure —
size and orientation, dominant colours, brightness and contrast, whether it looks like a photograph or a
flat graphic, and where it is lighter or darker — and says plainly that this is all it knows."""

import base64
import binascii
import colorsys
import io
import math
import re

from PIL import Image, ImageStat, UnidentifiedImageError

from llm.simulator_text import join_list

_RATIOS = [(16 / 9, "16:9"), (4 / 3, "4:3"), (3 / 2, "3:2"), (1.0, "1:1"), (2 / 3, "2:3"), (3 / 4, "3:4")]
_RATIOS += [(9 / 16, "9:16"), (4 / 5, "4:5"), (5 / 4, "5:4"), (2.0, "2:1"), (21 / 9, "21:9")]


def _name(rgb: tuple[int, int, int]) -> str:
    """A plain colour name by hue, lightness and saturation ("navy blue", "tan", "light grey")."""
    hue, light, sat = colorsys.rgb_to_hls(*(channel / 255 for channel in rgb))
    hue *= 360
    if sat < 0.15 or light < 0.08 or light > 0.95:
        for limit, name in ((0.12, "black"), (0.35, "charcoal grey"), (0.65, "grey"), (0.9, "light grey")):
            if light < limit:
                return name
        return "white"
    if hue < 15 or hue >= 345:
        return "dark red" if light < 0.3 else "pink" if light > 0.75 else "red"
    if hue < 42:
        if light < 0.3:
            return "dark brown"
        if light < 0.55 and sat < 0.6:
            return "brown" if light < 0.4 else "tan"
        return "beige" if light > 0.75 else "orange"
    if hue < 68:
        if light < 0.4:
            return "olive green"
        return (
            "cream" if light > 0.8 else "beige" if sat < 0.5 and light > 0.6 else "mustard" if light < 0.5 else "yellow"
        )
    if hue < 160:
        return "dark green" if light < 0.28 else "olive green" if hue < 90 and light < 0.45 else "green"
    if hue < 200:
        return "turquoise" if light > 0.5 else "teal"
    if hue < 250:
        return "navy blue" if light < 0.3 else "sky blue" if light > 0.65 else "blue"
    if hue < 290:
        return "lavender" if light > 0.7 else "purple"
    return "pink" if light > 0.7 else "magenta"


def _decode(url: str) -> Image.Image | None:
    match = re.match(r"data:image/[\w.+-]+;base64,(.*)$", url or "", re.S)
    if not match:
        return None
    try:
        image = Image.open(io.BytesIO(base64.b64decode(match.group(1), validate=False)))
        image.load()
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError):
        return None
    return image


def image_facts(url: str) -> dict | None:
    """What can be measured of the picture in a ``data:`` URL, or None when it is not an image."""
    image = _decode(url)
    if image is None:
        return None
    width, height = image.size
    transparent = False
    if "A" in image.getbands():
        alpha = image.getchannel("A")
        lowest = alpha.getextrema()[0]
        assert not isinstance(lowest, tuple)  # one band: (min, max), not one pair per band
        transparent = lowest < 250
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=alpha)
        rgb = background
    else:
        rgb = image.convert("RGB")
    thumb = rgb.copy()
    thumb.thumbnail((96, 96))
    pixels = thumb.width * thumb.height
    palette = thumb.quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    colours = palette.getpalette() or []
    shares: dict[str, float] = {}
    for count, index in sorted(palette.getcolors() or [], reverse=True):
        assert isinstance(index, int)  # a palette image counts palette indexes
        red, green, blue = colours[index * 3 : index * 3 + 3]
        name = _name((red, green, blue))
        shares[name] = shares.get(name, 0.0) + count / pixels
    dominant = sorted(shares.items(), key=lambda item: -item[1])
    grey = thumb.convert("L")
    stat = ImageStat.Stat(grey)
    hsv = ImageStat.Stat(thumb.convert("HSV"))
    # A flat graphic is made of a few exact colours (near-exact after JPEG): posterised, a handful cover it.
    posterised = thumb.point(lambda v: v // 24 * 24)
    top = sorted(posterised.getcolors(pixels) or [], reverse=True)[:6]
    flat_share = sum(count for count, _ in top) / pixels
    third_w, third_h = max(1, grey.width // 3), max(1, grey.height // 3)
    centre = ImageStat.Stat(grey.crop((third_w, third_h, grey.width - third_w, grey.height - third_h))).mean[0]
    top_half = ImageStat.Stat(grey.crop((0, 0, grey.width, max(1, grey.height // 2)))).mean[0]
    bottom_half = ImageStat.Stat(grey.crop((0, grey.height // 2, grey.width, grey.height))).mean[0]
    ratio = width / height if height else 1.0
    named_ratio = min(_RATIOS, key=lambda pair: abs(math.log(ratio / pair[0])))
    return {
        "width": width,
        "height": height,
        "orientation": "square" if 0.95 <= ratio <= 1.05 else "landscape" if ratio > 1 else "portrait",
        "ratio": named_ratio[1] if abs(math.log(ratio / named_ratio[0])) < 0.03 else None,
        "dominant": [(name, share) for name, share in dominant if share >= 0.06][:3] or dominant[:1],
        "brightness": stat.mean[0],
        "contrast": stat.stddev[0],
        "saturation": hsv.mean[1] / 255,
        "flat": flat_share >= 0.6,
        "centre": centre,
        "overall": stat.mean[0],
        "top": top_half,
        "bottom": bottom_half,
        "transparent": transparent,
        "format": (image.format or "").upper(),
    }


def _brightness(value: float) -> str:
    if value < 60:
        return "dark"
    if value < 105:
        return "fairly dark"
    if value < 160:
        return "mid-toned"
    if value < 205:
        return "bright"
    return "very bright"


def describe(url: str, *, for_personas: bool) -> str | None:
    """A paragraph about the picture from its measurable properties, labelled as simulated."""
    facts = image_facts(url)
    if facts is None:
        return None
    kind = "flat graphic (large areas of plain colour, like a logo, illustration or screenshot)"
    if not facts["flat"]:
        kind = "photograph-like image (continuous tones and texture)"
    ratio = f", {facts['ratio']}" if facts["ratio"] else ""
    colours = join_list([f"{name} (about {round(share * 100)}%)" for name, share in facts["dominant"]])
    contrast = "strong contrast" if facts["contrast"] > 70 else "soft contrast" if facts["contrast"] < 35 else ""
    saturation = facts["saturation"]
    colourful = "vivid colour" if saturation > 0.45 else "muted, almost monochrome colour" if saturation < 0.12 else ""
    tone = join_list([part for part in (contrast, colourful) if part])
    sentences = [
        "Simulated description: the offline simulator cannot see images, so this is read from the file's "
        "basic properties only.",
        f"A {facts['orientation']} {kind}, {facts['width']} × {facts['height']} pixels{ratio}.",
        f"Dominant colour{'s' if len(facts['dominant']) > 1 else ''}: {colours}.",
        f"Overall it is {_brightness(facts['brightness'])}" + (f", with {tone}." if tone else "."),
    ]
    if abs(facts["centre"] - facts["overall"]) > 20:
        lighter = facts["centre"] > facts["overall"]
        sentences.append(
            f"The centre is {'lighter' if lighter else 'darker'} than the rest, which suggests (inferred) a main "
            f"subject set against a {'darker' if lighter else 'lighter'} background."
        )
    elif facts["top"] - facts["bottom"] > 35:
        sentences.append("The top is much lighter than the bottom, as with sky or a pale backdrop (inferred).")
    if facts["transparent"]:
        sentences.append("Part of it is transparent, as with a cut-out product shot or logo.")
    if for_personas:
        sentences.append(
            "Who is shown, their age, style and setting cannot be told from these properties; with a real vision "
            "model (OPENAI_API_KEY set) the description would cover the people and the scene."
        )
    else:
        sentences.append(
            "Any brand names, claims, prices or other text in the image cannot be read without a vision model; "
            "add them to the session's concept so the panel knows them."
        )
    return " ".join(sentences)
