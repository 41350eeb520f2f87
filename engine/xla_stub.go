//go:build !xla

package engine

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
)

// xlaCompiled reports whether the XLA/PJRT backend is compiled in (build tag `xla`).
const xlaCompiled = false

// newXLABackend fails: this binary was built without the `xla` build tag.
func newXLABackend(config, _ string) (backends.Backend, error) {
	return nil, fmt.Errorf("graph.NewBackend(%q): the XLA/PJRT backend is not compiled in: build with -tags xla "+
		"(CGO on) and point PJRT_PLUGIN_LIBRARY_PATH at a folder holding the PJRT plugin "+
		"(set GOMLX_NO_AUTO_INSTALL=1 to stop GoMLX from trying to download it)", config)
}
