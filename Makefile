# JeCloud: `make help` lists the targets.
GO      ?= go
BIN     ?= bin
LDFLAGS ?= -s -w
# urfave_cli_no_docs leaves out urfave/cli's man-page and markdown writers,
# which we do not use and which cost every jeagent run (docs/benchmarks.md).
TAGS    ?= urfave_cli_no_docs
export CGO_ENABLED ?= 0
# `sudo make test`: jeagent acts for the user sudo names (docs/agent.md,
# "sudo jeagent"); the tests run it as root's own.
unexport SUDO_USER SUDO_UID SUDO_GID SUDO_COMMAND DOAS_USER PKEXEC_UID

.PHONY: mongostandin help man build cross deb test test-race lint fmt vet e2e bench fuzz demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/jeagent, bin/jeagent-tick and bin/jepush for this machine
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS) $(XFLAGS)' -o $(BIN)/jeagent ./agent
	$(GO) build -trimpath -ldflags '$(LDFLAGS) $(XFLAGS)' -o $(BIN)/jeagent-tick ./agent/tick
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS) $(XFLAGS)' -o $(BIN)/jepush ./client
	$(MAKE) --no-print-directory man

man: ## bin/man/*.1 and bin/completion/{bash,zsh,fish}/*: man pages and completion scripts from the commands' own help
	$(GO) run -trimpath -ldflags '$(XFLAGS)' ./scripts/gendocs $(BIN)

cross: ## static jeagent and jeagent-tick for linux amd64/arm64, jepush for linux and macOS amd64/arm64
	for arch in amd64 arm64; do \
	  GOOS=linux GOARCH=$$arch $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS) $(XFLAGS)' -o $(BIN)/jeagent-linux-$$arch ./agent || exit 1; \
	  GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS) $(XFLAGS)' -o $(BIN)/jeagent-tick-linux-$$arch ./agent/tick || exit 1; \
	  for os in linux darwin; do \
	    GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS) $(XFLAGS)' -o $(BIN)/jepush-$$os-$$arch ./client || exit 1; \
	  done; \
	done

# nfpm: a well-kept Go tool that builds a .deb from a plain description
# (packaging/nfpm.yaml); run from the module proxy, not a dependency of ours.
NFPM    ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.43.0
VERSION ?= 0.1.0+git$(shell git rev-list --count HEAD 2>/dev/null || echo 0).$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
# --version of the three programs (internal/version): the release and its commit.
XFLAGS   = -X github.com/jecloud/jecloud/internal/version.Version=$(VERSION) -X github.com/jecloud/jecloud/internal/version.Commit=$(COMMIT)

deb: ## bin/jeagent_VERSION_{amd64,arm64}.deb: binary, units, postinst running jeagent init (reproducible)
	mkdir -p $(BIN)/deb
	for arch in amd64 arm64; do \
	  GOOS=linux GOARCH=$$arch $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS) $(XFLAGS)' -o $(BIN)/jeagent-linux-$$arch ./agent || exit 1; \
	  GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS) $(XFLAGS)' -o $(BIN)/jeagent-tick-linux-$$arch ./agent/tick || exit 1; \
	done
	sed '/^ExecStart=/s|/usr/local/bin/|/usr/bin/|g' systemd/jeagent-rollforward.service > $(BIN)/deb/jeagent-rollforward.service
	$(GO) run -trimpath -ldflags '$(XFLAGS)' ./scripts/gendocs $(BIN)
	gzip -n -9 -c $(BIN)/man/jeagent.1 > $(BIN)/deb/jeagent.1.gz
	for arch in amd64 arm64; do \
	  sed -e "s|\$${ARCH}|$$arch|g" -e "s|\$${VERSION}|$(VERSION)|g" -e "s|src: \./bin/|src: $(BIN)/|" packaging/nfpm.yaml > $(BIN)/deb/nfpm-$$arch.yaml; \
	  $(NFPM) package --packager deb --config $(BIN)/deb/nfpm-$$arch.yaml --target $(BIN)/ || exit 1; \
	done

# mongostandin: mongod's command line over FerretDB (e2e/mongostandin, its own
# module), for the tests of the MongoDB hook; no mongod can be installed here.
mongostandin: ## bin/mongostandin, the tests' stand-in for mongod
	cd e2e/mongostandin && CGO_ENABLED=0 $(GO) build -trimpath -o $(abspath $(BIN))/mongostandin .

test: lint mongostandin ## all tests: lint, then the unit and integration tests with the race detector
	JECLOUD_MONGOD=$(abspath $(BIN))/mongostandin CGO_ENABLED=1 $(GO) test -race -count=1 ./...

e2e: build deb ## end-to-end tests on real Debian servers (systemd-nspawn; root; see docs/lab.md)
	JECLOUD_E2E=1 $(GO) test -tags e2e -count=1 -timeout 45m -parallel 3 -v ./e2e/...

lint: fmt vet ## gofmt and go vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

fuzz: ## run each fuzzer for a bounded time (FUZZTIME, default 20s)
	$(GO) test ./internal/bundle/ -run '^$$' -fuzz FuzzExtract -fuzztime $${FUZZTIME:-20s} -fuzzminimizetime 10x
	$(GO) test ./internal/bundle/ -run '^$$' -fuzz FuzzApplyDelta -fuzztime $${FUZZTIME:-20s} -fuzzminimizetime 10x
	$(GO) test ./internal/state/ -run '^$$' -fuzz FuzzApp -fuzztime $${FUZZTIME:-20s} -fuzzminimizetime 10x

