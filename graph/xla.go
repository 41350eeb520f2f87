//go:build xla

package graph

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/xla"
)

// xlaCompiled reports whether the XLA/PJRT backend is compiled in (build tag `xla`).
const xlaCompiled = true

// newXLABackend creates GoMLX's XLA/PJRT backend; cfg is the PJRT plugin name ("cpu", "cuda",
// an absolute path to a plugin, or "" for the first available one). PJRT plugins are searched
// in $PJRT_PLUGIN_LIBRARY_PATH; $GOMLX_NO_AUTO_INSTALL stops GoMLX from trying to download them.
func newXLABackend(config, cfg string) (backends.Backend, error) {
	b, err := xla.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("graph.NewBackend(%q): %w", config, err)
	}
	return b, nil
}
