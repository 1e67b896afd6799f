# Guichet web image: gunicorn serving run:app as a non-root user; migrations run at start.
# Build and run with docker-compose.yml (web + PostgreSQL + Redis + nginx); see the README.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# An unprivileged user owns nothing but the instance folder and the static export volume.
RUN groupadd --system --gid 10001 guichet \
 && useradd --system --uid 10001 --gid guichet --home-dir /app --no-create-home \
            --shell /usr/sbin/nologin guichet

# Dependencies first (pinned in requirements.txt), so code changes reuse this layer.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
RUN chmod 0755 deploy/entrypoint.sh \
 && mkdir -p /app/instance /srv/static \
 && chown guichet:guichet /app/instance /srv/static

ENV GUICHET_ENV=production \
    FLASK_APP=run.py \
    GUNICORN_BIND=0.0.0.0:8000 \
    STATIC_EXPORT_DIR=/srv/static

USER guichet
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# entrypoint.sh: `flask db upgrade`, copy app/static to $STATIC_EXPORT_DIR, then exec the CMD.
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "run:app"]
