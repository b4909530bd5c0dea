# govlog — the two commands a newcomer needs are `make run` and `make test`.

GO          ?= go
BIN         := bin
LISTEN      ?= 127.0.0.1:8080
DATA        ?= ./data
# The log's origin, chosen once: make run generates the log's keys under
# this name on its first start; afterwards the origin is the name of
# $(DATA)/log.key (an ORIGIN given then must match it: govlogd says so).
ORIGIN      ?= localhost/govlog
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Packages whose tests are slow enough to deserve their own timeout.
TEST_FLAGS  ?= -race -count=1 -timeout 20m

.PHONY: all build run test lint vet fmt-check staticcheck vectors test-unit test-ts test-py test-compare bench fuzz clean docs-check deploy-check explorer explorer-check test-browser explorer-screenshots

all: build

# govlogd, govlog, govlog-witness and govlog-gate into bin/ (put it on your PATH:
# export PATH="$$PWD/bin:$$PATH").
build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Build and start govlogd on the embedded SQLite log. Data lives in $(DATA).
run: build
	@if [ ! -f $(DATA)/log.key ]; then ./$(BIN)/govlog keygen --name '$(ORIGIN)' --out $(DATA) >/dev/null; fi
	@echo
	@echo "govlogd: the log $$(cut -d+ -f1 $(DATA)/log.vkey) (its origin: the name of its key, $(DATA)/log.key)"
	@echo "         data in $(DATA), on http://$(LISTEN) (loopback only, no authentication)"
	@echo "Submit a first decision from another terminal:"
	@echo
	@echo "  curl -s -X POST http://$(LISTEN)/v1/decisions -H 'Content-Type: application/json' -d '{\"id\":\"first-1\",\"outcome\":\"allow\",\"decided_at\":\"'\$$(date -u +%Y-%m-%dT%H:%M:%SZ)'\",\"subject\":\"agent-7\",\"action\":\"deploy\",\"policy\":{\"id\":\"prod-deploy\"}}'"
	@echo
	@echo "and verify its receipt offline:  ./bin/govlog submit --url http://$(LISTEN) decision.json && ./bin/govlog verify --log-key $(DATA)/log.vkey <id>.tlog-proof"
	@echo
	exec ./$(BIN)/govlogd --listen $(LISTEN) --data $(DATA) $(if $(filter command line environment,$(origin ORIGIN)),--origin '$(ORIGIN)')

# The governed-execution demo (docs/governed-execution.md): govlogd on a
# new temporary data directory, and govlog demo playing the story against
# it (an allow executed once, a deny never executed, a reuse and a claim
# after a revocation recorded as violations, the auditor's proof).
.PHONY: demo
demo: build
	BIN=$(BIN) ./scripts/demo.sh

# Every test: static checks, golden vectors, the TypeScript and Python
# verifiers, unit, conformance, end-to-end and crash tests.
test: lint vectors explorer-check test-ts test-py test-compare test-browser
	$(GO) test $(TEST_FLAGS) ./...

# The TypeScript verifier (clients/ts, Node 20 or later): npm ci from the
# committed lockfile, the browser bundle, then its tests: the shared
# vectors of testdata/verify, the client, and end to end against
# bin/govlogd.
NPM    ?= npm
test-ts: build
	cd clients/ts && $(NPM) ci --no-audit --no-fund && $(NPM) run bundle && GOVLOGD=$(CURDIR)/$(BIN)/govlogd $(NPM) test

# The Python verifier (clients/python): the same vectors, the client, the
# CLI, end to end against bin/govlogd. It needs cryptography and pytest
# (Debian: python3-cryptography python3-pytest, for /usr/bin/python3).
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
test-py: build
	GOVLOGD=$(CURDIR)/$(BIN)/govlogd $(PYTHON) -m pytest -q -p no:cacheprovider clients/python/tests

# The three verifiers give every case of testdata/verify the same verdict:
# each vector test writes its verdicts (family, case, ok or fail), and the
# three lists must be identical, line for line. After test-ts (which builds
# clients/ts).
test-compare:
	@d=$$(mktemp -d) && \
	GOVLOG_VERDICTS=$$d/go $(GO) test -count=1 -run '^TestVerifyVectors$$' ./verifier >/dev/null && \
	(cd clients/ts && GOVLOG_VERDICTS=$$d/ts node --test build/test/vectors.test.js >/dev/null) && \
	GOVLOG_VERDICTS=$$d/py $(PYTHON) -m pytest -q -p no:cacheprovider clients/python/tests/test_vectors.py >/dev/null && \
	sort $$d/go >$$d/go.sorted && sort $$d/ts >$$d/ts.sorted && sort $$d/py >$$d/py.sorted && \
	diff $$d/go.sorted $$d/ts.sorted && diff $$d/go.sorted $$d/py.sorted && \
	echo "test-compare: $$(wc -l <$$d/go.sorted) verdicts, the same in Go, TypeScript and Python" && rm -r $$d

# The explorer (internal/explorer, served by govlogd at /): its script,
# assets/app.js, is built from internal/explorer/src and the TypeScript
# verifier of clients/ts with esbuild, and committed, so that building
# govlogd needs no Node. explorer rebuilds it; explorer-check (part of
# test) rebuilds it from the lockfile and fails when the committed file
# differs.
explorer:
	cd internal/explorer && $(NPM) ci --no-audit --no-fund && $(NPM) run build

explorer-check: explorer
	git diff --exit-code -- internal/explorer/assets

