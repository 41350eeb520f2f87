//go:build xla

package engine_test

import (
	"os"
	"testing"

	"github.com/artnet/artnet/engine"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestXLA runs a convolution forward and its gradient through "xla:cpu" and "xla:cuda" when
// their PJRT plugins are found. A missing plugin must be an error, not a panic; it fails the
// test only when $PJRT_PLUGIN_LIBRARY_PATH is set (the caller means to use XLA).
func TestXLA(t *testing.T) {
	for _, config := range []string{"xla:cpu", "xla:cuda"} {
		t.Run(config, func(t *testing.T) {
			b, err := engine.NewBackend(config)
			if err != nil {
				if os.Getenv("PJRT_PLUGIN_LIBRARY_PATH") != "" {
					t.Fatalf("NewBackend(%q): %v", config, err)
				}
				t.Skipf("NewBackend(%q): %v (set PJRT_PLUGIN_LIBRARY_PATH to make this a failure)", config, err)
			}
			defer b.Finalize()
			cc := convCase{n: 2, c: 4, h: 7, w: 6, o: 4, k: 3, stride: 2, pad: 1, groups: 4}
			in := cc.inputs()
			var got arr
			run, done := plainExecOn(t, b)(func(xs []*Node) []*Node { return []*Node{cc.conv(xs)} })
			out, err := run(args(in)...)
			done()
			if err != nil {
				t.Fatal(err)
			}
			got = arr{tensors.MustCopyFlatData[float64](out[0]), out[0].Shape().Dimensions}
			checkClose(t, got, cc.reference(in[0], in[1]), 1e-9)
			checkGradWith(t, plainExecOn(t, b), in, cc.conv)
		})
	}
}
