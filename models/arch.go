package models

import (
	"fmt"
	"math"

	"github.com/artnet/artnet/models/spec"
)

// baseStages is torchvision 0.14's EfficientNet-B0 inverted-residual setting:
// expand ratio, kernel, stride, input channels, output channels, layers.
var baseStages = [7][6]int{
	{1, 3, 1, 32, 16, 1},
	{6, 3, 2, 16, 24, 2},
	{6, 5, 2, 24, 40, 2},
	{6, 3, 2, 40, 80, 3},
	{6, 5, 1, 80, 112, 3},
	{6, 5, 2, 112, 192, 4},
	{6, 3, 1, 192, 320, 1},
}

// MakeDivisible is torchvision's _make_divisible(v, divisor) with min_value = divisor: v rounded
// to the nearest multiple of divisor, at least divisor, and never below 90% of v.
func MakeDivisible(v float64, divisor int) int {
	d := float64(divisor)
	n := int(math.Max(d, float64(int(v+d/2)/divisor*divisor)))
	if float64(n) < 0.9*v {
		n += divisor
	}
	return n
}

// adjustChannels is torchvision's _MBConvConfig.adjust_channels.
func adjustChannels(c int, width float64) int { return MakeDivisible(float64(c)*width, 8) }

// adjustDepth is torchvision's _MBConvConfig.adjust_depth.
func adjustDepth(layers int, depth float64) int { return int(math.Ceil(float64(layers) * depth)) }

// Block describes one MBConv block of the backbone, in torchvision's terms.
type Block struct {
	Stage, Index int // features.{Stage+1}.{Index}
	Expand       int // expand ratio (1: no expansion conv)
	Kernel       int
	Stride       int
	In, Out      int
	Expanded     int     // channels after expansion
	Squeeze      int     // SE squeeze channels = max(1, In/4)
	DropPath     float64 // stochastic depth probability
}

// Residual reports whether the block adds its input (stride 1 and In == Out).
func (b Block) Residual() bool { return b.Stride == 1 && b.In == b.Out }

// Arch is the backbone layout that a Config selects.
type Arch struct {
	StemChannels int
	Blocks       []Block
	HeadChannels int
	HeadIndex    int // the head conv is features.{HeadIndex}
}

// Architecture returns the backbone layout of cfg: torchvision's efficientnet_bN().features
// scaled by cfg.Width()/cfg.Depth() and truncated to cfg.NumStages() stages.
func Architecture(cfg spec.Config) (Arch, error) {
	w, d := cfg.Width(), cfg.Depth()
	if !(w > 0) || !(d > 0) {
		return Arch{}, fmt.Errorf("config field variant: %q gives no width/depth multipliers (set width_mult and depth_mult)", cfg.Variant)
	}
	n := cfg.NumStages()
	total := 0
	for s := 0; s < n; s++ {
		total += adjustDepth(baseStages[s][5], d)
	}
	a := Arch{StemChannels: adjustChannels(baseStages[0][3], w), HeadIndex: n + 1}
	id := 0
	for s := 0; s < n; s++ {
		st := baseStages[s]
		in, out := adjustChannels(st[3], w), adjustChannels(st[4], w)
		for i := 0; i < adjustDepth(st[5], d); i++ {
			b := Block{Stage: s, Index: i, Expand: st[0], Kernel: st[1], Stride: st[2], In: in, Out: out}
			if i > 0 {
				b.In, b.Stride = out, 1
			}
			b.Expanded = MakeDivisible(float64(b.In*b.Expand), 8)
			b.Squeeze = max(1, b.In/4)
			b.DropPath = cfg.DropPath * float64(id) / float64(total)
			a.Blocks = append(a.Blocks, b)
			id++
		}
	}
	last := a.Blocks[len(a.Blocks)-1].Out
	a.HeadChannels = cfg.HeadChannels
	if a.HeadChannels <= 0 {
		a.HeadChannels = 4 * last
	}
	return a, nil
}
