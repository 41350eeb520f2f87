# artnet — the two set-up commands are `make demo` (main job on a default) and `make test`.
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

.PHONY: all ort build demo test bench clean vet train-wikiart

all: build

$(ORT_LIB):
	./scripts/setup-ort.sh

ort: $(ORT_LIB)

build:
	$(GO) build -o $(BIN) ./cmd/artnet

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
test: ort
	$(GO) vet ./...
	@if [ -z "$$ARTNET_WIKIART" ] && [ ! -d ../shared/wikiart/images ]; then echo "make test: integration tests skip: set ARTNET_WIKIART=/path/to/wikiart (the full WikiArt image set) to run them"; fi
	$(GO) test -count=1 -timeout 20m ./...

bench: ort
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

clean:
	rm -rf bin out
