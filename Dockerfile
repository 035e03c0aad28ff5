# jitape: multi-stage build; the runtime image has only the binary, flac and a non-root user.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY src src
COPY config config
COPY benches benches
RUN cargo build --release --locked --bin jitape

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends flac ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/jitape --shell /usr/sbin/nologin jitape \
 && mkdir -p /recordings /etc/jitape \
 && chown jitape:jitape /recordings
COPY --from=build /src/target/release/jitape /usr/local/bin/jitape
COPY config/jitape.toml /etc/jitape/jitape.toml
USER jitape
VOLUME ["/recordings"]
ENV JITAPE_RECORDING_DIR=/recordings
ENTRYPOINT ["/usr/local/bin/jitape"]
CMD ["run", "--config", "/etc/jitape/jitape.toml"]