# The explorer in a real headless Chromium (Debian's chromium package,
# driven by playwright-core from the lockfile) against bin/govlogd: search,
# the entry page verified in the browser and FAILED behind a proxy that
# tampers with tiles, a dropped .tlog-proof, read tokens, phone width,
# keyboard. Part of test; fails when Chromium is missing.
CHROMIUM ?= /usr/bin/chromium
test-browser: build
	cd internal/explorer && $(NPM) ci --no-audit --no-fund && $(NPM) test && \
		GOVLOGD=$(CURDIR)/$(BIN)/govlogd CHROMIUM=$(CHROMIUM) $(NPM) run test-browser

# The screenshots of docs/explorer.md, taken by the browser test.
explorer-screenshots: build
	cd internal/explorer && $(NPM) ci --no-audit --no-fund && \
		GOVLOGD=$(CURDIR)/$(BIN)/govlogd CHROMIUM=$(CHROMIUM) EXPLORER_SCREENSHOTS=$(CURDIR)/docs/explorer $(NPM) run test-browser

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags crashpoint ./cmd/govlogd

staticcheck:
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags crashpoint ./cmd/govlogd

# The golden vectors in testdata/ are generated; they must be up to date.
vectors:
	$(GO) run ./testdata/gen.go
	git diff --exit-code -- testdata

# Every shell block of README.md and docs/ marked runnable, run against a
# real govlogd (e2e/docs_test.go says how); part of test.
docs-check:
	$(GO) test ./e2e -run '^TestDocs$$' -count=1 -v

# The binaries built as deploy/Dockerfile builds them (static), run; the
# systemd unit checked with systemd-analyze; part of test.
deploy-check:
	$(GO) test ./e2e -run '^(TestDockerfileBinaries|TestSystemdUnit)$$' -count=1 -v

# Benchmark report (not part of test): the Go micro-benchmarks of the hot
# paths, then govlog bench against the embedded backend and Trillian +
# MariaDB (skipped without a database at 127.0.0.1:3306) in one run; writes
# docs/bench/report.md, PNG charts and govlogd's CPU profiles under each
# load. Options through BENCHFLAGS, e.g. the
# full-scale run: make bench BENCHFLAGS='-fill 10000000 -samples 50'.
BENCHFLAGS ?=
bench:
	$(GO) run ./internal/benchreport -out docs/bench $(BENCHFLAGS)

# The time to verify one receipt in Go, Node and CPython, side by side
# (not part of test): the Go verifier's benchmark on a 1,000-entry log,
# then the bench scripts of clients/ts and clients/python.
.PHONY: bench-clients
bench-clients:
	$(GO) test ./verifier -run '^$$' -bench 'BenchmarkReceiptVerifier/Receipt$$' -benchtime 2000x -count 3
	cd clients/ts && $(NPM) ci --no-audit --no-fund && $(NPM) run bench
	$(PYTHON) clients/python/bench.py

# Soak test (not part of test): govlogd on the embedded log with two
# govlog-witness processes under a bounded mixed load (500 decisions/s,
# batches, executions, reads, an audit a minute) for an hour, sampling
# memory, goroutines, open files, SQLite files and latency every 30s; writes
# docs/soak/report.md, samples.csv and PNG charts, and fails if anything
# grew, erred or did not verify. Needs Linux and ~3 GB free in $TMPDIR.
# Options through SOAKFLAGS, e.g. make soak SOAKFLAGS='-duration 10m'.
SOAKFLAGS ?=
.PHONY: soak
soak:
	$(GO) run ./internal/soak -out docs/soak $(SOAKFLAGS)

# Fuzz every fuzz target of every package for FUZZTIME each (longer:
# make fuzz FUZZTIME=10m). A new input is minimized for at most 10 s, so
# minimizing does not eat a short run.
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; \
			$(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s; \
		done; \
	done

clean:
	rm -rf $(BIN)

# Trillian backend (see log/trillian): build trillian_log_server and
# trillian_log_signer from the Trillian version in go.mod into .trillian/bin,
# start them on loopback on a fresh MariaDB/MySQL database at 127.0.0.1:3306
# (root, no password) and create a log tree; trillian-down stops exactly
# what trillian-up started (TRILLIAN_PURGE=1 also drops the database).
.PHONY: trillian-up trillian-down
trillian-up:
	GO=$(GO) ./scripts/trillian-up.sh

trillian-down:
	./scripts/trillian-down.sh

# The long form of the crash suite: CRASH_ROUNDS kill -9 rounds at random
# moments (e2e TestCrashUnderLoad, default 50) and CRASH_POINT_ROUNDS
# rounds of kills inside a batch's transaction and between its commit and
# the answers (TestCrashPoints, with a govlogd built with -tags crashpoint,
# whose test-only GOVLOG_TEST_CRASH_POINT hook the production binary does
# not have; default 10 each); every restart is checked for lost
# acknowledgements and inconsistent checkpoints.
CRASH_ROUNDS ?= 50
CRASH_POINT_ROUNDS ?= 10
.PHONY: test-crash
test-crash:
	GOVLOG_CRASH_ROUNDS=$(CRASH_ROUNDS) GOVLOG_CRASH_POINT_ROUNDS=$(CRASH_POINT_ROUNDS) \
		$(GO) test ./e2e -run '^(TestCrashUnderLoad|TestCrashPoints)$$' -count=1 -v -timeout 60m
