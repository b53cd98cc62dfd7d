# ringlb container image.
#
#   docker build -t ringlb .
#   docker run --security-opt seccomp=deploy/seccomp-io_uring.json -p 8080:80 ringlb
#
# The build stage runs the same locked release build as .ci/run, so CI keeps this file honest
# even though no Docker engine runs there. The runtime stage is distroless: glibc and libgcc
# (all the binaries link against), CA certificates and a non-root user, no shell, no package
# manager; everything ringlb needs is copied in below.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ringlb -p loadtest

# Debian 12, like the build stage, so the glibc the binaries were linked against is there.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/ringlb /usr/local/bin/ringlb
# The load-test binary doubles as a demo backend: `loadtest replica --listen 0.0.0.0:8001`
# (docker-compose.yml runs the seed's two replicas with it).
COPY --from=build /src/target/release/loadtest /usr/local/bin/loadtest
# The seed's targets, with the admin listener on every interface so the orchestrator can reach
# /healthz; ringlb's own default (127.0.0.1:9100) would be unreachable from outside.
COPY deploy/ringlb.container.toml /etc/ringlb/ringlb.toml
# uid/gid 65532 ("nonroot" in distroless). Docker lets unprivileged users bind ports below 1024
# inside a container (net.ipv4.ip_unprivileged_port_start=0), so listen on :80 works.
USER 65532:65532
# 80: the balanced traffic (`listen`); 9100: /metrics, /status, /healthz (`[admin] listen`).
EXPOSE 80 9100
# SIGTERM starts the graceful stop: no new connections, open ones finish (drain_timeout, 30 s
# by default), then exit 0. Give the container more than that: docker stop -t 35.
STOPSIGNAL SIGTERM
# There is no curl or shell in this image: ringlb probes its own admin listener (address taken
# from the same config) and exits 0 on 200, 1 otherwise. /healthz turns 503 during the drain.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["ringlb", "--probe-admin", "--config", "/etc/ringlb/ringlb.toml"]
# io_uring is blocked by Docker's default seccomp profile: run with deploy/seccomp-io_uring.json
# (Docker's default plus io_uring_setup, io_uring_enter and io_uring_register) for the io_uring
# backend; without it ringlb runs on its epoll backend (io_backend = "auto"). See deploy/README.md.
ENTRYPOINT ["ringlb", "--config", "/etc/ringlb/ringlb.toml"]
