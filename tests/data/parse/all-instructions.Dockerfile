# syntax=docker/dockerfile:1
ARG BASE=debian:bookworm
FROM ${BASE} AS base
LABEL org.opencontainers.image.title="demo" version=1.0 \
      description="a \"quoted\" value"
ENV PATH=/opt/bin:$PATH LANG=C.UTF-8
EXPOSE 80 443/tcp 53/udp 8000-8010
VOLUME ["/data", "/logs"]
VOLUME /cache /tmp/x
USER app:app
WORKDIR /srv
WORKDIR app
ADD --chown=1000:1000 --chmod=644 https://example.com/file.tar.gz /opt/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/a /a
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.10.1 /buildkit
COPY --from=busybox:stable --link --parents --exclude=*.md src/ lib/ /app/
COPY ["with space.txt", "/dst dir/"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --start-interval=2s --retries=3 CMD curl -f http://localhost/ || exit 1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ONBUILD RUN echo triggered
ONBUILD COPY . /src
CMD ["serve", "--port", "80"]
ENTRYPOINT ["/usr/bin/tini", "--"]
