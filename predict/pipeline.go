package predict

import (
	"context"
	"fmt"
	"image"
	"io"
	"math"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/preprocess"
)

// Pipeline is the one inference path every caller takes — the Go API (artnet.Model),
// `artnet predict` (Files), `artnet evaluate` and the server: Decode → Preprocess → Run (the
// result checked against the model's configuration) → Postprocess. Callers keep what is theirs
// around these calls (the server its memory accounting and batching, evaluate its metrics, the
// CLI its printing); the steps themselves are written only here. A Pipeline is safe for
// concurrent use when its Predictor is.
type Pipeline struct {
	p   Predictor
	cfg spec.Config
	pre preprocess.Options
}

// NewPipeline builds the pipeline of p: preprocessing from p's configuration, then adjusted by
// each tune (e.g. the server's pixel cap or JPEG draft mode). The configuration and the
// resulting options are validated; the error names the field.
func NewPipeline(p Predictor, tune ...func(*preprocess.Options)) (*Pipeline, error) {
	if p == nil {
		return nil, fmt.Errorf("predict: no model")
	}
	cfg := p.Config()
	pre := preprocess.FromConfig(cfg)
	for _, f := range tune {
		f(&pre)
	}
	if err := pre.Validate(); err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	return &Pipeline{p: p, cfg: cfg, pre: pre}, nil
}

// Predictor returns the model the pipeline runs.
func (pl *Pipeline) Predictor() Predictor { return pl.p }

// Config returns the model's configuration (classes, input size, token grid).
func (pl *Pipeline) Config() spec.Config { return pl.cfg }

// Options returns the preprocessing options.
func (pl *Pipeline) Options() preprocess.Options { return pl.pre }

// Decode decodes an image from r (pixel cap, minimum side, EXIF orientation; no resizing).
func (pl *Pipeline) Decode(r io.Reader) (image.Image, error) {
	return preprocess.DecodeImage(r, pl.pre)
}

// DecodeFile decodes the image file at path; errors start with the path.
func (pl *Pipeline) DecodeFile(path string) (image.Image, error) {
	return preprocess.DecodeImageFile(path, pl.pre)
}

// Preprocess writes img's normalized CHW tensor into dst, which must hold exactly one image
// (Options().Len() values). An image decoded elsewhere is checked against the pixel cap and the
// minimum side first.
func (pl *Pipeline) Preprocess(dst []float32, img image.Image) error {
	if img == nil {
		return fmt.Errorf("image is nil")
	}
	if len(dst) != pl.pre.Len() {
		return fmt.Errorf("preprocess: tensor of %d values, want %d", len(dst), pl.pre.Len())
	}
	if err := pl.pre.CheckBounds(img.Bounds()); err != nil {
		return err
	}
	preprocess.ToTensorInto(dst, img, pl.pre)
	return nil
}

// Run runs a batch of n preprocessed images and checks the result against the model's
// configuration (CheckResult): a predictor answering with missing or misshapen outputs is an
// error here, never a panic later.
func (pl *Pipeline) Run(ctx context.Context, images []float32, n int) (*Result, error) {
	if n <= 0 || len(images) != n*pl.pre.Len() {
		return nil, fmt.Errorf("model run: %d input values for %d images, want %d", len(images), n, n*pl.pre.Len())
	}
	res, err := pl.p.Run(ctx, images, n)
	if err != nil {
		return nil, err
	}
	if err := CheckResult(pl.cfg, res, n); err != nil {
		return nil, err
	}
	return res, nil
}

// CheckResult checks that res answers a batch of n images of a model with configuration cfg:
// Batch n, every task's probabilities n×classes, the attention n×tokens (cfg.Tokens()). The
// error is one line naming the output.
func CheckResult(cfg spec.Config, res *Result, n int) error {
	if res == nil {
		return fmt.Errorf("model run: no result for a batch of %d", n)
	}
	if res.Batch != n {
		return fmt.Errorf("model run: result for a batch of %d, want %d", res.Batch, n)
	}
	for _, t := range spec.Tasks {
		v, ok := res.Probs[t]
		if !ok {
			return fmt.Errorf("model run: output %s missing", t)
		}
		if want := n * cfg.NumClasses(t); len(v) != want {
			return fmt.Errorf("model run: output %s has %d values for a batch of %d, want %d (%d classes)", t, len(v), n, want, cfg.NumClasses(t))
		}
	}
	if want := n * cfg.Tokens(); len(res.Attention) != want {
		return fmt.Errorf("model run: output %s has %d values for a batch of %d, want %d (%d tokens)", spec.OutputAttention, len(res.Attention), n, want, cfg.Tokens())
	}
	return nil
}

// Postprocess turns row i of a checked batch result (Run's) into a Prediction: per task the top
// label and, when k > 1, the top k; the attention row and grid when withAttention. A row that
// does not match the configuration is an error naming the task.
func (pl *Pipeline) Postprocess(res *Result, i int, image string, k int, withAttention bool) (*Prediction, error) {
	return postprocess(pl.cfg, res, i, image, k, withAttention)
}

func postprocess(cfg spec.Config, res *Result, i int, image string, k int, withAttention bool) (*Prediction, error) {
	if res == nil || i < 0 || i >= res.Batch {
		return nil, fmt.Errorf("postprocess: image %d is not in the result", i)
	}
	p := &Prediction{Image: image}
	for _, t := range spec.Tasks {
		row, names := res.Row(t, i), cfg.Classes[t]
		if len(row) == 0 || len(row) != len(names) {
			return nil, fmt.Errorf("postprocess: output %s has %d values for image %d, want %d", t, len(row), i, len(names))
		}
		for _, v := range row {
			if math.IsNaN(float64(v)) {
				return nil, fmt.Errorf("postprocess: output %s is NaN for image %d", t, i)
			}
		}
		top := TopK(row, names, max(k, 1))
		tp := &TaskPrediction{Label: top[0].Label, Confidence: top[0].Confidence}
		if k > 1 {
			tp.TopK = top
		}
		*p.Task(t) = tp
	}
	if withAttention {
		n := cfg.Tokens()
		row := res.Row(spec.OutputAttention, i)
		if len(row) != n {
			return nil, fmt.Errorf("postprocess: output %s has %d values for image %d, want %d", spec.OutputAttention, len(row), i, n)
		}
		p.Attention = append([]float32(nil), row...)
		h, w := cfg.Grid()
		p.Grid = []int{h, w}
	}
	return p, nil
}
