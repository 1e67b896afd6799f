#!/bin/sh
# Container entrypoint (also usable on a host): apply the migrations, publish the static files
# for nginx, then hand over to the command (gunicorn by default, see the Dockerfile's CMD).
#   RUN_MIGRATIONS=0     skip `flask db upgrade` (e.g. on extra web instances)
#   STATIC_EXPORT_DIR    copy app/static there (a volume nginx serves as /static/); unset = skip
set -eu
cd "$(dirname "$0")/.."
export FLASK_APP="${FLASK_APP:-run.py}"

if [ "${RUN_MIGRATIONS:-1}" != "0" ]; then
  echo "entrypoint: flask db upgrade"
  # Two instances starting together on an empty PostgreSQL: the loser's transaction fails,
  # the container exits non-zero and its restart finds the schema up to date.
  flask db upgrade
fi

if [ -n "${STATIC_EXPORT_DIR:-}" ]; then
  echo "entrypoint: static files -> $STATIC_EXPORT_DIR"
  mkdir -p "$STATIC_EXPORT_DIR"
  cp -R app/static/. "$STATIC_EXPORT_DIR/"
fi

if [ "$#" -eq 0 ]; then
  set -- gunicorn --config gunicorn.conf.py run:app
fi
exec "$@"
