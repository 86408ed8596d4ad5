# syntax=docker/dockerfile:1
# The Action's image: a static rust-image-action binary on a minimal base with CA
# certificates. (The release workflow that builds and pushes it with the project
# itself arrives with the Action issue; until then any Dockerfile builder works.)
FROM rust:1-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
    && apt-get update && apt-get install -y --no-install-recommends musl-tools
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
    && cp target/x86_64-unknown-linux-musl/release/rust-image-action /rust-image-action

FROM debian:bookworm-slim AS certs
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates

FROM scratch
COPY --from=certs /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /rust-image-action /usr/local/bin/rust-image-action
ENTRYPOINT ["/usr/local/bin/rust-image-action"]
