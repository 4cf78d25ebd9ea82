# driftwatch in a container. Build with `make image`: it puts driftwatch and its dependencies as
# wheels in build/wheels first, so the image build needs no access to a Python package index.
# Run it with the engine's socket mounted, e.g.
#   docker run --rm -v /var/run/docker.sock:/var/run/docker.sock -v driftwatch:/data driftwatch scan debian:12
# It follows its own advice: the last stage upgrades packages, so every build carries today's
# security fixes however long the earlier layers stay cached. Develop with `--target app`.
ARG BASE=debian:12

FROM ${BASE} AS app
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY build/wheels /wheels
RUN python3 -m venv /opt/driftwatch \
 && /opt/driftwatch/bin/pip install --no-cache-dir --no-index --find-links /wheels driftwatch \
 && rm -rf /wheels
ENV DRIFTWATCH_DB=/data/driftwatch.db
VOLUME /data
ENTRYPOINT ["/opt/driftwatch/bin/driftwatch"]
CMD ["--help"]

FROM app AS final
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get -y upgrade \
 && rm -rf /var/lib/apt/lists/*
