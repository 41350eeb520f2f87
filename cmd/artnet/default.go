package main

import (
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/defaultmodel"
	ortrt "github.com/artnet/artnet/runtime"
)

// openDefaultModel opens artnet's built-in default model (package defaultmodel: trained on
// WikiArt by `artnet train --config configs/train.yaml`) in ONNX Runtime, with the runtime
// flags of c (--ort-lib, --provider, --threads). predict uses it when --model is not given.
func openDefaultModel(c *cli.Context) (*ortrt.Model, error) {
	var providers []string
	for _, p := range strings.Split(c.String("provider"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			providers = append(providers, p)
		}
	}
	slog.Debug("no --model: using the built-in default model", "model", defaultmodel.Name)
	return ortrt.OpenBytes(defaultmodel.Name, defaultmodel.Bytes(), ortrt.Options{
		LibraryPath:    c.String("ort-lib"),
		Providers:      providers,
		IntraOpThreads: c.Int("threads"),
	})
}
