# syntax=docker/dockerfile:1
# The Action's image (`docker://ghcr.io/org/rust-image-action:v1` in action.yml): a static
# rust-image-action binary and CA certificates on an empty base. release.yml builds and
# pushes it with the project itself; any Dockerfile builder works too.
#
# Everything of ours lives under /ria. In the Action's container, the `container`
# isolation backend unpacks the user's base image onto the container's own root and keeps
# only /ria (RIA_CONTAINER_KEEP, default /ria) and the paths the runner mounts, such as
# /github/workspace; anything we put elsewhere would be replaced by the user's files.

FROM rust:1-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
    && apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the binary is built from: the context also holds target/ and test data.
COPY Cargo.toml Cargo.lock ./
COPY src src
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
    && mkdir -p /out \
    && cp target/x86_64-unknown-linux-musl/release/rust-image-action /out/

FROM debian:bookworm-slim AS certs
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

FROM scratch
LABEL org.opencontainers.image.title="rust-image-action" \
      org.opencontainers.image.description="Builds Dockerfiles into OCI images without a daemon, as a GitHub Action" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=certs /etc/ssl/certs/ca-certificates.crt /ria/certs/ca-certificates.crt
COPY --from=build /out/rust-image-action /ria/bin/rust-image-action
# RIA_CONTAINER tells `--isolation auto` that this disposable container is its own to
# unpack base images onto; SSL_CERT_FILE is read by the registry client.
ENV RIA_CONTAINER=1 \
    SSL_CERT_FILE=/ria/certs/ca-certificates.crt \
    PATH=/ria/bin
ENTRYPOINT ["/ria/bin/rust-image-action"]
