package server

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/runtime/runtimetest"
)

func writeTinyModel(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tiny.onnx")
	if err := os.WriteFile(p, runtimetest.TinyModel(spec.Tiny()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPredictFilesWithServerModel(t *testing.T) {
	m := tinyModel(t)
	dir := t.TempDir()
	paths := []string{filepath.Join(fixtures, "quad.png"), filepath.Join(fixtures, "bad-truncated.jpg"), filepath.Join(fixtures, "gray.jpg")}
	var out, errOut bytes.Buffer
	err := predict.Files(context.Background(), m, paths, predict.FilesOptions{TopK: 2, JSON: true, Attention: true, HeatmapDir: dir, Batch: 1}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "1 of 3 images failed") {
		t.Errorf("error %v, want 1 of 3 failed", err)
	}
	if !strings.Contains(errOut.String(), "bad-truncated.jpg") || strings.Count(errOut.String(), "\n") != 1 {
		t.Errorf("stderr %q: want one line naming the bad file", errOut.String())
	}
	dec := json.NewDecoder(&out)
	for _, name := range []string{paths[0], paths[2]} {
		var p predict.Prediction
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		want := expected(t, m, data, name, 2)
		if err := samePrediction(&p, want, 1e-5); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if len(p.Attention) != m.Config().Tokens() {
			t.Errorf("%s: %d attention weights", name, len(p.Attention))
		}
		base := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
		f, err := os.Open(filepath.Join(dir, base+".heatmap.png"))
		if err != nil {
			t.Fatalf("heatmap: %v", err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("heatmap: %v", err)
		}
		if img.Bounds().Empty() {
			t.Errorf("heatmap of %s is empty", name)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".heatmap-*")); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}

	out.Reset()
	if err := predict.Files(context.Background(), m, paths[:1], predict.FilesOptions{TopK: 1, Batch: 4}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if line := out.String(); !strings.HasPrefix(line, paths[0]+": style ") || !strings.Contains(line, "; genre ") || strings.Count(line, "\n") != 1 {
		t.Errorf("text output %q", line)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestServeCommand(t *testing.T) {
	model := writeTinyModel(t)
	app := &cli.App{Name: "t", Commands: []*cli.Command{Command(), PredictCommand()}, Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{}}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"t", "serve", "--addr", "256.1.1.1:1"}, "serve"}, // the built-in model, an address that cannot be bound
		{[]string{"t", "serve", "--model", model, "--batch", "0"}, "--batch"},
		{[]string{"t", "serve", "--model", model, "--provider", "tpu"}, "tpu"},
		{[]string{"t", "serve", "--model", filepath.Join(t.TempDir(), "none.onnx")}, "none.onnx"},
		{[]string{"t", "serve", "--model", model, "--addr", "256.1.1.1:1"}, "serve"},
		{[]string{"t", "predict", "--model", model}, "no image"},
	} {
		if err := app.RunContext(context.Background(), c.args); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: error %v, want one mentioning %q", c.args, err, c.msg)
		}
	}

	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, []string{"t", "serve", "--model", model, "--addr", addr, "--batch", "4", "--max-delay", "1ms", "--threads", "1"})
	}()
	url := "http://" + addr
	waitFor(t, "the server to be ready", func() bool {
		resp, err := http.Get(url + "/v2/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	var got PredictResponse
	if resp, body := post(t, url+"/v1/predict", "image/png", pngBytes(t, picture(64, 64, 1)), &got); resp.StatusCode != 200 || got.Style == nil {
		t.Errorf("predict: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}

	var out bytes.Buffer
	app.Writer = &out
	old := os.Stdout
	r, w, _ := os.Pipe()
	os.Stdout = w
	err := app.RunContext(context.Background(), []string{"t", "predict", "--model", model, "--json", filepath.Join(fixtures, "quad.png")})
	w.Close()
	os.Stdout = old
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(r)
	if err != nil {
		t.Fatal(err)
	}
	var p predict.Prediction
	if err := json.Unmarshal(buf.Bytes(), &p); err != nil || p.Style == nil {
		t.Errorf("predict --json printed %q (%v)", buf.String(), err)
	}
}
