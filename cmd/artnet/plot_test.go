package main

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// writeSynthMetrics writes a metrics.jsonl like the trainer's: train lines with decaying
// losses, an eval line every 50 steps, a resumed stretch that repeats steps 151…180, and a
// last line cut off mid-write.
func writeSynthMetrics(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	line := func(v any) {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(j, '\n'))
	}
	train := func(step int, bump float64) {
		s := float64(step)
		tl := map[string]float64{"style": 3.3*math.Exp(-s/120) + 0.4 + bump, "genre": 2.3*math.Exp(-s/80) + 0.3, "artist": 3.1*math.Exp(-s/200) + 0.5}
		line(map[string]any{"kind": "train", "step": step, "loss": tl["style"] + tl["genre"] + tl["artist"], "task_loss": tl,
			"log_var": map[string]float64{"style": 0, "genre": 0, "artist": 0}, "lr": 1e-3, "seconds": 0.5, "images_per_sec": 64})
	}
	for s := 1; s <= 180; s++ {
		train(s, 0.5) // the interrupted run: to be replaced by the resumed one
		if s%50 == 0 {
			line(map[string]any{"kind": "eval", "step": s, "accuracy": map[string]float64{"style": 0.01, "genre": 0.01, "artist": 0.01}})
		}
	}
	for s := 151; s <= 300; s++ {
		train(s, 0)
		if s%50 == 0 {
			x := float64(s) / 300
			line(map[string]any{"kind": "eval", "step": s, "accuracy": map[string]float64{"style": 0.2 + 0.3*x, "genre": 0.3 + 0.4*x, "artist": 0.1 + 0.5*x}, "seconds": 3})
		}
	}
	line(map[string]any{"kind": "note", "text": "other kinds are ignored"})
	b.WriteString(`{"kind":"train","step":301,"lo`)
	p := filepath.Join(t.TempDir(), "metrics.jsonl")
	writeFile(t, p, b.String())
	return p
}

func TestPlotCommand(t *testing.T) {
	metrics := writeSynthMetrics(t)
	out := filepath.Join(t.TempDir(), "curves.png")
	cmds := []*cli.Command{plotCommand()}
	stdout, err := runCmds(t, cmds, "plot", "--metrics", metrics, "--out", out, "--width", "900", "--height", "700")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "300 training steps, 6 evaluations") {
		t.Errorf("stdout %q: want 300 steps (resumed steps counted once) and 6 evaluations", stdout)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if b := img.Bounds(); b.Dx() != 900 || b.Dy() != 700 {
		t.Errorf("image %v, want 900×700", b)
	}
	// Not blank: the curves put coloured (non-grey) pixels on the page.
	coloured := 0
	for y := 0; y < 700; y += 2 {
		for x := 0; x < 900; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			if max(r, g, b)-min(r, g, b) > 0x3000 {
				coloured++
			}
		}
	}
	if coloured < 200 {
		t.Errorf("only %d coloured pixels: no curves drawn?", coloured)
	}
	if os.Getenv("ARTNET_KEEP_PLOT") != "" {
		b, _ := os.ReadFile(out)
		_ = os.WriteFile(os.Getenv("ARTNET_KEEP_PLOT"), b, 0o644)
	}
}

func TestPlotErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	writeFile(t, bad, "{\"kind\":\"train\",\"step\":1,\"loss\":2}\nnot json\n{\"kind\":\"train\",\"step\":2,\"loss\":1}\n")
	noLoss := filepath.Join(dir, "noloss.jsonl")
	writeFile(t, noLoss, "{\"kind\":\"train\",\"step\":1}\n")
	empty := filepath.Join(dir, "empty.jsonl")
	writeFile(t, empty, "\n")
	cmds := []*cli.Command{plotCommand()}
	out := filepath.Join(dir, "c.png")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"plot", "--out", out}, "--metrics"},
		{[]string{"plot", "--metrics", bad, "--out", out}, "bad.jsonl:2"},
		{[]string{"plot", "--metrics", noLoss, "--out", out}, "noloss.jsonl:1"},
		{[]string{"plot", "--metrics", empty, "--out", out}, "no \"train\""},
		{[]string{"plot", "--metrics", filepath.Join(dir, "none.jsonl"), "--out", out}, "none.jsonl"},
		{[]string{"plot", "--metrics", bad, "--out", out, "--width", "10"}, "--width"},
	} {
		_, err := runCmds(t, cmds, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: want one-line error mentioning %q, got %v", tc.args, tc.want, err)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed plot wrote its output")
	}
}
