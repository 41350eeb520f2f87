// Package artnet is the Go API for embedding artnet in a program: open a DeepArtNet model (an
// exported ONNX file, or the built-in default model) and predict the style, genre and artist
// of a painting, with confidences, top-k and the attention map — what the seed project's
// Python `DeepArtNet.load_from_checkpoint(...).predict(image)` gives.
//
//	m, err := artnet.OpenDefault(artnet.Options{})   // or artnet.Open("model.onnx", …)
//	defer m.Close()
//	r, err := m.PredictFile(ctx, "painting.jpg")     // or Predict(ctx, img), PredictBytes(ctx, b)
//	fmt.Println(r.Style.Label, r.Style.Confidence, r.Style.TopK, r.AttentionMap())
//
// It is a thin layer over the packages the CLI and the server use: runtime (ONNX Runtime;
// the library is found as `artnet predict` finds it: Options.Runtime.LibraryPath,
// $ONNXRUNTIME_SHARED_LIBRARY_PATH, the project's third_party/onnxruntime, system folders),
// defaultmodel (the embedded model), preprocess (decoding, resize, crop, normalization),
// predict (labels, top-k) and heatmap (the overlay). Wrap runs any predict.Predictor, e.g. a
// GoMLX one. A Model is safe for concurrent use when its predictor is (ONNX Runtime's is).
// The package lives at the module root so that it is imported as github.com/artnet/artnet.
package artnet

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"os"

	"github.com/artnet/artnet/defaultmodel"
	"github.com/artnet/artnet/heatmap"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/preprocess"
)

// DefaultTopK is the number of classes per task in a Result's TopK when Options.TopK is 0.
const DefaultTopK = 5

// Options configure a Model.
type Options struct {
	// TopK is how many classes per task each Result lists in TopK, best first (0: DefaultTopK;
	// 1: none, only the top label).
	TopK int
	// Runtime configures ONNX Runtime: library path, providers (cpu, cuda, tensorrt), threads.
	Runtime onnxrt.Options
}

// Model is an opened artnet model.
type Model struct {
	pl   *predict.Pipeline
	cfg  spec.Config
	pre  preprocess.Options
	topK int
}

// Open opens an exported artnet ONNX file in ONNX Runtime. A file that is not an artnet model is
// refused with a one-line reason naming it.
func Open(path string, o Options) (*Model, error) {
	m, err := onnxrt.Open(path, o.Runtime)
	if err != nil {
		return nil, fmt.Errorf("artnet: %w", err)
	}
	return Wrap(m, o)
}

// OpenBytes opens an artnet ONNX model held in memory; name is used in errors.
func OpenBytes(name string, onnx []byte, o Options) (*Model, error) {
	m, err := onnxrt.OpenBytes(name, onnx, o.Runtime)
	if err != nil {
		return nil, fmt.Errorf("artnet: %w", err)
	}
	return Wrap(m, o)
}

// OpenDefault opens the built-in default model (defaultmodel: trained by artnet on WikiArt,
// embedded in the binary), the model `artnet predict` uses without --model.
func OpenDefault(o Options) (*Model, error) {
	return OpenBytes(defaultmodel.Name, defaultmodel.Bytes(), o)
}

// Wrap makes a Model of any predictor (ONNX Runtime, GoMLX, a test double). The Model owns p:
// its Close closes p, also when Wrap fails.
func Wrap(p predict.Predictor, o Options) (*Model, error) {
	if o.TopK < 0 {
		_ = p.Close()
		return nil, fmt.Errorf("artnet: Options.TopK must be >= 0, got %d", o.TopK)
	}
	pl, err := predict.NewPipeline(p)
	if err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("artnet: %w", err)
	}
	k := o.TopK
	if k == 0 {
		k = DefaultTopK
	}
	return &Model{pl: pl, cfg: pl.Config(), pre: pl.Options(), topK: k}, nil
}

// Close releases the model (its ONNX Runtime session). The ONNX Runtime library stays loaded
// for the process; onnxrt.Shutdown unloads it once every model is closed.
func (m *Model) Close() error { return m.pl.Predictor().Close() }

