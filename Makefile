# Log Processing Service: build, run, test.
# Every target works on a fresh machine with Go; `make test` is what CI runs.

GO        ?= go
BIN       := bin
EXE       := $(shell $(GO) env GOEXE)
GEN_ADDR  ?= 127.0.0.1:8080
API_ADDR  ?= 127.0.0.1:9090
INTERVAL  ?= 250
FUZZTIME  ?= 60s

.PHONY: all build run test lint fmt-check vet staticcheck race cross fuzz bench bench-search screenshot clean

all: build

## build: compile the binaries into bin/
build:
	@[ -e "$(BIN)/log-processor$(EXE)" ] || echo "building into $(BIN)/ (the first build also compiles the pure-Go SQLite driver: a few minutes on a small machine; later builds take seconds)"
	$(GO) build -o $(BIN)/mock-log-generator$(EXE) ./mock-log-generator/cmd
	$(GO) build -o $(BIN)/log-processor$(EXE) ./log-processor/cmd
	$(GO) build -o $(BIN)/loadtest$(EXE) ./log-processor/cmd/loadtest

## run: generator on $(GEN_ADDR) and processor on $(API_ADDR) pointed at it; Ctrl+C stops both
## (a Go launcher, so it needs no POSIX shell; it exits non-zero if either program fails)
run: build
	@$(GO) build -o $(BIN)/run$(EXE) ./scripts/run
	@$(BIN)/run$(EXE) --generator "$(BIN)/mock-log-generator$(EXE)" --processor "$(BIN)/log-processor$(EXE)" \
		--gen-addr "$(GEN_ADDR)" --api-addr "$(API_ADDR)" --interval "$(INTERVAL)"

## test: formatting, vet, and every test with the race detector, saying what it does as it goes
test: fmt-check vet race

## lint: formatting, vet and staticcheck (the pinned version, fetched by go run)
STATICCHECK_VERSION ?= v0.8.2
lint: fmt-check vet staticcheck

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

fmt-check:
	@echo "== formatting (gofmt; seconds)"
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	@echo "== go vet (about a minute on a cold cache, seconds after)"
	@$(GO) vet ./...

race:
	@echo "== tests with the race detector (about 10 minutes on 2 cores with an empty cache, 5 after); a line per package as it finishes"
	@[ -n "$$LOGPROC_TEST_POSTGRES_DSN" ] || echo "note: the PostgreSQL tests will be skipped: LOGPROC_TEST_POSTGRES_DSN is not set (docs/development.md says how to start a throwaway server)"
	@$(GO) run ./scripts/testrun -race -count=1 ./...

## cross: build for Windows, macOS and Linux on ARM (no C compiler needed); CI runs it
cross:
	@echo "== cross-builds: windows/amd64, darwin/arm64, linux/arm64 (minutes on a cold cache: SQLite is compiled for each)"
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	GOOS=linux GOARCH=arm64 $(GO) build ./...

## fuzz: run the parser's fuzz target for $(FUZZTIME)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./log-processor/internal/parser

## bench: micro-benchmarks (benchstat-comparable output), then the end-to-end
## load suite on loopback (PostgreSQL too when LOGPROC_TEST_POSTGRES_DSN is set)
BENCH_DURATION ?= 8s
BENCH_SOAK     ?= 60s
# nats-server for the JetStream rows: on the PATH, or where `go install` puts it.
NATS_SERVER    ?= $(shell command -v nats-server 2>/dev/null || ls "$$($(GO) env GOPATH)/bin/nats-server" 2>/dev/null)
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(BIN)/loadtest$(EXE) suite --generator $(BIN)/mock-log-generator$(EXE) --processor $(BIN)/log-processor$(EXE) \
		--duration $(BENCH_DURATION) --warmup 2s --soak $(BENCH_SOAK) \
		$(if $(NATS_SERVER),--nats-server "$(NATS_SERVER)") \
		$(if $(LOGPROC_TEST_POSTGRES_DSN),--postgres-dsn "$(LOGPROC_TEST_POSTGRES_DSN)")
	$(MAKE) --no-print-directory bench-search

## bench-search: queries and ingest over a day of entries, without the search
## index and with it (SEARCH_ENTRIES=10000000 for the figures in docs/performance.md:
## about 40 minutes on 2 cores)
SEARCH_ENTRIES ?= 1000000
bench-search: build
	$(BIN)/loadtest$(EXE) search --entries $(SEARCH_ENTRIES) --duration $(BENCH_DURATION) \
		$(if $(LOGPROC_TEST_POSTGRES_DSN),--postgres-dsn "$(LOGPROC_TEST_POSTGRES_DSN)")

## screenshot: the dashboard in headless Chromium, 30 s after start, into log-processor/docs/dashboard.png
screenshot:
	LOGPROC_REQUIRE_BROWSER=1 LOGPROC_SCREENSHOT="$(CURDIR)/log-processor/docs/dashboard.png" LOGPROC_SCREENSHOT_POINTS=30 \
		$(GO) test -count=1 -run '^TestDashboardInBrowser$$' ./log-processor/internal/cli

clean:
	rm -rf $(BIN)
