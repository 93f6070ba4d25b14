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

# Client libraries for the brokers the image should talk to, installed next
# to flower. Override with --build-arg BROKER_CLIENTS="redis librabbitmq".
ARG BROKER_CLIENTS="redis"

COPY . /usr/src/flower
RUN pip install --no-cache-dir /usr/src/flower ${BROKER_CLIENTS} \
    && rm -rf /usr/src/flower \
    && useradd --create-home --home-dir /home/flower --uid 1000 --user-group \
        --shell /usr/sbin/nologin flower

USER flower
# A flowerconfig.py mounted here is picked up automatically.
WORKDIR /home/flower

EXPOSE 5555

# Follows FLOWER_PORT and FLOWER_URL_PREFIX when they are set.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD python -c "import os, sys, urllib.request; port = os.environ.get('FLOWER_PORT') or '5555'; prefix = (os.environ.get('FLOWER_URL_PREFIX') or '').strip('/'); url = 'http://localhost:%s/%shealthcheck' % (port, prefix + '/' if prefix else ''); sys.exit(0 if urllib.request.urlopen(url, timeout=5).read().strip() == b'OK' else 1)"

# Celery reads the broker from CELERY_BROKER_URL by itself.
ENTRYPOINT ["/bin/sh", "-c", "if [ \"$#\" -eq 0 ] || [ \"${1#-}\" != \"$1\" ]; then set -- celery flower \"$@\"; elif [ \"$1\" = flower ]; then set -- celery \"$@\"; fi; exec \"$@\"", "flower-entrypoint"]
CMD []
