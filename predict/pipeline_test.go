package predict

import (
	"context"
	"strings"
	"testing"

	"github.com/artnet/artnet/models/spec"
)

// mangled is a predictor whose result is changed by edit after fakePredictor computed it.
type mangled struct {
	fakePredictor
	edit func(*Result)
}

func (m mangled) Run(ctx context.Context, x []float32, n int) (*Result, error) {
	res, err := m.fakePredictor.Run(ctx, x, n)
	m.edit(res)
	return res, err
}

// Pipeline.Run refuses any result that does not fit the model's configuration, naming the
// output, so that Postprocess never meets a missing or short row.
func TestPipelineRunChecksResult(t *testing.T) {
	cfg := spec.Tiny()
	cases := []struct {
		name, want string
		edit       func(*Result)
	}{
		{"genre missing", "genre", func(r *Result) { delete(r.Probs, spec.TaskGenre) }},
		{"style short", "style", func(r *Result) { r.Probs[spec.TaskStyle] = r.Probs[spec.TaskStyle][1:] }},
		{"attention long", spec.OutputAttention, func(r *Result) { r.Attention = append(r.Attention, 0) }},
		{"batch", "batch", func(r *Result) { r.Batch++ }},
	}
	x := make([]float32, 2*3*cfg.ImageSize*cfg.ImageSize)
	for _, c := range cases {
		pl := newPipeline(t, mangled{fakePredictor{cfg}, c.edit})
		res, err := pl.Run(context.Background(), x, 2)
		if err == nil || !strings.Contains(err.Error(), c.want) || res != nil {
			t.Errorf("%s: want an error naming %q, got %v", c.name, c.want, err)
		}
	}
	pl := newPipeline(t, fakePredictor{cfg})
	if _, err := pl.Run(context.Background(), x[:len(x)-1], 2); err == nil {
		t.Error("a short input tensor was run")
	}
	res, err := pl.Run(context.Background(), x, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Postprocess on its own also refuses rows that do not fit (a result not from Run).
	delete(res.Probs, spec.TaskArtist)
	if _, err := pl.Postprocess(res, 1, "x", 3, true); err == nil || !strings.Contains(err.Error(), "artist") {
		t.Errorf("postprocess without artist: %v", err)
	}
	if _, err := pl.Postprocess(res, 2, "x", 1, false); err == nil {
		t.Error("postprocess of image 2 of a batch of 2 succeeded")
	}
}
