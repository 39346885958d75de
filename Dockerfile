# shipgate container image.
#   docker build -t shipgate .
#   docker run -e DATABASE_URL=... -e SHIPGATE_MASTER_KEY=... -p 8080:8080 shipgate
# or `docker compose up --build` (see docker-compose.yml).
#
# Keep `target/` out of the build context with a .dockerignore (it is gigabytes).

# ---------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------
# The full (non-slim) image: it carries the C toolchain that `ring` (the rustls crypto
# provider) compiles with. The tag pins the Rust release the project is tested on.
FROM rust:1.95-bookworm AS builder
WORKDIR /src

# sqlx's query! macros check against the committed `.sqlx/` metadata: no database
# needed at build time (the same setting as .cargo/config.toml).
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never

# Dependency layer: compile every dependency against dummy sources, so this layer is
# rebuilt only when a Cargo.toml or Cargo.lock change, not on every source edit.
# (If a build.rs, benches or examples are added to a crate, create stubs here too.)
COPY Cargo.toml Cargo.lock ./
COPY crates/shipgate/Cargo.toml crates/shipgate/
COPY crates/pgembed/Cargo.toml crates/pgembed/
COPY crates/sims/Cargo.toml crates/sims/
RUN for c in shipgate pgembed sims; do mkdir -p crates/$c/src && touch crates/$c/src/lib.rs; done \
 && echo 'fn main() {}' > crates/shipgate/src/main.rs \
 && cargo build --release --locked --bin shipgate \
 && cargo clean --release -p shipgate -p shipgate-pgembed -p shipgate-sims \
 && rm -rf crates/*/src
# `cargo clean -p` drops the dummies' artifacts: otherwise sources copied with old
# timestamps could look "older" than them and cargo would ship the empty main.

# The workspace itself: migrations/ is embedded by sqlx::migrate!, .sqlx/ feeds the
# offline query checks, config/ and openapi/ are there for sources that embed them.
COPY crates/ crates/
COPY migrations/ migrations/
COPY .sqlx/ .sqlx/
COPY config/ config/
COPY openapi/ openapi/
# --locked: build exactly the committed Cargo.lock, fail rather than resolve anew.
RUN cargo build --release --locked --bin shipgate \
 && install -m 0755 target/release/shipgate /usr/local/bin/shipgate

# ---------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------
# Same Debian release as the builder, so the glibc the binary links against matches.
FROM debian:bookworm-slim

# ca-certificates only: outbound HTTPS to carriers and webhook targets verifies against
# the system trust store. No curl, no shell tools added (smaller, less to patch).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# An unprivileged user with a fixed uid/gid, so volume ownership and Kubernetes
# `runAsNonRoot` checks are predictable.
RUN groupadd --system --gid 10001 shipgate \
 && useradd --system --uid 10001 --gid shipgate --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin shipgate

COPY --from=builder /usr/local/bin/shipgate /usr/local/bin/shipgate
# The documented defaults file; every setting can be overridden with SHIPGATE_* variables.
COPY config/default.toml /etc/shipgate/default.toml
# The defaults are compiled in; this copy documents them and is the file to edit or mount.
ENV SHIPGATE_CONFIG=/etc/shipgate/default.toml

# Listen on all interfaces inside the container (the default is loopback-only).
ENV SHIPGATE_LISTEN=0.0.0.0:8080
EXPOSE 8080

# Numeric user: lets orchestrators verify "not root" without reading /etc/passwd.
USER 10001:10001

# Liveness probe without curl: bash (part of every Debian image) speaks HTTP/1.0 to
# /healthz over /dev/tcp on the port taken from SHIPGATE_LISTEN and requires a 200.
# /healthz rather than /readyz, so a database outage does not mark (and, under Swarm,
# replace) every instance; orchestrators should use /readyz for traffic routing.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["bash", "-c", "listen=${SHIPGATE_LISTEN:-:8080}; exec 3<>/dev/tcp/127.0.0.1/${listen##*:} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r -t 4 proto code rest <&3 && [[ $code == 200 ]]"]

# `shipgate serve` runs migrations at start, then the API and the background workers.
# Other subcommands: `docker run IMAGE migrate`, `docker run IMAGE tenant create NAME`, ...
ENTRYPOINT ["shipgate"]
CMD ["serve"]
