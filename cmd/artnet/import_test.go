package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/safetensors"
)

var importTorchref = filepath.Join("..", "..", "testdata", "torchref")

// runImport runs `artnet import args…` in-process with only the import command registered
// (main.go's newApp registers it once the CLI owner wires it).
func runImport(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "artnet", Commands: []*cli.Command{importCommand()}, Writer: &out, ErrWriter: &out,
		ExitErrHandler: func(*cli.Context, error) {}}
	err := app.RunContext(context.Background(), append([]string{"artnet", "import"}, args...))
	return out.String(), err
}

func importedVariable(t *testing.T, dir, torchName string) []float32 {
	t.Helper()
	ctx, _, err := models.LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := ctx.GetVariableByScopeAndName(models.ScopeAndName(torchName))
	if v == nil {
		t.Fatalf("checkpoint %s has no %s", dir, torchName)
	}
	val, err := v.Value()
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](val)
}

func TestImportCommandWholeModel(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ckpt")
	stdout, err := runImport(t, "--weights", filepath.Join(importTorchref, "tiny.safetensors"), "--out", out,
		"--model-config", filepath.Join(importTorchref, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Log(stdout)
	if !strings.Contains(stdout, "deepartnet names") || strings.Contains(stdout, "freshly initialized") {
		t.Errorf("output:\n%s", stdout)
	}
	f, err := safetensors.ReadFile(filepath.Join(importTorchref, "tiny.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"heads.artist.3.weight", "encoder.lstm.weight_ih_l1_reverse", "backbone.features.2.0.block.1.1.running_var"} {
		if got := importedVariable(t, out, name); !slices.Equal(got, f.Tensors[name].Data) {
			t.Errorf("%s in the checkpoint differs from the file", name)
		}
	}
	// An existing --out is not replaced without --overwrite.
	before, _ := os.ReadFile(filepath.Join(out, models.DataFile))
	if _, err := runImport(t, "--weights", filepath.Join(importTorchref, "backbone_only.safetensors"), "--out", out,
		"--model-config", filepath.Join(importTorchref, "config.json")); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("existing --out: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(out, models.DataFile))
	if !bytes.Equal(before, after) {
		t.Errorf("checkpoint changed by a refused import")
	}
	if _, err := runImport(t, "--weights", filepath.Join(importTorchref, "backbone_only.safetensors"), "--out", out,
		"--model-config", filepath.Join(importTorchref, "config.json"), "--overwrite"); err != nil {
		t.Errorf("--overwrite: %v", err)
	}
}

func TestImportCommandBackboneWithClasses(t *testing.T) {
	tmp := t.TempDir()
	classes := filepath.Join(tmp, "classes")
	if err := os.Mkdir(classes, 0o755); err != nil {
		t.Fatal(err)
	}
	for task, names := range map[string][]string{"style": {"Baroque", "Cubism", "Rococo"}, "genre": {"portrait", "landscape"}, "artist": {"Claude_Monet", "Rembrandt"}} {
		var b strings.Builder
		for i, n := range names {
			b.WriteString(strings.Join([]string{string(rune('0' + i)), n}, " ") + "\r\n")
		}
		b.WriteString("\n")
		if err := os.WriteFile(filepath.Join(classes, task+"_class.txt"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(tmp, "ckpt")
	stdout, err := runImport(t, "--weights", filepath.Join(importTorchref, "backbone_only.safetensors"), "--out", out,
		"--model-config", filepath.Join(importTorchref, "config.json"), "--image-size", "96", "--classes-from", classes)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(stdout)
	for _, want := range []string{"deepartnet-backbone names", "freshly initialized (seed 1): proj, encoder, attention, heads", "96×96", "classes 3/2/2"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	_, cfg, err := models.LoadCheckpoint(out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ImageSize != 96 || cfg.ResizeSize != 108 || !slices.Equal(cfg.Classes["style"], []string{"Baroque", "Cubism", "Rococo"}) {
		t.Errorf("config: size %d resize %d styles %v", cfg.ImageSize, cfg.ResizeSize, cfg.Classes["style"])
	}
	if len(importedVariable(t, out, "heads.style.3.bias")) != 3 {
		t.Errorf("style head is not sized by --classes-from")
	}
	// loadWeights (for train --pretrained) gives the same, seeded, weights.
	ctx, err := loadWeights(filepath.Join(importTorchref, "backbone_only.safetensors"), cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ctx.GetVariableByScopeAndName(models.ScopeAndName("heads.style.0.weight")).Value()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tensors.MustCopyFlatData[float32](v), importedVariable(t, out, "heads.style.0.weight")) {
		t.Errorf("loadWeights and import initialize the head differently")
	}
}

// Every bad input is a one-line error naming the cause, and nothing appears at --out.
func TestImportCommandErrors(t *testing.T) {
	tmp := t.TempDir()
	tiny, err := os.ReadFile(filepath.Join(importTorchref, "tiny.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(filepath.Join(importTorchref, "tiny.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// rewrite writes the float tensors of tiny.safetensors with edit applied (F32 only).
	rewrite := func(name string, edit func([]*safetensors.Tensor) []*safetensors.Tensor) string {
		var ts []*safetensors.Tensor
		for _, n := range f.Order {
			if tt := f.Tensors[n]; tt.Data != nil {
				c := *tt
				ts = append(ts, &c)
			}
		}
		p := filepath.Join(tmp, name)
		if err := safetensors.Write(p, edit(ts), nil); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pastEOF := slices.Clone(tiny[:64])
	binary.LittleEndian.PutUint64(pastEOF, 5000)
	cfgFile := filepath.Join(importTorchref, "config.json")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"text", []string{"--weights", write("readme.safetensors", []byte("hello, these are no weights\n"))}, []string{"readme.safetensors", "neither a safetensors file nor a PyTorch torch.save file"}},
		{"truncated", []string{"--weights", write("cut.safetensors", tiny[:len(tiny)/2])}, []string{"cut.safetensors", "truncated"}},
		{"header past EOF", []string{"--weights", write("eof.safetensors", pastEOF)}, []string{"eof.safetensors", "past the end"}},
		{"wrong shape", []string{"--weights", rewrite("shape.safetensors", func(ts []*safetensors.Tensor) []*safetensors.Tensor {
			for _, tt := range ts {
				if tt.Name == "backbone.proj.weight" {
					tt.Shape = []int{64, 32, 1, 1}
				}
			}
			return ts
		})}, []string{"shape.safetensors", `"backbone.proj.weight"`, "[64 32 1 1]", "[32 64 1 1]"}},
		{"missing", []string{"--weights", rewrite("missing.safetensors", func(ts []*safetensors.Tensor) []*safetensors.Tensor {
			return slices.DeleteFunc(ts, func(tt *safetensors.Tensor) bool { return tt.Name == "attention.v.weight" })
		})}, []string{"missing.safetensors", `"attention.v.weight"`, "missing"}},
		{"unexpected", []string{"--weights", rewrite("extra.safetensors", func(ts []*safetensors.Tensor) []*safetensors.Tensor {
			return append(ts, &safetensors.Tensor{Name: "heads.style.6.weight", Shape: []int{1}, Data: []float32{1}})
		})}, []string{"extra.safetensors", `"heads.style.6.weight"`, "no model variable"}},
		{"wrong variant", []string{"--weights", filepath.Join(importTorchref, "tiny.safetensors"), "--variant", "b2"}, []string{"tiny.safetensors", "variant b2", "backbone.features.0.0.weight"}},
		{"variant and config", []string{"--weights", filepath.Join(importTorchref, "tiny.safetensors"), "--variant", "b0", "--model-config", cfgFile}, []string{"either --variant or --model-config"}},
		{"unknown variant", []string{"--weights", filepath.Join(importTorchref, "tiny.safetensors"), "--variant", "b7"}, []string{"--variant", `"b7"`}},
		{"bad classes dir", []string{"--weights", filepath.Join(importTorchref, "tiny.safetensors"), "--classes-from", tmp}, []string{"--classes-from", "style_class.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(tmp, "out-"+strings.ReplaceAll(tc.name, " ", "-"))
			args := append([]string{"--out", out}, tc.args...)
			if !slices.Contains(args, "--variant") && !slices.Contains(args, "--model-config") {
				args = append(args, "--model-config", cfgFile)
			}
			_, err := runImport(t, args...)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("several lines: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if _, err := os.Lstat(out); !os.IsNotExist(err) {
				t.Errorf("--out %s exists after the error", out)
			}
			entries, _ := os.ReadDir(tmp)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".out-") {
					t.Errorf("leftover %s", e.Name())
				}
			}
			t.Log(msg)
		})
	}
}
