# artnet — the two set-up commands are `make demo` (main job on a default) and `make test`.
SHELL := /bin/bash
GO ?= go
ORT_LIB := third_party/onnxruntime/libonnxruntime.so.1
BIN := bin/artnet
DEMO := out/demo
# Paintings to predict in the demo: the shared real paintings when present, plus a synthetic sample.
PAINTINGS := $(wildcard ../shared/paintings/*)

.PHONY: all ort build demo test bench clean vet

all: build

$(ORT_LIB):
	./scripts/setup-ort.sh

ort: $(ORT_LIB)

build:
	$(GO) build -o $(BIN) ./cmd/artnet

# Main job on a default: set up ONNX Runtime, train the small synthetic model briefly in GoMLX
# (pure-Go backend), export it to ONNX, and predict with it in ONNX Runtime.
demo: ort build
	$(BIN) train --synthetic --out $(DEMO) --steps 120 --batch 16
	$(BIN) export --checkpoint $(DEMO) --onnx $(DEMO)/model.onnx
	$(BIN) predict --model $(DEMO)/model.onnx $(DEMO)/samples/*.png $(PAINTINGS)

test: ort
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

bench: ort
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

clean:
	rm -rf bin out
