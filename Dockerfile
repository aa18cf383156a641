# One Dockerfile, one image per deployable:
#   docker build --target service --build-arg SERVICE=polls  -t polls-platform/polls .
#   docker build --target service --build-arg SERVICE=choice -t polls-platform/choices .
#   docker build --target service --build-arg SERVICE=vote   -t polls-platform/votes .
#   docker build --target gateway -t polls-platform/gateway .
# A service image holds only its own code, servicekit and its own pinned requirements. Its entrypoint
# (scripts/entrypoint.sh) runs `web` (granian via servicekit.server, default), `worker`, `beat`, `migrate` or `manage ...`.

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm
ARG NGINX_IMAGE=nginx:1.27.5-bookworm

# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS python-base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

# ---------------------------------------------------------------------------------------------------
FROM python-base AS service
# polls | choice | vote (the requirements file and the service folder follow from it)
ARG SERVICE=polls
WORKDIR /app
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r "requirements/${SERVICE}.txt"
COPY servicekit/ servicekit/
RUN pip install --no-cache-dir --no-deps ./servicekit
COPY ${SERVICE}_service/ ${SERVICE}_service/
# The event registry (types, consumers, schemas) every service validates against.
COPY contracts/events/ contracts/events/
COPY scripts/entrypoint.sh /usr/local/bin/entrypoint
ENV SERVICE_PACKAGE=${SERVICE}_service \
    EVENT_CONTRACTS_DIR=/app/contracts/events \
    RUN_DIR=/app/run \
    DJANGO_ENV=production \
    WEB_BIND=0.0.0.0:8000 \
    FORWARDED_ALLOW_IPS=* \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics
WORKDIR /app/${SERVICE}_service
# Static files are collected at build time (whitenoise serves them); the build needs no secrets.
RUN mkdir -p /app/run \
    && DJANGO_ENV=development python manage.py collectstatic --noinput \
    && rm -rf /app/run/secrets /app/run/broker /app/run/cache /app/run/*.sqlite3 \
    && chown -R app:app /app/run \
    && chmod 0755 /usr/local/bin/entrypoint
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WEB_BIND', ':8000').rsplit(':', 1)[1] + '/healthz', timeout=2)"]
ENTRYPOINT ["/usr/local/bin/entrypoint"]
CMD ["web"]

# ---------------------------------------------------------------------------------------------------
FROM python-base AS gateway-build
WORKDIR /src
COPY nginx/ nginx/
COPY scripts/gateway.py scripts/gateway.py
COPY web/ web/
RUN python web/build.py \
    && python scripts/gateway.py compose --out /out/nginx.conf \
    && python scripts/gateway.py k8s --out /out/k8s.conf

FROM ${NGINX_IMAGE} AS gateway
COPY --from=gateway-build /out/nginx.conf /etc/nginx/nginx.conf
COPY --from=gateway-build /out/k8s.conf /etc/nginx/k8s.conf
COPY --from=gateway-build /src/web/dist/ /usr/share/nginx/html/
RUN chown -R 101:101 /usr/share/nginx/html
USER 101:101
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["curl", "-fsS", "http://127.0.0.1:8080/healthz"]
CMD ["nginx", "-g", "daemon off;"]
