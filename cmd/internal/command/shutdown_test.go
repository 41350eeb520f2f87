package command

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

// TestMainShutsDownORT: after a command that opened (and closed) a model, Main destroys the ONNX
// Runtime environment (onnxrt.Shutdown, which refuses while a model is open); a command that
// leaves a model open gets Shutdown's refusal reported, not dropped.
func TestMainShutsDownORT(t *testing.T) {
	model := runtimetest.WriteTiny(t)
	app, _, _ := testApp(PredictOptions{})
	var errw bytes.Buffer
	if code := Main(context.Background(), app, []string{"t", "predict", "--model", model, filepath.Join(fixtures, "quad.png")}, &errw); code != 0 {
		t.Fatalf("Main: exit %d, stderr %q", code, errw.String())
	}
	if p := onnxrt.LibraryPath(); p != "" {
		t.Errorf("after Main the ONNX Runtime environment is still up (library %s)", p)
	}

	var leaked *onnxrt.Model
	app.Commands = append(app.Commands, &cli.Command{Name: "leak", Action: func(c *cli.Context) (err error) {
		leaked, err = onnxrt.Open(model, onnxrt.Options{})
		return err
	}})
	errw.Reset()
	code := Main(context.Background(), app, []string{"t", "leak"}, &errw)
	if code != 1 || !strings.Contains(errw.String(), "still open") {
		t.Errorf("a model left open: exit %d, stderr %q; want 1 and Shutdown's refusal", code, errw.String())
	}
	if leaked != nil {
		if err := leaked.Close(); err != nil {
			t.Error(err)
		}
	}
	if err := onnxrt.Shutdown(); err != nil {
		t.Error(err)
	}
}
