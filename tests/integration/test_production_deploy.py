"""The production deploy: the Procfile's release step against an empty database, then its gunicorn (HTTP)
and daphne (websockets) with DEBUG=0, gunicorn serving the pages and the hashed static files collectstatic
wrote."""

import http.client
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.integration.helpers import ROOT, base_env, free_port, processes, wait_for_health

pytestmark = [pytest.mark.service, pytest.mark.slow]

PAGES = ["/", "/accounts/login/", "/accounts/signup/", "/admin/login/", "/api/docs/"]
# What a TLS-terminating proxy adds; BEHIND_TLS_PROXY=1 makes Django trust it.
PROXY = {"X-Forwarded-Proto": "https", "Host": "127.0.0.1"}
HASHED = re.compile(r"\.[0-9a-f]{12}\.\w+$")


def procfile_line(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name}: line in the Procfile")


@pytest.fixture
def empty_database_url():
    """A database of its own, created empty, as a first deploy finds it."""
    server = urlsplit(os.environ["DATABASE_URL"])
    name = f"cohorta_release_{uuid.uuid4().hex[:8]}"
    maintenance = urlunsplit(server._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(server._replace(path=f"/{name}"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request, redirects not followed (they are part of what is checked)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers if headers is not None else PROXY)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_release_step_then_gunicorn_serves_pages_and_hashed_static_files(tmp_path, empty_database_url):
    static_root = tmp_path / "staticfiles"
    env = base_env(
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CSRF_TRUSTED_ORIGINS="https://127.0.0.1",
        BEHIND_TLS_PROXY="1",
        DATABASE_URL=empty_database_url,
        REDIS_URL=os.environ["REDIS_URL"],
        STATIC_ROOT=str(static_root),
        MEDIA_ROOT=str(tmp_path / "media"),
        DB_CONN_MAX_AGE="0",
        # The Procfile says `python`: this interpreter's, as on a host whose PATH has the venv first.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )

    release = subprocess.run(
        ["sh", "-c", procfile_line("release")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert release.returncode == 0, release.stdout[-4000:] + release.stderr[-4000:]
    assert (static_root / "staticfiles.json").is_file()

    port, ws_port = free_port(), free_port()
    with processes(tmp_path) as group:
        # Both processes as the Procfile starts them: gunicorn for HTTP, daphne for the websockets.
        group.start("web", ["sh", "-c", procfile_line("web")], {**env, "PORT": str(port), "WEB_CONCURRENCY": "1"})
        group.start("ws", ["sh", "-c", procfile_line("ws")], {**env, "WS_PORT": str(ws_port)})
        health = wait_for_health(f"http://127.0.0.1:{port}", group)
        assert health["mode"] == "service"
        assert wait_for_health(f"http://127.0.0.1:{ws_port}", group)["mode"] == "service"

        pages = {path: get(port, path) for path in PAGES}
        plain_http = get(port, "/accounts/login/", headers={"Host": "127.0.0.1"})
        landing = pages["/"][2].decode()
        static_urls = sorted(set(re.findall(r"""(?:href|src)="(/static/[^"]+)""", landing)))
        assets = {url: get(port, url) for url in static_urls}
        docs_html = pages["/api/docs/"][2].decode()
        docs_assets = {url: get(port, url) for url in re.findall(r"""(/static/[^"']+)""", docs_html)}
        favicon = get(port, "/favicon.ico")
        favicon_file = get(port, favicon[1].get("Location", ""))
        logs = group.logs()

    for path, (status, _, body) in pages.items():
        assert status == 200, (path, status, body[:2000], logs)
    # The production settings are the ones running: plain HTTP is sent to HTTPS.
    assert plain_http[0] == 301 and plain_http[1]["Location"].startswith("https://"), plain_http[:2]

    assert "/static/css/cohorta.css" not in landing
    assert any("/vendor/bootstrap/bootstrap.min." in url for url in static_urls), static_urls
    for url, (status, headers, body) in {**assets, **docs_assets}.items():
        assert HASHED.search(url), f"{url} is not a hashed name"
        assert status == 200 and body, (url, status)
        assert "max-age=315360000" in headers.get("Cache-Control", ""), (url, headers)
    assert docs_assets, "the API docs page loads no static files"
    stylesheet = next(url for url in static_urls if "/css/cohorta." in url)
    assert assets[stylesheet][2] == (ROOT / "static/css/cohorta.css").read_bytes()

    assert favicon[0] == 302 and HASHED.search(favicon[1]["Location"]), favicon[:2]
    assert favicon_file[0] == 200 and favicon_file[2] == (ROOT / "static/img/favicon.ico").read_bytes()
