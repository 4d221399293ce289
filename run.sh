#!/usr/bin/env bash
# Run the CoE dashboard on embedded defaults (SQLite, in-process channel layer and Celery): set up, then serve.
set -euo pipefail
source "$(dirname "$0")/scripts/bootstrap.sh"
python manage.py migrate --noinput >/dev/null
echo "Preparing demo data and the router (the first run trains it: about a minute) …"
login="$(python manage.py setup_demo)"
port="${PORT:-8000}"
echo
echo "  CoE dashboard: http://127.0.0.1:${port}/"
echo "  ${login}"
echo
COE_WARM_START=1 exec daphne -b 127.0.0.1 -p "$port" coe_site.asgi:application
