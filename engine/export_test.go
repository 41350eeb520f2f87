package engine

import (
	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
)

// KernelRuns is the number of nodes artnet's kernels have executed so far.
func KernelRuns() int64 {
	var n int64
	for i := range kernelRuns {
		n += kernelRuns[i].Load()
	}
	return n
}

// ConvKernelRuns is the number of ConvGeneral nodes artnet's kernels have executed so far.
func ConvKernelRuns() int64 { return kernelRuns[backends.OpTypeConvGeneral].Load() }

// DotGeneralAxes returns the axes GoMLX recorded in a DotGeneral node, as artnet's VJP reads them.
func DotGeneralAxes(node *Node) (lc, lb, rc, rb []int, err error) {
	p, err := dotGeneralParamsOf(node)
	return p.lhsContracting, p.lhsBatch, p.rhsContracting, p.rhsBatch, err
}

// FusedRuns is the number of fused elementwise nodes executed so far.
func FusedRuns() int64 { return kernelRuns[fusedOpType].Load() }

// FusedError is why elementwise fusion is off (nil when on).
func FusedError() error { return fusedKernelErr }

// FusedBroadcastRuns is the number of broadcast leaves fused nodes have read so far.
func FusedBroadcastRuns() int64 { return fusedBroadcastRuns.Load() }
