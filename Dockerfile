# syntax=docker/dockerfile:1
#
# microbot as a container image: a static Go binary (CGO_ENABLED=0) on a
# distroless base that has CA certificates and time zones, no shell, and
# runs as a non-root user (uid 65532).
#
#   docker build -t microbot .
#   docker run --rm -it microbot                   # the console bot
#   docker run --rm -p 8080:8080 \
#     -e MICRO_INPUTS=slack -e MICRO_SLACK_APP_TOKEN -e MICRO_SLACK_BOT_TOKEN \
#     -e MICRO_REGISTRY=consul -e MICRO_REGISTRY_ADDRESS=consul:8500 microbot
#
# /healthz, /readyz and /metrics listen on :8080 (MICRO_HTTP_ADDRESS).
# Logs are JSON unless a terminal is attached (-t). See docs/ops.md.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
# Dependencies first: this layer is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags="-s -w" -o /out/microbot ./cmd/microbot

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/microbot /usr/local/bin/microbot
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
ENV MICRO_HTTP_ADDRESS=:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/microbot"]