# The fault, bad-input and security tests (docs/reliability.md), by name.
RELIABILITY_TESTS := Kill AgentKilledWhileHookHangs HangingHook TimeoutKills DirRefuses \
  RacingDeploys RollforwardWhileAnotherRuns HookCallsBackIntoAgent LockHeld NewestWins FollowRetry OutcomeCounts \
  DiskFull StateTempLeftoversCLI AppJSONWriteCut ServerJSONCut ConfigWriteInProgress BrokenServerJSON WriteFileFailure \
  ReceiveTruncated ReceiveDeltaHostile TreeCopyRefused SSHDropped PushInterrupted BundleDamagedAfterReceipt \
  Hostile ZstdBomb WindowCap BrokenStreams TrailingGarbage Xattrs ExtractModes Failures \
  ParseErrors HandEdit UnknownKeys BrokenAppJSON BadInput NamesRefusedByCLI Names Version \
  SecretsNeverLeak StatePermissions ConfigVars HostKeyChecking NoInsecureHostKey SSHHostKeys \
  EnsureRefusesHostileNames SudoBoundary SudoAdministrator RunEnv ServerCannotDriveTheTerminal Printable \
  Removable ReserveKeptFree \
  SecurityGroupNarrowed RelayVerifiesCertificate ServerRoleCannotRewriteState ServerWritesOnlyItsObservation RevokeSecurityGroupIngress \
  BuildOnlyTheTip WebhookSameAnswer WebhookLogEscaped WebhookBounds WebhookLoopback WebhookUnitLimits EncryptedBackups \
  NameInjective ResolveLegacy UnitNamesInjective LegacyUnits RetireLegacy AppDirModes DeployLeavesOtherAppEnvsUnits Limits \
  AdoptStaysInside PrintableWalk PrintableJSON ClaimsAtOnce \
  EnvironmentsGetTheirOwnRoleAndGroup LegacyRoleAndGroupKept IAMAndGroupNames RelayNamesInjective LegacyRelayKept \
  UnitExposure ServerRoleBackupsScoped ServersJSONShowsObservations SettingsKeysThatDifferInCase ChildNotProtected \
  UpstreamsRefused ApplyRoutesByHost ReleaseCommand DollarsThroughShell
rel_empty :=
rel_space := $(rel_empty) $(rel_empty)
RELIABILITY_RUN := ^Test($(subst $(rel_space),|,$(strip $(RELIABILITY_TESTS))))
.PHONY: reliability
reliability: ## fault, bad-input and security tests (-race, full rounds), then each fuzzer for FUZZTIME (30s); figures: docs/reliability.md
	@mkdir -p $(BIN)
	@echo "== reliability tests (-race, JECLOUD_RELIABILITY=full; log in $(BIN)/reliability.log)"
	@JECLOUD_RELIABILITY=full CGO_ENABLED=1 $(GO) test -race -count=1 -v -timeout 30m -run '$(RELIABILITY_RUN)' \
	  ./agent/ ./client/... ./internal/... ./hooks/... ./systemd/ > $(BIN)/reliability.log 2>&1; st=$$?; \
	grep -E '^(ok|FAIL|--- FAIL)' $(BIN)/reliability.log; grep -E -A1 '^\s*--- SKIP' $(BIN)/reliability.log; \
	echo "== summary"; grep -ho 'summary: .*' $(BIN)/reliability.log | sed 's/^summary: /  /'; \
	echo "  tests: $$(grep -c '^--- PASS' $(BIN)/reliability.log) passed, $$(grep -c '^--- FAIL' $(BIN)/reliability.log) failed, $$(grep -c '^--- SKIP' $(BIN)/reliability.log) skipped (top level)"; \
	exit $$st
	@for f in 'internal/bundle FuzzExtract' 'internal/bundle FuzzApplyDelta' 'internal/state FuzzApp'; do set -- $$f; \
	  echo "== $$2 for $${FUZZTIME:-30s} (log in $(BIN)/$$2.log)"; \
	  $(GO) test ./$$1/ -run '^$$' -fuzz "^$$2\$$" -fuzztime $${FUZZTIME:-30s} -fuzzminimizetime 10x > $(BIN)/$$2.log 2>&1 \
	    || { tail -30 $(BIN)/$$2.log; echo "$$2 found a failure: the input is kept in $$1/testdata/fuzz/$$2/ (commit it)"; exit 1; }; \
	  grep -E '^fuzz: elapsed' $(BIN)/$$2.log | tail -1 | sed -e 's/^/  /' -e 's| ([0-9]*/sec)||'; \
	  echo "  inputs kept in $$1/testdata/fuzz/$$2: $$(ls $$1/testdata/fuzz/$$2 2>/dev/null | grep -vc '^tmp' || true)"; \
	done

bench: ## benchmarks (see docs/benchmarks.md)
	GO=$(GO) bash bench/run.sh

demo: build ## deploy the example app to a local agent and show where it stands
	./scripts/demo.sh

clean:
	rm -rf $(BIN)
