package export_test

import (
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/export"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
)

// The node name the package doc gives as its example exists: the stem's convolution is named
// after the scope of its weights, torchvision's features.0.0.
func TestNodeNamesAsDocumented(t *testing.T) {
	const documented = "/backbone/features/0/0/Conv_" // export.go's package doc
	cfg := spec.Tiny()
	ctx := newContext()
	fn := func(ctx *context.Context, x *graph.Node) []*graph.Node {
		o := models.Build(ctx, cfg, x)
		return []*graph.Node{o.Probs["style"], o.Probs["genre"], o.Probs["artist"], o.Attention}
	}
	inShape := []int{3, cfg.ImageSize, cfg.ImageSize}
	gomlxRun(t, ctx, fn, randInput(1, prod(inShape)), append([]int{1}, inShape...))
	m, err := export.Model(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range m.GetGraph().GetNode() {
		if strings.HasPrefix(n.GetName(), documented) {
			return
		}
		names = append(names, n.GetName())
	}
	t.Errorf("no node named %s…; the first are %q", documented, names[:min(5, len(names))])
}
