# BlameTrail webhooks: relay + Terraform provider.
GO       ?= go
VERSION  ?= dev
LDFLAGS  := -s -w -X main.version=$(VERSION)
PKGS     := ./...

.PHONY: all build relay provider run test test-unit vet tidy-check fmt-check fuzz bench clean docs release-check

all: build

build: relay provider

relay:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/blametrail-relay ./relay/cmd/blametrail-relay

provider:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/terraform-provider-blametrail .

# Runs the relay on its embedded defaults (./blametrail-data, 127.0.0.1:8080).
run:
	$(GO) run ./relay/cmd/blametrail-relay

# The whole suite: format, vet, unit, end-to-end (real relay binary) and acceptance tests,
# all with the race detector.
test: fmt-check vet tidy-check
	bash scripts/ensure-chromium.sh
	bash scripts/ensure-postgres.sh
	tf="$$(bash scripts/ensure-terraform.sh)" && \
	TF_ACC=1 TF_ACC_TERRAFORM_PATH="$$tf" CHECKPOINT_DISABLE=1 \
		$(GO) test -race -count=1 -timeout 20m $(PKGS)

# Regenerates docs/ with tfplugindocs from templates/, examples/ and the provider's schema,
# then validates it as the Terraform Registry would (only .md under docs/, front matter, ...);
# TestDocsAreGenerated fails when docs/ differs, TestDocsValidate when validation fails.
# Keep the flags equal to docs_test.go's.
docs:
	tf="$$(bash scripts/ensure-terraform.sh)" && \
	export PATH="$$(dirname "$$tf"):$$PATH" CHECKPOINT_DISABLE=1 && \
	$(GO) tool tfplugindocs generate --provider-name blametrail --rendered-provider-name BlameTrail && \
	$(GO) tool tfplugindocs validate --provider-name blametrail

# Checks the release configuration with the pinned goreleaser (installed with `go install` on
# first use, see scripts/ensure-goreleaser.sh), then builds a snapshot of the provider and the
# relay for linux/amd64 into dist/. Not part of `make test`. TestGoreleaserTargets checks that
# every other GOOS/GOARCH pair .goreleaser.yml lists is one this Go can build.
release-check:
	gr="$$(bash scripts/ensure-goreleaser.sh)" && \
	"$$gr" check && \
	GOOS=linux GOARCH=amd64 "$$gr" build --snapshot --clean --single-target

vet:
	$(GO) vet $(PKGS)

# go.mod and go.sum are what `go mod tidy` makes of the code: no stray or missing requirement.
tidy-check:
	$(GO) mod tidy -diff

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Short fuzzing runs of every parser (go test -fuzz); FUZZTIME=5m for a longer look.
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run XXX -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./relay/signature/
	$(GO) test -run XXX -fuzz '^FuzzCheckURL$$' -fuzztime $(FUZZTIME) ./internal/netpolicy/
	$(GO) test -run XXX -fuzz '^FuzzParseIngest$$' -fuzztime $(FUZZTIME) ./internal/api/
	$(GO) test -run XXX -fuzz '^FuzzParseEndpoint$$' -fuzztime $(FUZZTIME) ./internal/api/
	$(GO) test -run XXX -fuzz '^FuzzScanObject$$' -fuzztime $(FUZZTIME) ./internal/api/
	$(GO) test -run XXX -fuzz '^FuzzParseRecover$$' -fuzztime $(FUZZTIME) ./internal/api/
	$(GO) test -run XXX -fuzz '^FuzzUnmarshalRecord$$' -fuzztime $(FUZZTIME) ./internal/store/
	$(GO) test -run XXX -fuzz '^FuzzReadSnapshot$$' -fuzztime $(FUZZTIME) ./internal/store/
	$(GO) test -run XXX -fuzz '^FuzzPowerLossStore$$' -fuzztime $(FUZZTIME) ./internal/store/
	$(GO) test -run XXX -fuzz '^FuzzDecodeFrame$$' -fuzztime $(FUZZTIME) ./internal/wal/
	$(GO) test -run XXX -fuzz '^FuzzOpen$$' -fuzztime $(FUZZTIME) ./internal/wal/
	$(GO) test -run XXX -fuzz '^FuzzPowerLoss$$' -fuzztime $(FUZZTIME) ./internal/wal/

# Go micro-benchmarks, then the end-to-end harness (baseline + scenarios 1-7, ratios, targets;
# under 5 minutes on 2 cores). BENCH_BACKLOG=1000000 gives the 1M-queued figure (longer).
BENCH_BACKLOG ?= 200000
BENCHFLAGS    ?=
bench:
	$(GO) test -run XXX -bench . -benchmem ./relay/signature/ ./internal/...
	$(GO) run ./relay/cmd/blametrail-bench --backlog-events $(BENCH_BACKLOG) --json bench-results.json $(BENCHFLAGS)

clean:
	rm -rf bin
