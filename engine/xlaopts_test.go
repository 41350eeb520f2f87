package engine

import (
	"reflect"
	"strings"
	"testing"
)

func TestXLAClientOptions(t *testing.T) {
	for _, c := range []struct {
		cfg, want string
		opts      map[string]any
	}{
		{"cuda", "cuda", nil},
		{"", "", nil},
		{"cuda,tf32", "cuda,tf32", nil},
		{"cuda,nopreallocate", "cuda", map[string]any{"preallocate": false}},
		{"/opt/x/jax_plugins/xla_cuda13/xla_cuda_plugin.so,nopreallocate,tf32,mem_fraction=0.5",
			"/opt/x/jax_plugins/xla_cuda13/xla_cuda_plugin.so,tf32",
			map[string]any{"preallocate": false, "memory_fraction": float32(0.5)}},
	} {
		got, opts, err := xlaClientOptions("xla:"+c.cfg, c.cfg)
		if err != nil {
			t.Fatalf("%q: %v", c.cfg, err)
		}
		if got != c.want || !reflect.DeepEqual(opts, c.opts) {
			t.Errorf("%q: got %q %v, want %q %v", c.cfg, got, opts, c.want, c.opts)
		}
	}
	for _, bad := range []string{"cuda,mem_fraction=0", "cuda,mem_fraction=1.5", "cuda,mem_fraction=x"} {
		_, _, err := xlaClientOptions("xla:"+bad, bad)
		if err == nil || !strings.Contains(err.Error(), "mem_fraction") || !strings.Contains(err.Error(), "xla:"+bad) {
			t.Errorf("%q: error %v, want one naming the config and mem_fraction", bad, err)
		}
	}
}
