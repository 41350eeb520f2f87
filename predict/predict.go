// Package predict is the model-agnostic middle of inference: the Predictor interface that both
// runtimes (ONNX Runtime, GoMLX) satisfy, and Pipeline, the one inference path every caller
// takes — decode, preprocess, run (the result checked against the model's configuration),
// postprocess into the per-task labels, confidences and attention that `artnet predict --json`
// and the server answer.
// It has its own folder because the CLI and the server share it, and it must pull in neither
// GoMLX nor ONNX Runtime: both runtimes import it, not the other way round.
package predict

import (
	"context"
	"sort"

	"github.com/artnet/artnet/models/spec"
)

// Predictor is one forward pass of an artnet model, in ONNX Runtime or in GoMLX.
type Predictor interface {
	Config() spec.Config
	Run(ctx context.Context, images []float32, batch int) (*Result, error)
	Close() error
}

// Result holds the outputs of one Run: what every Predictor returns, whatever its runtime.
type Result struct {
	Batch     int
	Probs     map[string][]float32 // task → Batch×N row-major probabilities
	Attention []float32            // Batch×tokens attention weights, tokens row-major over the grid
}

// Output returns the model output named name for the whole batch: a task's probabilities, or
// the attention for spec.OutputAttention; nil for an unknown name.
func (r *Result) Output(name string) []float32 {
	if name == spec.OutputAttention {
		return r.Attention
	}
	return r.Probs[name]
}

// Row returns image i's row of a task's probabilities, or of the attention when task is
// spec.OutputAttention; nil for an unknown task or an i out of range.
func (r *Result) Row(task string, i int) []float32 {
	v := r.Output(task)
	if v == nil || i < 0 || i >= r.Batch || r.Batch == 0 {
		return nil
	}
	n := len(v) / r.Batch
	return v[i*n : (i+1)*n : (i+1)*n]
}

// Scored is one class with its probability.
type Scored struct {
	Label      string  `json:"label"`
	Confidence float64 `json:"confidence"`
}

// TaskPrediction is the answer for one task: the top class, and the top-k when asked.
type TaskPrediction struct {
	Label      string   `json:"label"`
	Confidence float64  `json:"confidence"`
	TopK       []Scored `json:"topk,omitempty"`
}

// Prediction is the answer for one image, shaped as `artnet predict --json` prints it.
type Prediction struct {
	Image     string          `json:"image"`
	Style     *TaskPrediction `json:"style"`
	Genre     *TaskPrediction `json:"genre"`
	Artist    *TaskPrediction `json:"artist"`
	Attention []float32       `json:"attention,omitempty"`
	Grid      []int           `json:"attention_grid,omitempty"`
	Heatmap   string          `json:"heatmap,omitempty"` // the attention overlay written for it, if any
}

// Task returns where the answer for task t (one of spec.Tasks) is held; nil for any other name.
func (p *Prediction) Task(t string) **TaskPrediction {
	switch t {
	case spec.TaskStyle:
		return &p.Style
	case spec.TaskGenre:
		return &p.Genre
	case spec.TaskArtist:
		return &p.Artist
	}
	return nil
}

// TopK returns the k most probable classes of probs, best first.
func TopK(probs []float32, names []string, k int) []Scored {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
	if k > len(idx) {
		k = len(idx)
	}
	out := make([]Scored, k)
	for i := 0; i < k; i++ {
		out[i] = Scored{Label: names[idx[i]], Confidence: float64(probs[idx[i]])}
	}
	return out
}
