# SPDX-License-Identifier: MIT
# godwit container image: both daemons, godwit-ctl and godwit-writer.
#   docker build -t godwit:0.1.0 .
# The build stage uses the same install script as the README; the runtime
# stage has only the runtime libraries, nbdfuse (for --mount) and nbdinfo.
# --mount needs /dev/fuse and CAP_SYS_ADMIN (or a privileged container, or a
# FUSE device plugin); without --mount no capability is needed.
FROM debian:bookworm-slim AS build
WORKDIR /src
# The dependencies first: their layer stays cached until install-deps.sh
# changes, so a source change rebuilds only the binaries.
COPY scripts/install-deps.sh scripts/
RUN scripts/install-deps.sh
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DGODWIT_WERROR=ON \
    && cmake --build /build -j"$(nproc)" \
       --target godwit-seeder godwit-leecher godwit-ctl godwit-writer \
    && DESTDIR=/staging cmake --install /build --prefix /usr/local

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       libgrpc29 libprotobuf-c1 libnbd0 libjansson4 libmicrohttpd12 libzstd1 libxxhash0 libnbd-bin fuse3 \
       ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 godwit \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin godwit \
    && mkdir -p /run/godwit /var/lib/godwit \
    && chown godwit:godwit /run/godwit /var/lib/godwit
COPY --from=build /staging/usr/local/bin/ /usr/local/bin/
USER 10001
EXPOSE 1337 1338
# Liveness only: the gRPC port accepts connections (GODWIT_HEALTH_PORT=1338
# for a leecher's control port). Kubernetes should probe grpc.health.v1
# instead (see k8s/).
HEALTHCHECK --interval=10s --timeout=3s \
    CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/${GODWIT_HEALTH_PORT:-1337}' || exit 1
CMD ["godwit-seeder", "--help"]
