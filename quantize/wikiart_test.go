package quantize

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/defaultmodel"
	"github.com/artnet/artnet/evaluate"
	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/preprocess"
	"github.com/artnet/artnet/wikiart"
)

// TestDefaultModelWikiArt is the accuracy check as an integration test: the built-in
// model quantized with the default options, calibrated on 256 images of the full WikiArt set's
// train split, must keep the top-1 of every task within 1 point of the float model on the val
// split (evaluate.Run on both).
func TestDefaultModelWikiArt(t *testing.T) {
	root := testenv.WikiArt(t)
	if testing.Short() {
		t.Skip("quantizes and evaluates the built-in model on WikiArt (about a minute): not with -short")
	}
	if err := onnxrt.Init(""); err != nil {
		t.Fatalf("ONNX Runtime: %v", err)
	}
	fp := defaultmodel.Bytes()
	it, err := spec.ValidateONNX(defaultmodel.Name, fp)
	if err != nil {
		t.Fatal(err)
	}
	files, err := CalibrationFiles(root, 256)
	if err != nil {
		t.Fatal(err)
	}
	batches, _, err := LoadImages(context.Background(), files, preprocess.FromConfig(it.Config), 8)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := Model(context.Background(), fp, Options{Batches: batches, Source: root, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	q, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	_, val, classes, _, err := wikiart.Load(wikiart.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	top1 := func(name string, data []byte) map[string]float64 {
		p, err := onnxrt.OpenBytes(name, data, onnxrt.Options{IntraOpThreads: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		sum, err := evaluate.Run(context.Background(), p, val.Samples, evaluate.Options{Images: filepath.Join(root, "images"), Classes: classes})
		if err != nil {
			t.Fatal(err)
		}
		r := map[string]float64{}
		for _, tr := range sum.Tasks {
			r[tr.Task] = tr.Top1
		}
		return r
	}
	a, b := top1("fp32", fp), top1("int8", q)
	for _, task := range spec.Tasks {
		d := 100 * (b[task] - a[task])
		t.Logf("%s: top-1 fp32 %.2f %%, int8 %.2f %% (%+.2f points)", task, 100*a[task], 100*b[task], d)
		if math.Abs(d) > 1 {
			t.Errorf("%s: int8 top-1 %.2f %% is %+.2f points from fp32's %.2f %% (want within 1)", task, 100*b[task], d, 100*a[task])
		}
	}
}
