# Billing Audit — build, test and demo.
#   make demo   full audit run against the built-in Smartsheet simulator (no credentials, no AWS)
#   make test   vet, every test (the core packages again under -race), short fuzzing, template lint
#   make fuzz-long   every fuzz target to a million inputs (figures in BENCHMARKS.md)
#   make bench-verify   verify of a 100,000-row audit log (figures in BENCHMARKS.md)
#   make scale  a first, an idle and a changed run of 68 sheets × 3,000 rows through the local chain (BENCHMARKS.md)
#   make local-run   the serverless product end to end on this machine: moto, the simulator, the real bootstraps
#   make soak   the chaos soak with an oracle (issue 14): SOAK_ROUNDS rounds of random edits at 33 % faulted calls
#   make soak-chain   the same soak through the serverless chain: duplicated, shuffled messages, kills, DynamoDB faults
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
PKGS := ./...
FUZZTIME ?= 50000x
BIN := bin

.PHONY: all build test deps vet unit race e2e scale soak soak-chain fuzz fuzz-long lint-template demo bench bench-verify bench-idle smartsim clean tools

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

unit:
	$(GO) test -count=1 -timeout 10m -skip '^(TestEndToEnd|TestWebhookThroughChain)$$' $(PKGS)

# The core packages' unit tests under the race detector: the domain, the pipeline (whose whole runs, concurrent sheet
# work included, are tested in shared/local/demo against the in-process simulator), the Smartsheet client, the webhook
# receiver and listener, the local store, the alerts, the workbook, the AWS adapters and the Lambda handlers: 70 s on
# this 2-core machine when quiet, two minutes when busy. Tests that need a local server (moto, DynamoDB Local) run in
# `unit` and `e2e`, not here: RACE_SKIP names them, and shared/aws/dynamo runs each of its store tests as one subtest
# per emulator, skipped by name.
RACE_PKGS := ./shared/audit ./shared/pipeline/... ./shared/local/demo ./shared/smartsheet/... ./shared/webhook ./shared/listen \
	./shared/bolt ./shared/alert ./shared/xlsx ./shared/digestfile ./shared/config ./functions/...
RACE_SKIP := ^(TestRunCompletedReachesReportQueue|TestSignerOnMoto|TestDigestsOnMoto|TestDigestsOnTemplateStack|TestPublishToTemplateTopic|TestSheetQueueOnMoto)$$
race:
	$(GO) test -race -count=1 -timeout 15m -skip '$(RACE_SKIP)' $(RACE_PKGS) $$($(GO) list ./shared/aws/... | grep -v '/dynamo$$')
	$(GO) test -race -count=1 -timeout 15m -skip '/^(moto|dynamodb-local)$$' ./shared/aws/dynamo

# The serverless chain end to end: moto with template.yaml deployed, the real bootstraps under aws-lambda-rie (one
# emulator per function), the SQS mappings played by shared/local/localchain, the demo scenario with duplicated messages and
# a killed analyze, compared with the local run; then the real-time path (webhook function behind an HTTP API
# stand-in, WebhookQueue → analyze). Skips when moto_server is missing; installs aws-lambda-rie if needed.
RIE_MODULE := github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d
e2e:
	@command -v aws-lambda-rie >/dev/null || [ -x "$(GOBIN)/aws-lambda-rie" ] || $(GO) install $(RIE_MODULE)
	$(GO) test -count=1 -timeout 10m -run '^(TestEndToEnd|TestWebhookThroughChain)$$' -v ./shared/local/localchain 2>&1 | grep -v '" [0-9][0-9]* -$$'; exit $${PIPESTATUS[0]}

# The scale harness (TestScale in shared/local/localchain): a first run and an idle run of SCALE (sheets x rows) through
# the chain — the real bootstraps under aws-lambda-rie, as many analyze environments as AnalysisQueue's
# MaximumConcurrency, moto with template.yaml deployed and the table in DynamoDB Local, the simulator at 400 ms + 1 ms a
# row (±25%) under its 300/min limit — measured from outside the functions. SCALE_LATENCY (400ms+1ms), SCALE_JITTER
# (0.25) and SCALE_STORE (dynamodb-local | moto) change the setup. The output is kept in out/scale.log; the last two
# lines are the goals and the summary, each function's output is in out/scale-logs/. `make test` runs the same harness at
# 6 x 300 with a few milliseconds of latency.
SCALE ?= 68x3000
scale:
	@command -v aws-lambda-rie >/dev/null || [ -x "$(GOBIN)/aws-lambda-rie" ] || $(GO) install $(RIE_MODULE)
	@SCALE=$(SCALE) SCALE_LOG_DIR=$(CURDIR)/out/scale-logs GO=$(GO) \
	  bash infra/long-test.sh scale 90m TestScale ./shared/local/localchain '^scale goals: .*' '^scale: .*'

