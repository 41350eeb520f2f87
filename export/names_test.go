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
	cfg, ctx := spec.Tiny(), newContext()
	n := cfg.ImageSize
	gomlxRun(t, ctx, func(ctx *context.Context, x *graph.Node) []*graph.Node { return models.Build(ctx, cfg, x).Ordered() },
		randInput(1, 3*n*n), []int{1, 3, n, n}) // creates the variables
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
