//go:build xla

package engine

import (
	"fmt"

	"github.com/gomlx/go-xla/pkg/pjrt"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/xla"
)

// xlaCompiled reports whether the XLA/PJRT backend is compiled in (build tag `xla`).
const xlaCompiled = true

// newXLABackend creates GoMLX's XLA/PJRT backend; cfg is the PJRT plugin name ("cpu", "cuda",
// an absolute path to a plugin, or "" for the first available one), then comma-separated options
// (GoMLX's, and artnet's PJRT client options: see xlaClientOptions). PJRT plugins are searched
// in $PJRT_PLUGIN_LIBRARY_PATH; $GOMLX_NO_AUTO_INSTALL stops GoMLX from trying to download them.
func newXLABackend(config, cfg string) (backends.Backend, error) {
	gomlxCfg, opts, err := xlaClientOptions(config, cfg)
	if err != nil {
		return nil, err
	}
	b, err := xla.NewWithOptions(gomlxCfg, pjrt.NamedValuesMap(opts))
	if err != nil {
		return nil, fmt.Errorf("graph.NewBackend(%q): %w", config, err)
	}
	return b, nil
}