# The chaos soak (TestSoak in shared/local/soak): SOAK_ROUNDS rounds of SOAK_EDITS random edits (seed SOAK_SEED) by
# several users and automation on SOAK_SHEETS x SOAK_ROWS billing rows, the real pipeline over HTTP against the simulator
# answering SOAK_FAULT_RATE of the calls with a fault, an oracle from the generator's record checking the audit sheet after
# every round. The output is kept in out/soak.log; its last line is the summary. `go test ./...` runs the short form
# (TestSoakShort). SOAK_SKIP_WRITER_INFO=1 audits with SKIP_WRITER_INFO (cell history names every cell change's author).
SOAK_ROUNDS ?= 25
SOAK_EDITS ?= 120
SOAK_SEED ?= 1
SOAK_SHEETS ?= 4
SOAK_ROWS ?= 300
SOAK_FAULT_RATE ?= 0.33
SOAK_SKIP_WRITER_INFO ?= 0
soak:
	@SOAK_ROUNDS=$(SOAK_ROUNDS) SOAK_EDITS=$(SOAK_EDITS) SOAK_SEED=$(SOAK_SEED) SOAK_SHEETS=$(SOAK_SHEETS) \
	  SOAK_ROWS=$(SOAK_ROWS) SOAK_FAULT_RATE=$(SOAK_FAULT_RATE) SOAK_SKIP_WRITER_INFO=$(SOAK_SKIP_WRITER_INFO) GO=$(GO) \
	  bash infra/long-test.sh soak 60m TestSoak ./shared/local/soak 'soak: seed=.*'

# The chaos soak through the chain (TestSoakChain in shared/local/localchain): the soak's generator and oracle with the
# real bootstraps under aws-lambda-rie and moto with template.yaml deployed in between; SOAK_CHAIN_ROUNDS rounds of
# SOAK_CHAIN_EDITS edits on SOAK_CHAIN_SHEETS x SOAK_CHAIN_ROWS rows, SOAK_CHAIN_FAULT_RATE of the Smartsheet calls and
# SOAK_CHAIN_DYNAMODB_FAULT_RATE of the functions' DynamoDB requests faulted, every SQS message delivered twice and
# shuffled, the analyze function killed mid-batch in SOAK_CHAIN_KILL_RATE of the rounds. The output is kept in
# out/soak-chain.log; its last line is the summary. `make test` runs the short form.
SOAK_CHAIN_ROUNDS ?= 20
SOAK_CHAIN_EDITS ?= 100
SOAK_CHAIN_SEED ?= 1
SOAK_CHAIN_SHEETS ?= 3
SOAK_CHAIN_ROWS ?= 150
SOAK_CHAIN_FAULT_RATE ?= 0.33
SOAK_CHAIN_DYNAMODB_FAULT_RATE ?= 0.1
SOAK_CHAIN_KILL_RATE ?= 0.5
soak-chain:
	@command -v aws-lambda-rie >/dev/null || [ -x "$(GOBIN)/aws-lambda-rie" ] || $(GO) install $(RIE_MODULE)
	@SOAK_ROUNDS=$(SOAK_CHAIN_ROUNDS) SOAK_EDITS=$(SOAK_CHAIN_EDITS) SOAK_SEED=$(SOAK_CHAIN_SEED) \
	  SOAK_SHEETS=$(SOAK_CHAIN_SHEETS) SOAK_ROWS=$(SOAK_CHAIN_ROWS) SOAK_FAULT_RATE=$(SOAK_CHAIN_FAULT_RATE) \
	  SOAK_DYNAMODB_FAULT_RATE=$(SOAK_CHAIN_DYNAMODB_FAULT_RATE) SOAK_KILL_RATE=$(SOAK_CHAIN_KILL_RATE) GO=$(GO) \
	  bash infra/long-test.sh soak-chain 4h TestSoakChain ./shared/local/localchain 'soak-chain: seed=.*'

