# Spine: `make demo` runs the whole system on this machine, `make test` runs
# every test. Both install what they need (Debian packages through sudo
# when not root).
GO      ?= go
BIN     := bin/spine
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build test demo bench bench-go soak fmt vet clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/spine

test:
	bash deploy/test.sh

demo: build
	bash deploy/demo.sh $(BIN)

# bench runs the whole system on this machine against a private ClickHouse
# and prints throughput, latency, memory, disk and stitching accuracy, next
# to a warehouse-native peer (see bench/RESULTS.md).
BENCH_CH_DIR  ?= /tmp/spine-bench-ch
BENCH_PERSONS ?= 20000

bench: build
	bash deploy/clickhouse.sh start $(BENCH_CH_DIR) >/dev/null
	. $(BENCH_CH_DIR)/env && $(BIN) bench --persons $(BENCH_PERSONS) --clickhouse $$SPINE_TEST_CLICKHOUSE --out bench/out; \
	  rc=$$?; bash deploy/clickhouse.sh stop $(BENCH_CH_DIR); exit $$rc

# soak: the crash-recovery test at a million messages and 20 SIGKILLs
# (about 70 seconds on 2 cores; the seed to replay is printed).
soak:
	SPINE_CRASH_EVENTS=1000000 $(GO) test -run '^TestCrashRecoveryExact$$' -count=1 -timeout 60m -v ./cmd/spine -crash.kills=20

# bench-go runs the Go micro-benchmarks (decoders, resolution, ClickHouse writes).
bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem ./bench/...

fmt:
	gofmt -w .

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
