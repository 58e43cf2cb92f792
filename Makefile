# shipote — build, run, test, lint and benchmark.
#
#   make run     builds and runs the demo on the embedded engine (no daemon)
#   make build-nocluster  the single-host daemon: no cluster transport linked
#   make run-cluster  three daemons on loopback joined as one cluster
#   make test    the whole test suite, with the race detector
#   make test-loaded  make test while two CPU-burning loops run
#   make lint    gofmt, go vet, staticcheck (both modules)
#   make bench   the benchmark harness (each figure beside its baseline)
#   make fuzz    each fuzz target for FUZZTIME (60s), one after the other
#   make soak    long fault-injection and soak runs

GO       ?= go
BIN      ?= bin
PKGS     ?= ./...
# bench/ is a Go module of its own (so that the main module does not
# require the plotting and SQLite packages); BENCHPKGS are its packages that
# make test and make lint cover (empty: none).
BENCHPKGS ?= ./...
TESTFLAGS ?= -race -short -count=1 -timeout 9m

.PHONY: all build build-nocluster run run-cluster test test-loaded lint bench bench-quick bench-setup soak deps clean fuzz

all: build

build:
	$(GO) build -o $(BIN)/shipote ./cmd/shipote

# build-nocluster builds the daemon without the cluster's transport and
# membership (protoactor-go's cluster and remote, gRPC, the etcd client):
# smaller on disk and in memory; its cluster flags are refused.
build-nocluster:
	$(GO) build -tags nocluster -o $(BIN)/shipote-nocluster ./cmd/shipote

run:
	$(GO) run ./cmd/shipote up examples/demo.yaml

run-cluster: build
	sh examples/cluster/run-cluster.sh $(BIN)/shipote

# deps installs the Debian packages that tests and benchmarks use, when
# they are missing (needs root and Debian's apt; skipped otherwise).
deps:
	@missing=""; \
	for tool in pv:pv tmux:tmux python3:python3-minimal socat:socat; do \
		cmd=$${tool%%:*}; pkg=$${tool##*:}; \
		command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing:$$missing"; \
			apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "missing tools:$$missing (tests that need them skip)"; \
		fi; \
	fi

test: deps
	$(GO) test $(TESTFLAGS) $(PKGS)
	$(GO) test $(TESTFLAGS) -tags nocluster ./cluster/
	$(if $(BENCHPKGS),$(GO) -C bench test $(TESTFLAGS) $(BENCHPKGS))

# fuzz runs every fuzz target (package:Target) for FUZZTIME each. A failing
# input is written under the package's testdata/fuzz/, where make test runs
# it from then on.
FUZZTIME ?= 60s
FUZZ_TARGETS = ./persistence:FuzzDecode \
	./messages:FuzzDecodeWorkspaceSpec ./messages:FuzzDecodePipelineSpec \
	./messages:FuzzDecodeCommandRef ./messages:FuzzDecodeUpFile ./messages:FuzzKeepUnknown

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run XXX -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# test-loaded runs make test while two CPU-burning loops run (BURNERS=n for
# more); .ci/loaded kills them when it ends, even on failure or a signal.
# leakcheck fails the run if any process the tests started outlives it.
test-loaded: deps
	$(GO) build -o $(BIN)/leakcheck ./internal/testproc/leakcheck
	sh .ci/loaded $(BIN)/leakcheck $(MAKE) test

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	$(GO) vet -tags nocluster $(PKGS)
	$(GO) tool staticcheck -tags nocluster $(PKGS)
	@deps=$$($(GO) mod graph | grep -E '^github\.com/shipote/shipote (gonum\.org/|codeberg\.org/go-fonts/|modernc\.org/sqlite@)' || true); \
	if [ -n "$$deps" ]; then echo "the main module requires packages only bench/ may use:"; echo "$$deps"; exit 1; fi
	$(if $(BENCHPKGS),$(GO) -C bench vet $(BENCHPKGS))
	$(if $(BENCHPKGS),$(GO) -C bench tool staticcheck $(BENCHPKGS))

# bench-setup installs the peers measured beside shipote: pm2 from the npm
# registry into a private prefix, supervisor from Debian's packages (its
# system service left stopped). A peer that cannot be installed gets a row
# saying why.
bench-setup:
	sh bench/peers/setup.sh

# The harness is built and exec'd, not run by `go run` (which would die on
# SIGTERM and leave it running): a SIGTERM or SIGINT to make reaches it, and
# it stops every daemon it started before it exits.
bench: deps build build-nocluster bench-setup
	$(GO) -C bench build -o $(abspath $(BIN))/shipote-bench ./cmd/shipote-bench
	SHIPOTE_BIN=$(CURDIR)/$(BIN)/shipote SHIPOTE_BIN_NOCLUSTER=$(CURDIR)/$(BIN)/shipote-nocluster exec $(BIN)/shipote-bench -out docs/benchmarks.md -charts docs/bench

bench-quick: deps build build-nocluster bench-setup
	$(GO) -C bench build -o $(abspath $(BIN))/shipote-bench ./cmd/shipote-bench
	SHIPOTE_BIN=$(CURDIR)/$(BIN)/shipote SHIPOTE_BIN_NOCLUSTER=$(CURDIR)/$(BIN)/shipote-nocluster exec $(BIN)/shipote-bench -quick

soak:
	SHIPOTE_SOAK=1 $(GO) test -race -count=1 -timeout 60m -run 'Soak|FaultInjection' ./...

clean:
	rm -rf $(BIN)
