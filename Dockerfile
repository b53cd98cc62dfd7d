# ringlb container image.
# The build stage runs the same locked release build as .ci/run, so CI keeps this file honest
# even though no Docker engine runs there.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ringlb -p loadtest

FROM debian:bookworm-slim
RUN useradd --system --no-create-home --uid 10001 ringlb
COPY --from=build /src/target/release/ringlb /usr/local/bin/ringlb
# The load-test binary doubles as a demo backend: `loadtest replica --listen 0.0.0.0:8001`.
COPY --from=build /src/target/release/loadtest /usr/local/bin/loadtest
COPY config/ringlb.toml /etc/ringlb/ringlb.toml
USER ringlb
# Docker lets unprivileged users bind ports below 1024 inside a container
# (net.ipv4.ip_unprivileged_port_start=0), so the default listen on :80 works as non-root.
EXPOSE 80
STOPSIGNAL SIGTERM
# io_uring is blocked by Docker's default seccomp profile: run with a profile that allows
# io_uring_setup, io_uring_enter and io_uring_register (see README, "Running in containers").
ENTRYPOINT ["ringlb", "--config", "/etc/ringlb/ringlb.toml"]
