#!/usr/bin/env bash
# Cohorta on a platform that routes one public PORT to one process (Heroku, Render, Railway, Fly with a
# single internal_port): gunicorn (HTTP) and daphne (/ws/) on local ports, Caddy on $PORT in front,
# routing between them as deploy/Caddyfile does on a server of your own. The Procfile's line becomes
#     web: deploy/single-port.sh
# (and the ws: line goes; release, worker and beat stay). Needs the caddy binary in the image.
# When any of the three exits, the others are stopped and the script exits: the platform restarts it.
set -euo pipefail
cd "$(dirname "$0")/.."

public_port="${PORT:-8080}"
http_port="${COHORTA_HTTP_PORT:-8100}"
ws_port="${COHORTA_WS_PORT:-8101}"

# The platform's router terminates TLS and sets X-Forwarded-For/-Proto: trust it (it connects from a
# private address), and let gunicorn find the client's address past it (config/forwarded.py).
export CADDY_TRUSTED_PROXIES="${CADDY_TRUSTED_PROXIES:-private_ranges}"
export TRUSTED_PROXIES="${TRUSTED_PROXIES:-127.0.0.1,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7}"

trap 'kill $(jobs -p) 2>/dev/null || true' EXIT INT TERM

PORT="$http_port" gunicorn --config config/gunicorn.conf.py --bind "127.0.0.1:$http_port" config.wsgi:application &
daphne -b 127.0.0.1 -p "$ws_port" --proxy-headers config.asgi:application &
SITE_ADDRESS=":$public_port" COHORTA_HTTP="127.0.0.1:$http_port" COHORTA_WS="127.0.0.1:$ws_port" \
    caddy run --config deploy/Caddyfile --adapter caddyfile &

wait -n
