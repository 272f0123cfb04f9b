# Makefile: the commands a newcomer and CI use.
#   make run    runs the bot on the embedded defaults (console input, local registry)
#   make test   installs what the tests need (idempotent), then runs every test with -race

GO ?= go

.PHONY: run test setup vet bench

run:
	$(GO) run ./cmd/microbot

setup:
	bash .ci/setup

vet:
	test -z "$$(gofmt -l $$(git ls-files "*.go"))" || { gofmt -l $$(git ls-files "*.go"); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

test: setup vet
	$(GO) test -race -timeout 25m ./...
	cd bench && $(GO) test -race -timeout 5m ./...

bench:
	cd bench && $(GO) run ./cmd/rpcbench
	cd bench && $(GO) run ./cmd/brokerbench
