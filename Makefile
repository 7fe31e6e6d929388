# deskbridge: `make run` starts the gateway on its embedded default,
# `make test` runs every test. See README.md.

GO        ?= go
STATICCHECK = $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
JS_DIR    = test/js
BIN       = bin/deskbridge

.PHONY: run build generate check-generated test test-go js-deps lint bench bench-firstsync bench-fanout bench-kb clean

## run: start the gateway on the embedded PostgreSQL with a demo org; prints the GraphiQL URL and an admin token
run:
	$(GO) run ./cmd/deskbridge serve --demo

## build: build bin/deskbridge
build:
	$(GO) build -o $(BIN) ./cmd/deskbridge

## generate: regenerate graph/ from schema/*.graphqls
generate:
	$(GO) generate ./...

## check-generated: fail when graph/ (or the resolver stubs) differ from what gqlgen generates
check-generated:
	@tmp=$$(mktemp -d); cp -r graph resolvers $$tmp/; \
	$(GO) generate ./... || exit 1; \
	if ! diff -r $$tmp/graph graph >/dev/null || ! diff -r $$tmp/resolvers resolvers >/dev/null; then \
		echo "graph/ was stale: 'go generate ./...' changed it; review and commit the result"; \
		diff -r $$tmp/graph graph | head -20; rm -rf $$tmp; exit 1; \
	fi; rm -rf $$tmp; echo "graph/ is up to date"

## js-deps: install the npm clients the end-to-end tests drive (graphql-ws, Apollo Client, graphql-http, Zoho's CRM SDK)
js-deps: $(JS_DIR)/node_modules/.package-lock.json $(JS_DIR)/zoho-sdk/node_modules/.package-lock.json

$(JS_DIR)/node_modules/.package-lock.json: $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error

# Zoho's own CRM SDK, driven against the sandbox by sandbox/sdk_test.go.
$(JS_DIR)/zoho-sdk/node_modules/.package-lock.json: $(JS_DIR)/zoho-sdk/package.json $(JS_DIR)/zoho-sdk/package-lock.json
	cd $(JS_DIR)/zoho-sdk && npm ci --no-audit --no-fund --loglevel=error

## test: every test: generated code fresh, vet, Go tests with the race detector (real PostgreSQL, real HTTP and WebSockets, the npm clients)
test: check-generated js-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

## lint: go vet and staticcheck
lint:
	$(GO) vet ./...
	$(STATICCHECK) ./...

## bench: benchmarks that print throughput and latency (numbers for the closing notes; never timed assertions)
bench: bench-firstsync bench-fanout bench-kb
	$(GO) test -run '^$$' -bench . -skip '^(BenchmarkFirstSync|BenchmarkSubscriptionFanout|BenchmarkKBSync)$$' -benchtime 5s -benchmem ./...

## bench-firstsync: the first sync of a 10k and a 100k world through the gateway binary (minutes; one run each)
bench-firstsync:
	$(GO) test -run '^$$' -bench '^BenchmarkFirstSync$$' -benchtime 1x -timeout 90m ./cmd/deskbridge

## bench-fanout: 5,000 WebSocket subscribers, 1,000 events/s for 10 s through the gateway and through a bare gorilla broadcast (a minute; once; sizes via DESKBRIDGE_FANOUT_*)
bench-fanout:
	$(GO) test -run '^$$' -bench '^BenchmarkSubscriptionFanout$$' -benchtime 1x -timeout 30m ./server

## bench-kb: the KB sync of 10,000 desk articles in 200 categories into SalesIQ through the gateway binary: seconds and peak RSS (once; goal under 30 s)
bench-kb:
	$(GO) test -run '^$$' -bench '^BenchmarkKBSync$$' -benchtime 1x -timeout 30m ./cmd/deskbridge

## clean: remove build output (not the embedded database in .deskbridge/)
clean:
	rm -rf bin
