package defaultmodel

import (
	"context"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/preprocess"
)

// TestEmbeddedModelValidates: the embedded file is an artnet model (metadata, inputs, outputs)
// with the WikiArt class names.
func TestEmbeddedModelValidates(t *testing.T) {
	it, err := spec.ValidateONNX(Name, Bytes())
	if err != nil {
		t.Fatal(err)
	}
	cfg := it.Config
	if cfg.NumClasses("style") != spec.NumStyles || cfg.NumClasses("genre") != spec.NumGenres || cfg.NumClasses("artist") != spec.NumArtists {
		t.Fatalf("classes %d/%d/%d, want %d/%d/%d", cfg.NumClasses("style"), cfg.NumClasses("genre"), cfg.NumClasses("artist"),
			spec.NumStyles, spec.NumGenres, spec.NumArtists)
	}
	if cfg.Classes["style"][0] != "Abstract_Expressionism" {
		t.Errorf("style class 0 is %q, want the WikiArt name Abstract_Expressionism", cfg.Classes["style"][0])
	}
	if n := len(Bytes()); n > 8<<20 {
		t.Errorf("embedded model is %d bytes, want a few MB at most", n)
	}
}

// TestEmbeddedModelPredictsPainting runs the embedded model in ONNX Runtime on a real painting
// (Van Gogh's Starry Night, Post-Impressionism: a style without training images here):
// probabilities per task sum to 1, and the predicted style is one of the 11 styles that had
// training images (the other 16 never occur as labels, so training pushes them down).
func TestEmbeddedModelPredictsPainting(t *testing.T) {
	m, err := onnxrt.OpenBytes(Name, Bytes(), onnxrt.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := m.Config()
	img, err := preprocess.DecodeFile(testenv.Testdata(t, testenv.StarryNight), preprocess.FromConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Run(context.Background(), img, 1)
	if err != nil {
		t.Fatal(err)
	}
	trained := map[string]bool{"Abstract_Expressionism": true, "Baroque": true, "Cubism": true, "Fauvism": true,
		"Impressionism": true, "Minimalism": true, "Naive_Art_Primitivism": true, "Pointillism": true,
		"Pop_Art": true, "Rococo": true, "Ukiyo_e": true}
	for _, task := range spec.Tasks {
		row := res.Row(task, 0)
		var sum float32
		best := 0
		for c, p := range row {
			sum += p
			if p > row[best] {
				best = c
			}
		}
		if len(row) != cfg.NumClasses(task) || sum < 0.999 || sum > 1.001 {
			t.Fatalf("%s: %d probabilities summing to %g", task, len(row), sum)
		}
		t.Logf("%s: %s (%.3f)", task, cfg.Classes[task][best], row[best])
		if task == "style" && !trained[cfg.Classes[task][best]] {
			t.Errorf("style %s predicted: not one of the 11 styles with training images", cfg.Classes[task][best])
		}
	}
}
