# Spine: `make demo` runs the whole system on this machine, `make test` runs
# every test. Both install what they need (Debian packages through sudo
# when not root).
GO      ?= go
BIN     := bin/spine
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build test demo bench fmt vet clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/spine

test:
	bash deploy/test.sh

demo: build
	bash deploy/demo.sh $(BIN)

bench: build
	$(GO) test -run='^$$' -bench=. -benchmem ./bench/...

fmt:
	gofmt -w .

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
