package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/defaultmodel"
	"github.com/artnet/artnet/predict"
)

// TestDefaultModelPredictsPainting opens the built-in model the way predict does without
// --model and predicts a real painting with it.
func TestDefaultModelPredictsPainting(t *testing.T) {
	var out, errw bytes.Buffer
	app := &cli.App{Name: "t", Writer: &out, ErrWriter: &errw, Commands: []*cli.Command{{
		Name: "p", Flags: runtimeFlags(),
		Action: func(c *cli.Context) error {
			m, err := openDefaultModel(c)
			if err != nil {
				return err
			}
			defer m.Close()
			if m.Name() != defaultmodel.Name {
				t.Errorf("model name %q, want %q", m.Name(), defaultmodel.Name)
			}
			var p predict.Predictor = m
			return predict.Files(c.Context, p, []string{"../../../shared/paintings/edvard-munch_the-scream.jpg"},
				predict.FilesOptions{TopK: 3, JSON: true, Batch: 1}, c.App.Writer, c.App.ErrWriter)
		},
	}}}
	if err := app.RunContext(context.Background(), []string{"t", "p", "--threads", "1"}); err != nil {
		t.Fatalf("%v\n%s", err, errw.String())
	}
	if !bytes.Contains(out.Bytes(), []byte(`"style"`)) || !bytes.Contains(out.Bytes(), []byte("edvard-munch_the-scream.jpg")) {
		t.Errorf("prediction output: %s", out.String())
	}
}