// Config returns the model's configuration: classes, input size, preprocessing, token grid.
func (m *Model) Config() spec.Config { return m.cfg }

// Classes returns the class names of a task ("style", "genre" or "artist"), in output order.
func (m *Model) Classes(task string) []string { return append([]string(nil), m.cfg.Classes[task]...) }

// Result is the prediction for one image: per task the top label and its confidence, and the
// top-k (predict.Prediction, the shape `artnet predict --json` prints), plus the attention
// weights over the token grid and the decoded image for Heatmap.
type Result struct {
	predict.Prediction
	img  image.Image
	crop image.Rectangle
}

// AttentionMap returns the attention weights as Grid[0] rows of Grid[1] columns over the part of
// the painting the model saw (the centre crop); they sum to 1.
func (r *Result) AttentionMap() [][]float32 {
	h, w := r.Grid[0], r.Grid[1]
	rows := make([][]float32, h)
	for y := range rows {
		rows[y] = r.Attention[y*w : (y+1)*w : (y+1)*w]
	}
	return rows
}

// Heatmap returns the painting with the attention drawn over the crop the model saw and the rest
// dimmed (heatmap.Overlay); encode it with heatmap.EncodePNG or image/png.
func (r *Result) Heatmap() *image.RGBA {
	return heatmap.Overlay(r.img, r.Attention, r.Grid[0], r.Grid[1], r.crop)
}

// Predict predicts one decoded image (any image.Image; transparent pixels count as white).
func (m *Model) Predict(ctx context.Context, img image.Image) (*Result, error) {
	rs, err := m.PredictImages(ctx, []image.Image{img})
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// PredictImages predicts a batch of decoded images in one model run.
func (m *Model) PredictImages(ctx context.Context, imgs []image.Image) ([]*Result, error) {
	return m.run(ctx, imgs, nil)
}

// PredictBytes decodes an image file held in memory (JPEG, PNG, GIF or WebP; EXIF orientation
// applied; at most 50 megapixels, checked from the header) and predicts it.
func (m *Model) PredictBytes(ctx context.Context, data []byte) (*Result, error) {
	img, err := m.pl.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("artnet: %w", err)
	}
	rs, err := m.run(ctx, []image.Image{img}, nil)
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// PredictFile reads, decodes and predicts the image file at path; Result.Image is path.
func (m *Model) PredictFile(ctx context.Context, path string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("artnet: %w", err)
	}
	defer f.Close()
	img, err := m.pl.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("artnet: %s: %w", path, err)
	}
	rs, err := m.run(ctx, []image.Image{img}, []string{path})
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// run preprocesses imgs into one batch, runs it and postprocesses each row (names: Result.Image).
func (m *Model) run(ctx context.Context, imgs []image.Image, names []string) ([]*Result, error) {
	if len(imgs) == 0 {
		return nil, fmt.Errorf("artnet: no image given")
	}
	n := m.pre.Len()
	batch := make([]float32, len(imgs)*n)
	for i, img := range imgs {
		if err := m.pl.Preprocess(batch[i*n:(i+1)*n], img); err != nil {
			return nil, fmt.Errorf("artnet: image %d: %w", i, err)
		}
	}
	res, err := m.pl.Run(ctx, batch, len(imgs))
	if err != nil {
		return nil, fmt.Errorf("artnet: model run on %d images: %w", len(imgs), err)
	}
	out := make([]*Result, len(imgs))
	for i, img := range imgs {
		name := ""
		if names != nil {
			name = names[i]
		}
		pr, err := m.pl.Postprocess(res, i, name, m.topK, true)
		if err != nil {
			return nil, fmt.Errorf("artnet: %w", err)
		}
		b := img.Bounds()
		out[i] = &Result{
			Prediction: *pr,
			img:        img,
			crop:       preprocess.CropBox(b.Dx(), b.Dy(), m.pre).Add(b.Min),
		}
	}
	return out, nil
}
