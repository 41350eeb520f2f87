package main

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/artnet/artnet/cmd/internal/command"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/onnxrt/runtimetest"
)

// TestMainShutsDownORT: the binary's app run through command.Main (what main does) leaves no
// ONNX Runtime environment behind: the model is closed, then onnxrt.Shutdown destroys it.
func TestMainShutsDownORT(t *testing.T) {
	model := runtimetest.WriteTiny(t)
	app := newApp()
	app.Writer = io.Discard
	var errw bytes.Buffer
	if code := command.Main(context.Background(), app, []string{"artnet-serve", "predict", "--model", model, "../../testdata/images/quad.png"}, &errw); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errw.String())
	}
	if p := onnxrt.LibraryPath(); p != "" {
		t.Errorf("after Main the ONNX Runtime environment is still up (library %s)", p)
	}
}
