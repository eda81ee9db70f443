# syntax=docker/dockerfile:1
#
# The BlameTrail relay as a container image: a static binary on distroless, running as a
# non-root user, listening on all interfaces, with its data directory as a volume.
#
#   docker build -t blametrail-relay .
#   docker run -p 8080:8080 -v blametrail-data:/var/lib/blametrail blametrail-relay
#
# The default (last) stage compiles the relay from this source tree. goreleaser builds the
# release images from the binaries it has already built instead, with --target=release (see
# .goreleaser.yml); both stages share the runtime settings of "runtime". BuildKit (the
# default builder since Docker 23) builds only the stages the chosen target needs.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/blametrail-relay ./relay/cmd/blametrail-relay

FROM gcr.io/distroless/static-debian12:nonroot AS runtime
# 65532 is distroless's "nonroot". BuildKit creates a missing WORKDIR owned by the current
# USER, and a named volume mounted there starts out with that owner, so the relay can write
# its WAL and its generated API token.
USER 65532:65532
WORKDIR /var/lib/blametrail
ENV BLAMETRAIL_LISTEN=0.0.0.0:8080 \
    BLAMETRAIL_DATA_DIR=/var/lib/blametrail
EXPOSE 8080
VOLUME ["/var/lib/blametrail"]
ENTRYPOINT ["/usr/local/bin/blametrail-relay"]

# goreleaser (dockers_v2) puts each platform's binary at <os>/<arch>/ in the build context.
FROM runtime AS release
ARG TARGETPLATFORM
COPY ${TARGETPLATFORM}/blametrail-relay /usr/local/bin/blametrail-relay

FROM runtime
COPY --from=build /out/blametrail-relay /usr/local/bin/blametrail-relay
