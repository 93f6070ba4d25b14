# Container image for flower, the Celery web monitor.
#
#   docker build -t flower .
#   docker run --rm -p 5555:5555 -e CELERY_BROKER_URL=redis://redis-host:6379/0 flower
#
# With no arguments the container runs `celery flower`. Arguments after the
# image name are handled like this:
#   --port=5566 --basic_auth=a:b   options only: run `celery flower <options>`
#   flower --port=5566             run `celery flower --port=5566`
#   celery -A proj flower ...      any other command line: run it as given
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The image talks to Redis (kombu[redis], rediss:// included) and RabbitMQ
# (py-amqp) out of the box. More broker clients, installed next to flower:
#   --build-arg BROKER_CLIENTS="librabbitmq"
ARG BROKER_CLIENTS=""
# Extras of flower installed with it: postgresql lets --db take a postgresql:// URL.
ARG FLOWER_EXTRAS="postgresql"

# The same install script the clean-install test runs: a wheel of this tree
# with its runtime dependencies only.
COPY . /usr/src/flower
RUN FLOWER_EXTRAS="${FLOWER_EXTRAS}" \
    bash /usr/src/flower/scripts/install-flower.sh python /usr/src/flower ${BROKER_CLIENTS} \
    && rm -rf /usr/src/flower \
    && useradd --create-home --home-dir /home/flower --uid 1000 --user-group \
        --shell /usr/sbin/nologin flower \
    && install -d -o flower -g flower /data

USER flower
# A flowerconfig.py mounted here is picked up automatically.
WORKDIR /home/flower

EXPOSE 5555

# The image needs no writable file: run it with --read-only if you like. For
# --persistent, mount a volume on /data (owned by the flower user, uid 1000)
# and pass --persistent --db=/data/flower.db; or keep the history in PostgreSQL
# with --db=postgresql://user:password@host:5432/dbname (FLOWER_DB works too).

# Probes the running flower where it listens: it reads the process's own
# options (--port=N, FLOWER_PORT, the URL prefix, TLS, a unix socket...).
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["python", "-m", "flower.healthcheck"]

# Celery reads the broker from CELERY_BROKER_URL by itself.
ENTRYPOINT ["/bin/sh", "-c", "if [ \"$#\" -eq 0 ] || [ \"${1#-}\" != \"$1\" ]; then set -- celery flower \"$@\"; elif [ \"$1\" = flower ]; then set -- celery \"$@\"; fi; exec \"$@\"", "flower-entrypoint"]
CMD []
