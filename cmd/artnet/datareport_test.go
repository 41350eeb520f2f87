package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/wikiart"
)

// `artnet data report` on the repository's sample and a style-only root made here writes the
// JSON, markdown and PNG; the JSON's figures agree with wikiart.Stats on the same roots (whose
// counts wikiart's tests check) and the union adds up the roots.
func TestDataReportCommand(t *testing.T) {
	sample := testenv.Sample(t)
	extra := t.TempDir()
	var train strings.Builder
	for i, style := range []string{"Expressionism", "Symbolism", "Symbolism"} {
		rel := fmt.Sprintf("%s/x%d.png", style, i)
		p := filepath.Join(extra, "images", filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 100+i, 80))); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&train, "%s,%d\n", rel, map[string]int{"Expressionism": 9, "Symbolism": 24}[style])
	}
	if err := os.WriteFile(filepath.Join(extra, "style_train.csv"), []byte(train.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "report")
	cmds := []*cli.Command{dataCommand()}
	stdout, err := runCmds(t, cmds, "data", "report", "--data", sample, "--data", extra, "--out", out, "--width", "900", "--height", "800")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, filepath.Join(out, dataReportMD)) {
		t.Errorf("output %q does not name the markdown file", stdout)
	}
	var got wikiart.DataReport
	b, err := os.ReadFile(filepath.Join(out, dataReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", dataReportJSON, err)
	}
	roots, err := wikiart.LoadRoots([]wikiart.Options{{Root: sample, Disjoint: true}, {Root: extra, Disjoint: true}})
	if err != nil {
		t.Fatal(err)
	}
	want, err := wikiart.Stats(t.Context(), roots, wikiart.StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if !bytes.Equal(wb, gb) {
		t.Errorf("the command's JSON differs from wikiart.Stats on the same roots:\n%s\n%s", gb, wb)
	}
	for si := range wikiart.SplitNames {
		if n := got.Roots[0].Splits[si].Images + got.Roots[1].Splits[si].Images; got.Union.Splits[si].Images != n {
			t.Errorf("%s: union %d images, roots %d", wikiart.SplitNames[si], got.Union.Splits[si].Images, n)
		}
	}
	if got.Roots[1].Splits[0].Images != 3 || got.Roots[1].Splits[0].Sizes.Width.Max != 102 {
		t.Errorf("extra root train: %+v", got.Roots[1].Splits[0])
	}
	md, err := os.ReadFile(filepath.Join(out, dataReportMD))
	if err != nil || string(md) != want.Markdown() {
		t.Errorf("%s: %v, or not DataReport.Markdown", dataReportMD, err)
	}
	f, err := os.Open(filepath.Join(out, dataReportPNG))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 900 || cfg.Height != 800 {
		t.Errorf("%s: %+v, %v; want 900×800", dataReportPNG, cfg, err)
	}
}

// Bad flags and data give one-line errors naming the flag or folder.
func TestDataReportErrors(t *testing.T) {
	cmds := []*cli.Command{dataCommand()}
	missing := filepath.Join(t.TempDir(), "nowhere")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", testenv.Sample(t)}, "--out"},
		{[]string{"--data", testenv.Sample(t), "--out", t.TempDir(), "--width", "10"}, "--width"},
		{[]string{"--data", testenv.Sample(t), "--out", t.TempDir(), "--workers", "-1"}, "--workers"},
		{[]string{"--data", missing, "--out", t.TempDir()}, missing},
		{[]string{"--data", testenv.Sample(t), "--data", missing, "--out", t.TempDir()}, missing},
	} {
		_, err := runCmds(t, cmds, append([]string{"data", "report"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("data report %v: error %v, want one line naming %s", tc.args, err, tc.want)
		}
	}
}
