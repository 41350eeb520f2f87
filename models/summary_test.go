package models

import (
	"slices"
	"testing"

	"github.com/artnet/artnet/models/spec"
)

// TestSummarizeB0 checks the per-module parameter counts and output shapes of efficientnet_b0
// at 224×224 against torchvision 0.14's (torchinfo-style per features.{i} numbers).
func TestSummarizeB0(t *testing.T) {
	cfg := spec.Default()
	cfg.Variant = "b0"
	s, err := Summarize(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		params int
		shape  []int
	}{
		{928, []int{1, 32, 112, 112}}, {1448, []int{1, 16, 112, 112}}, {16714, []int{1, 24, 56, 56}},
		{46640, []int{1, 40, 28, 28}}, {242930, []int{1, 80, 14, 14}}, {543148, []int{1, 112, 14, 14}},
		{2026348, []int{1, 192, 7, 7}}, {717232, []int{1, 320, 7, 7}}, {412160, []int{1, 1280, 7, 7}},
	}
	if len(s.Modules) != len(want)+3+len(spec.Tasks) {
		t.Fatalf("%d modules: %+v", len(s.Modules), s.Modules)
	}
	total := 0
	for i, w := range want {
		m := s.Modules[i]
		if m.Params != w.params || !slices.Equal(m.Output, w.shape) {
			t.Errorf("%s (%s): %d params, output %v; torchvision: %d, %v", m.Module, m.What, m.Params, m.Output, w.params, w.shape)
		}
		total += m.Params
	}
	if total != 4007548 || s.Counts[PartBackbone] != total {
		t.Errorf("backbone modules sum to %d, ParamCounts %d, torchvision 4007548", total, s.Counts[PartBackbone])
	}
	rest := s.Modules[len(want):]
	if !slices.Equal(rest[0].Output, []int{1, 49, 512}) || !slices.Equal(rest[1].Output, []int{1, 49, 512}) ||
		!slices.Equal(rest[2].Output, []int{1, 49}) || !slices.Equal(rest[3].Output, []int{1, 27}) {
		t.Errorf("proj/encoder/attention/style outputs: %v %v %v %v", rest[0].Output, rest[1].Output, rest[2].Output, rest[3].Output)
	}
	sum := 0
	for _, m := range s.Modules {
		sum += m.Params
	}
	if sum != s.Counts[PartTotal] {
		t.Errorf("modules sum to %d, total %d", sum, s.Counts[PartTotal])
	}
}
