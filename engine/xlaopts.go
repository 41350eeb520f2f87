package engine

import (
	"fmt"
	"strconv"
	"strings"
)

// xlaClientOptions splits the <cfg> of an "xla:<cfg>" backend config into what GoMLX's XLA
// backend understands (the PJRT plugin name or absolute path, then its own comma-separated
// options: shared_buffers, noshared_buffers, tf32) and artnet's PJRT client options, which GoMLX's
// xla.New cannot pass:
//
//   - "nopreallocate": the GPU allocator grows as needed instead of taking 75% of the GPU's memory
//     at start (PJRT option preallocate=false), so nvidia-smi's peak shows what the run uses
//     (scripts/gpu-check.sh measures memory that way);
//   - "mem_fraction=F" (0 < F ≤ 1): the share of GPU memory the allocator may use (memory_fraction).
//
// The plugin may be an absolute path, e.g. xla:/…/jax_plugins/xla_cuda13/xla_cuda_plugin.so:
// GoMLX then loads that file as it is named (a plugin found through $PJRT_PLUGIN_LIBRARY_PATH
// must be named pjrt_c_api_<name>_plugin.so).
func xlaClientOptions(config, cfg string) (gomlxCfg string, opts map[string]any, err error) {
	parts := strings.Split(cfg, ",")
	keep := parts[:1]
	for _, p := range parts[1:] {
		switch {
		case p == "nopreallocate":
			if opts == nil {
				opts = map[string]any{}
			}
			opts["preallocate"] = false
		case strings.HasPrefix(p, "mem_fraction="):
			f, perr := strconv.ParseFloat(strings.TrimPrefix(p, "mem_fraction="), 32)
			if perr != nil || !(f > 0 && f <= 1) {
				return "", nil, fmt.Errorf("graph.NewBackend(%q): option %q: want mem_fraction=F with 0 < F ≤ 1", config, p)
			}
			if opts == nil {
				opts = map[string]any{}
			}
			opts["memory_fraction"] = float32(f)
		default:
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, ","), opts, nil
}
