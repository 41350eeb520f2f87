package benchmark

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/artnet/artnet/models/spec"
)

// smallConfig is a DeepArtNet small enough to count by hand: b0 at width/depth 0.25, stage 1
// only (one MBConv block, expand 1, 3×3 depthwise, stride 1, 8 → 8 channels, SE squeeze 2), head
// conv to 16 channels, 16×16 input (stem stride 2 → 8×8 grid = 64 tokens), projection 8, one
// BiLSTM layer of 4 per direction, attention 4, heads 8 → 27/10/23 classes.
func smallConfig() spec.Config {
	c := spec.Tiny()
	c.WidthMult, c.DepthMult, c.Stages, c.HeadChannels = 0.25, 0.25, 1, 16
	c.ImageSize, c.ResizeSize = 16, 18
	c.ProjDim, c.LSTMHidden, c.LSTMLayers, c.AttnDim, c.HeadHidden = 8, 4, 1, 4, 8
	return c
}

// TestCountMACsByHand checks the graph-based count against the architecture counted by hand.
func TestCountMACsByHand(t *testing.T) {
	const B = 2
	const hw = 8 * 8         // output grid of the stem (stride 2 on 16×16) and of the whole backbone
	conv := B*8*hw*(3*3*3) + // stem: 3 → 8 channels, 3×3, stride 2
		B*8*hw*(3*3) // block depthwise 3×3 on 8 channels (groups = 8: one input channel each)
	dot := B*2*8 + B*8*2 + // squeeze-excitation fc1 8 → 2, fc2 2 → 8
		B*8*hw*8 + // block projection 1×1, 8 → 8
		B*16*hw*8 + // head conv 1×1, 8 → 16
		B*hw*8*16 + // token projection 16 → 8 per token
		2*(B*hw*(4*4)*8+B*(hw-1)*(4*4)*4) + // BiLSTM, 2 directions: input 8 → 4·4 gates for every step, recurrent 4 → 16 from the second step on
		B*hw*4*8 + B*hw*1*4 + B*8*hw + // attention W (8 → 4), v (4 → 1), context Σ α_t h_t
		3*(B*8*8) + B*8*(27+10+23) // heads: 8 → 8 hidden, then 8 → classes
	got, err := CountMACs(smallConfig(), B)
	if err != nil {
		t.Fatal(err)
	}
	if got.Conv != int64(conv) || got.Dot != int64(dot) {
		t.Errorf("CountMACs = %+v, hand count conv %d dot %d", got, conv, dot)
	}
	if tr := TrainingMACs(got); tr.Total() != 3*got.Total() {
		t.Errorf("TrainingMACs = %+v, want 3× %d", tr, got.Total())
	}
}

// TestCountMACsScales checks that the count grows linearly with the batch and that a full b0 at
// 224 px lands near torchvision's published 0.39 G multiply-adds for efficientnet_b0 (its
// backbone; DeepArtNet adds the projection, BiLSTM, attention and heads on 7×7 tokens).
func TestCountMACsScales(t *testing.T) {
	c := spec.Default()
	c.Variant, c.ImageSize, c.ResizeSize = "b0", 224, 256
	one, err := CountMACs(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	two, err := CountMACs(c, 2)
	if err != nil {
		t.Fatal(err)
	}
	if two.Total() != 2*one.Total() {
		t.Errorf("batch 2 counts %d, batch 1 %d: not linear", two.Total(), one.Total())
	}
	// Head beyond the backbone, by hand: projection 1280 → 512 on 49 tokens; BiLSTM 2 layers × 2
	// directions, 4·256 gates from 512 inputs on 49 steps and from 256 recurrent on 48; attention
	// 512 → 256 → 1 and the context; heads 512 → 256 → 60 classes.
	head := int64(49*512*1280 + 4*(49*1024*512+48*1024*256) + 49*256*512 + 49*256 + 49*512 + 3*256*512 + 256*60)
	backbone := one.Total() - head
	t.Logf("b0 224 px: %+v, backbone %d", one, backbone)
	if backbone < 380e6 || backbone > 400e6 {
		t.Errorf("b0 backbone at 224 px: %d MACs, torchvision says ≈ 0.39 G", backbone)
	}
}

func TestConvAndDotMACs(t *testing.T) {
	out := shapes.Make(dtypes.Float32, 2, 6, 5, 5)    // [B, O, H, W]
	kernel := shapes.Make(dtypes.Float32, 6, 3, 3, 3) // [O, C/groups, kh, kw]
	if got := ConvMACs(out, kernel, 0); got != 2*6*25*27 {
		t.Errorf("ConvMACs = %d", got)
	}
	if got := ConvMACs(out, kernel, 7); got != 0 {
		t.Errorf("ConvMACs with a bad axis = %d, want 0", got)
	}
	lhs := shapes.Make(dtypes.Float32, 4, 3, 7) // [B, M, K] × [B, K, N] → [B, M, N]
	if got := DotMACs(shapes.Make(dtypes.Float32, 4, 3, 5), lhs, []int{2}); got != 4*3*5*7 {
		t.Errorf("DotMACs = %d", got)
	}
}