# Each fuzz target runs for FUZZTIME (go test allows one -fuzz target per run): a count of inputs, which
# ends cleanly on a busy machine where a time limit can end in "context deadline exceeded".
FUZZ_TARGETS := shared/audit:FuzzParseMoney shared/audit:FuzzParseQuantity shared/audit:FuzzParseDate shared/audit:FuzzDecodeEntry \
	shared/audit:FuzzVerifyDigest shared/pipeline:FuzzAuditRowCells shared/pipeline:FuzzAuditRowRoundTrip \
	shared/smartsheet:FuzzDecodeSheet shared/webhook:FuzzHandle
fuzz:
	@FUZZTIME=$(FUZZTIME) GO=$(GO) bash infra/fuzz.sh $(FUZZ_TARGETS)

# Every fuzz target to a million inputs (FUZZTIME_LONG), with the inputs and time of each and a summary line: the
# figures in BENCHMARKS.md ("Fuzzing"). Not part of `make test`: about half an hour on this 2-core machine.
FUZZTIME_LONG ?= 1000000x
fuzz-long:
	@FUZZTIME=$(FUZZTIME_LONG) GO=$(GO) bash infra/fuzz.sh $(FUZZ_TARGETS)

lint-template:
	@if [ -f template.yaml ]; then \
	  command -v cfn-lint >/dev/null || pip install --quiet cfn-lint; \
	  cfn-lint template.yaml && echo "cfn-lint: template.yaml clean"; \
	fi

# Installs what the tests need and is missing (LibreOffice, Java, moto, cfn-lint, aws-lambda-rie).
deps:
	@bash infra/deps.sh

test: deps vet lint-template unit race e2e fuzz

demo:
	$(GO) run ./cmd/billing-audit demo

smartsim:
	$(GO) run ./cmd/smartsim

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./shared/...

# The local run at fleet scale: 68 sheets × 3,000 rows in the simulator (its own process), a first run, then an idle
# run whose peak RSS is the figure (goal ≤ 60 MB). SHEETS and ROWS make it smaller.
bench-idle:
	@GO=$(GO) bash infra/measure-idle.sh

# Verification of a 100,000-entry ledger against a 100,000-row audit sheet (the simulator in its own process).
bench-verify:
	$(GO) test -run '^$$' -bench BenchmarkVerify100k -benchtime 3x -timeout 30m ./shared/pipeline

# --- Lambda functions (SAM) ------------------------------------------------------------------------------------------
# `sam build` (BuildMethod: makefile, CodeUri: .) calls build-<LogicalId> with ARTIFACTS_DIR set; each writes the
# function's bootstrap for provided.al2023 on arm64.
LAMBDA_FUNCTIONS := scan analyze report webhook
LAMBDA_BUILD := $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w"

# The product as it runs in AWS, on this machine: moto with template.yaml, the simulator with the demo's sheets, the four
# bootstraps under aws-lambda-rie, from a baseline through webhooks and the scan to the workbook (cmd/localchain).
# It prints the audit sheet's rows and the workbook's S3 key, and plays every events/ sample on the running functions.
# KEEP=1 leaves it running and prints how to invoke each function by hand. local-chain is its former name.
local-run local-chain:
	$(GO) run ./cmd/localchain $(if $(KEEP),--keep,)

.PHONY: local-run local-chain
.PHONY: build-ScanFunction build-AnalyzeFunction build-ReportFunction build-WebhookFunction lambdas local-up local-down

build-ScanFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/scan
build-AnalyzeFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/analyze
build-ReportFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/report
build-WebhookFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/webhook

# The four functions for this machine's OS and architecture, for the Lambda runtime emulator: bin/lambda/<name>/bootstrap.
lambdas:
	@set -e; for f in $(LAMBDA_FUNCTIONS); do \
	  echo "build bin/lambda/$$f/bootstrap"; \
	  CGO_ENABLED=0 $(LAMBDA_BUILD) -o $(BIN)/lambda/$$f/bootstrap ./functions/$$f; \
	done

# --- Local stack: moto with the real template.yaml deployed (infra/local-stack.sh; variables in .local/stack.env) ---
local-up:
	infra/local-stack.sh up

local-down:
	infra/local-stack.sh down

clean:
	rm -rf $(BIN) out .state

# The workbook as it prints: plays `billing-audit demo` (twelve weeks of history) into out/preview/demo and renders its
# last workbook through LibreOffice to a PDF and one PNG a page in out/preview/ (WORKBOOK=path renders another one).
workbook-preview:
	@GO=$(GO) bash infra/workbook-preview.sh $(WORKBOOK)

.PHONY: workbook-preview
