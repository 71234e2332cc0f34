"""Static files: the vendored assets are what static/vendor/MANIFEST.toml says, and no CSS, JS or
template points at a static file that is not there (production's manifest storage refuses to
collect such a file, and a missing ``{% static %}`` path is a 500 when DEBUG=0)."""

import hashlib
import re
import tomllib
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

ROOT = Path(settings.BASE_DIR)
STATIC = ROOT / "static"
VENDOR = STATIC / "vendor"
MANIFEST = VENDOR / "MANIFEST.toml"
ENTRIES = tomllib.loads(MANIFEST.read_text())["file"]

# What Django's ManifestStaticFilesStorage follows: source maps in CSS and JS, url() and @import in CSS.
SOURCE_MAP = re.compile(r"^\s*(?://|/\*)# sourceMappingURL=(?P<url>[^\s*]+)", re.MULTILINE)
CSS_URL = re.compile(r"""url\(\s*['"]?(?P<url>[^'")]+?)['"]?\s*\)""")
CSS_IMPORT = re.compile(r"""@import\s+['"](?P<url>[^'"]+)['"]""")
TEMPLATE_STATIC = re.compile(r"""{%\s*static\s+['"](?P<path>[^'"]+)['"]""")


def references(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    patterns = [SOURCE_MAP] + ([CSS_URL, CSS_IMPORT] if path.suffix == ".css" else [])
    found = [match["url"] for pattern in patterns for match in pattern.finditer(text)]
    # Inline data, other sites and in-page anchors are not files of ours.
    return [url for url in found if not re.match(r"(data:|[a-z]+://|//|#)", url)]


@pytest.mark.parametrize("entry", ENTRIES, ids=[entry["path"] for entry in ENTRIES])
def test_vendored_file_has_the_listed_sha256(entry):
    data = (VENDOR / entry["path"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{entry['path']} changed: update MANIFEST.toml"
    for key in ("package", "version", "source", "license"):
        assert entry[key], (entry["path"], key)
    if "stripped" in entry:
        # Proves the file is the package's file minus exactly the recorded text.
        upstream = data + entry["stripped"].encode()
        assert hashlib.sha256(upstream).hexdigest() == entry["upstream_sha256"], entry["path"]


def test_every_vendored_file_is_listed_once():
    listed = [entry["path"] for entry in ENTRIES]
    present = sorted(
        path.relative_to(VENDOR).as_posix() for path in VENDOR.rglob("*") if path.is_file() and path != MANIFEST
    )
    assert sorted(listed) == present
    assert len(set(listed)) == len(listed)


@pytest.mark.parametrize(
    "path",
    sorted(p for p in STATIC.rglob("*") if p.suffix in {".css", ".js"}),
    ids=lambda p: p.relative_to(STATIC).as_posix(),
)
def test_css_and_js_reference_only_files_that_exist(path):
    missing = [
        url for url in references(path) if not (path.parent / url.split("?")[0].split("#")[0]).resolve().is_file()
    ]
    assert not missing, f"{path.relative_to(ROOT)} references files that are not in the repo: {missing}"


def test_every_static_path_in_a_template_exists():
    templates = [
        template
        for directory in [ROOT / "templates", *ROOT.glob("*/templates"), *ROOT.glob("cohorta/*/templates")]
        for template in directory.rglob("*.html")
    ]
    assert templates
    used = {
        match["path"]: template for template in templates for match in TEMPLATE_STATIC.finditer(template.read_text())
    }
    missing = {path: str(template.relative_to(ROOT)) for path, template in used.items() if not finders.find(path)}
    assert "img/favicon.ico" in used
    assert not missing, missing


def test_favicon_ico_redirects_to_the_static_icon(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"] == "/static/img/favicon.ico"
    assert finders.find("img/favicon.ico")
