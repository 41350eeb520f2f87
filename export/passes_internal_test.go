package export

import (
	"slices"
	"testing"
)

// The rewrites run in the order the list says, the LSTM fusion (on the recording) first, and
// squeeze-excitation's pooled layers before affine folding (their biases fold into their Convs).
func TestPassOrder(t *testing.T) {
	ps := passes([]*lstmFusion{{scope: "/encoder/lstm"}})
	var names []string
	seenNode := false
	for _, p := range ps {
		names = append(names, p.name())
		if !p.onRecording() {
			seenNode = true
		} else if seenNode {
			t.Errorf("recording pass %s after a node pass: it would never see the recording", p.name())
		}
	}
	want := []string{"lstm /encoder/lstm", "pointwise", "tokens", "pooled", "affine", "relu"}
	if !slices.Equal(names, want) {
		t.Errorf("passes %q, want %q", names, want)
	}
}
