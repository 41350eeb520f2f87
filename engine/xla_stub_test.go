//go:build !xla

package engine_test

import (
	"strings"
	"testing"

	"github.com/artnet/artnet/engine"
)

// TestXLANotCompiledIn: without the xla build tag, "xla" configs fail with a one-line error
// saying how to get them.
func TestXLANotCompiledIn(t *testing.T) {
	for _, config := range []string{"xla", "xla:cpu", "xla:cuda"} {
		_, err := engine.NewBackend(config)
		if err == nil {
			t.Fatalf("NewBackend(%q) succeeded without the xla build tag", config)
		}
		msg := err.Error()
		for _, want := range []string{"-tags xla", "PJRT_PLUGIN_LIBRARY_PATH", "GOMLX_NO_AUTO_INSTALL"} {
			if !strings.Contains(msg, want) {
				t.Errorf("NewBackend(%q) error %q lacks %q", config, msg, want)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("NewBackend(%q) error is not one line: %q", config, msg)
		}
	}
	if err := engine.Available()["xla:cuda"]; err == nil {
		t.Errorf("Available()[\"xla:cuda\"] = nil without the xla build tag")
	}
}
