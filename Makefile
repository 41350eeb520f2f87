# artnet — the two set-up commands are `make demo` (main job on a default) and `make test`; both
# install the Debian packages they need first (scripts/setup-deps.sh).
SHELL := /bin/bash
GO ?= go
ORT_LIB := third_party/onnxruntime/libonnxruntime.so.1
BIN := bin/artnet
DEMO := out/demo
# Paintings to predict in the demo: the repository's three public-domain paintings.
PAINTINGS := $(wildcard testdata/paintings/*.jpg)
# WikiArt folder for train-wikiart (empty: $ARTNET_DATA, else data/wikiart), e.g. WIKIART=../shared/wikiart.
WIKIART ?=
DATA_FLAG := $(if $(WIKIART),--data $(WIKIART))

# Native libraries: scripts/setup-deps.sh installs the Debian packages that are missing (build needs
# for build/demo, everything for test; silent when all is there); scripts/gotags.sh then picks the
# build: OpenBLAS when its header compiles, else the pure-Go kernels (-tags=noblas), said in one line.
# ARTNET_REQUIRE_DEPS=1 (CI) turns every fallback into an error.
GOTAGS = scripts/gotags.sh

.PHONY: all ort build demo test bench clean vet train-wikiart deps-build deps-test

all: build

# deps-build first: it adds npm where it is missing (setup-ort.sh takes ONNX Runtime from npm).
$(ORT_LIB): | deps-build
	./scripts/setup-ort.sh

ort: $(ORT_LIB)

deps-build:
	@scripts/setup-deps.sh build

deps-test:
	@scripts/setup-deps.sh test

build: deps-build
	@tags=$$(GO=$(GO) $(GOTAGS)) && echo "$(GO) build$${tags:+ $$tags} -o $(BIN) ./cmd/artnet" && $(GO) build $$tags -o $(BIN) ./cmd/artnet

# Main job on a default: set up ONNX Runtime, predict the repository's paintings with the built-in
# default model (trained on WikiArt, embedded in the binary) and draw an attention heatmap; then
# walk the whole road once on synthetic paintings: train the tiny DeepArtNet in GoMLX (pure-Go
# backend, ~3-4 min on 2 cores), export it to ONNX, predict with it in ONNX Runtime.
demo: ort build
	@mkdir -p $(DEMO)
	$(BIN) predict --topk 3 $(PAINTINGS)
	$(BIN) predict --visualize-attention $(DEMO)/starry-night.attention.png testdata/paintings/van-gogh_the-starry-night.jpg
	rm -rf $(DEMO)/synthetic
	$(BIN) train --synthetic --out $(DEMO)/synthetic --classes 8,4,4 --steps 250 --batch 16 --lr 2e-3 --warmup 5
	$(BIN) export --checkpoint $(DEMO)/synthetic --onnx $(DEMO)/synthetic.onnx
	$(BIN) predict --model $(DEMO)/synthetic.onnx $(DEMO)/synthetic/samples/*.png

# The real WikiArt run behind the built-in default model (docs/results-wikiart.md).
train-wikiart: ort build
	$(BIN) train --config configs/train.yaml $(DATA_FLAG) --out out/wikiart --max-time 38m
	$(BIN) export --checkpoint out/wikiart/phase3/best --onnx out/wikiart/model.onnx
	$(BIN) evaluate --model out/wikiart/model.onnx $(DATA_FLAG) --split val --out out/wikiart/eval

# Integration tests (internal/testenv.WikiArt) skip unless $ARTNET_WIKIART or ../shared/wikiart holds the full image set.
# Tests whose tool is missing (Chromium, python3-onnx, …) skip with one line naming it; the run
# ends with the skipped tests grouped by reason (go test -json through tools/testreport).
test: deps-test ort
	@tags=$$(GO=$(GO) $(GOTAGS)) && echo "$(GO) vet$${tags:+ $$tags} ./..." && $(GO) vet $$tags ./... && \
	if [ -z "$$ARTNET_WIKIART" ] && [ ! -d ../shared/wikiart/images ]; then echo "make test: integration tests skip: set ARTNET_WIKIART=/path/to/wikiart (the full WikiArt image set) to run them"; fi && \
	echo "$(GO) test$${tags:+ $$tags} -count=1 -timeout 20m ./... (skips listed at the end: tools/testreport)" && \
	$(GO) build -o bin/testreport ./tools/testreport && \
	set -o pipefail && $(GO) test $$tags -count=1 -timeout 20m -json ./... | bin/testreport

bench: deps-test ort
	@tags=$$(GO=$(GO) $(GOTAGS)) && $(GO) test $$tags -run '^$$' -bench . -benchtime 3x ./...

clean:
	rm -rf bin out
