# wva's container image: a static (musl) binary on distroless, run as non-root.
#   docker build -t ghcr.io/llm-d/wva:0.1.0 .
# The build stage runs the same `cargo build --release` as `make build` and CI; only the target
# (CARGO_BUILD_TARGET, static musl) differs, so the image needs no libc.
FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* && rustup target add x86_64-unknown-linux-musl
ENV CARGO_BUILD_TARGET=x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY scenarios ./scenarios
RUN cargo build --release --locked \
 && cp target/x86_64-unknown-linux-musl/release/wva /wva

# distroless/static: CA certificates and /etc/passwd with the nonroot user (65532), nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /wva /usr/local/bin/wva
USER 65532:65532
# For a glibc build of this image (musl, the default here, ignores them): one arena, fixed mmap
# and trim thresholds, so freed memory goes back to the system (docs/performance.md).
ENV MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072
ENTRYPOINT ["/usr/local/bin/wva"]
CMD ["run"]
