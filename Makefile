# JeCloud: `make help` lists the targets.
GO      ?= go
BIN     ?= bin
LDFLAGS ?= -s -w
# urfave_cli_no_docs leaves out urfave/cli's man-page and markdown writers,
# which we do not use and which cost every jeagent run (docs/benchmarks.md).
TAGS    ?= urfave_cli_no_docs
export CGO_ENABLED ?= 0

.PHONY: help build cross deb test test-race lint fmt vet e2e bench fuzz demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/jeagent and bin/jepush for this machine
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/jeagent ./agent
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/jepush ./client

cross: ## static jeagent for linux amd64/arm64, jepush for linux and macOS amd64/arm64
	for arch in amd64 arm64; do \
	  GOOS=linux GOARCH=$$arch $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/jeagent-linux-$$arch ./agent || exit 1; \
	  for os in linux darwin; do \
	    GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/jepush-$$os-$$arch ./client || exit 1; \
	  done; \
	done

# nfpm: a well-kept Go tool that builds a .deb from a plain description
# (packaging/nfpm.yaml); run from the module proxy, not a dependency of ours.
NFPM    ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.43.0
VERSION ?= 0.1.0+git$(shell git rev-list --count HEAD 2>/dev/null || echo 0).$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

deb: ## bin/jeagent_VERSION_{amd64,arm64}.deb: binary, units, postinst running jeagent init (reproducible)
	mkdir -p $(BIN)/deb
	for arch in amd64 arm64; do \
	  GOOS=linux GOARCH=$$arch $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/jeagent-linux-$$arch ./agent || exit 1; \
	done
	sed 's|^ExecStart=/usr/local/bin/jeagent |ExecStart=/usr/bin/jeagent |' systemd/jeagent-rollforward.service > $(BIN)/deb/jeagent-rollforward.service
	for arch in amd64 arm64; do \
	  sed -e "s|\$${ARCH}|$$arch|g" -e "s|\$${VERSION}|$(VERSION)|g" packaging/nfpm.yaml > $(BIN)/deb/nfpm-$$arch.yaml; \
	  $(NFPM) package --packager deb --config $(BIN)/deb/nfpm-$$arch.yaml --target $(BIN)/ || exit 1; \
	done

test: lint ## all tests: lint, then the unit and integration tests with the race detector
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

e2e: build deb ## end-to-end tests on real Debian servers (systemd-nspawn; root; see docs/lab.md)
	JECLOUD_E2E=1 $(GO) test -tags e2e -count=1 -timeout 30m -v ./e2e/...

lint: fmt vet ## gofmt and go vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

fuzz: ## run each fuzzer for a bounded time (FUZZTIME, default 20s)
	$(GO) test ./internal/bundle/ -run '^$$' -fuzz FuzzExtract -fuzztime $${FUZZTIME:-20s} -fuzzminimizetime 10x
	$(GO) test ./internal/state/ -run '^$$' -fuzz FuzzApp -fuzztime $${FUZZTIME:-20s} -fuzzminimizetime 10x

bench: ## benchmarks (see docs/benchmarks.md)
	GO=$(GO) bash bench/run.sh

demo: build ## deploy the example app to a local agent and show where it stands
	./scripts/demo.sh

clean:
	rm -rf $(BIN)
