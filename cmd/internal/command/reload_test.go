package command

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --model-repo: the largest numeric version folder holding a model.onnx is served.
func TestNewestVersion(t *testing.T) {
	repo := t.TempDir()
	mk := func(v string, model bool) {
		d := filepath.Join(repo, "artnet", v)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if model {
			if err := os.WriteFile(filepath.Join(d, "model.onnx"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, err := newestVersion(repo); err == nil || !strings.Contains(err.Error(), "--model-repo") {
		t.Errorf("no artnet folder: %v", err)
	}
	mk("latest", true) // not a number
	mk("0", true)      // versions start at 1
	if _, _, err := newestVersion(repo); err == nil || !strings.Contains(err.Error(), "no version folder") {
		t.Errorf("no valid version: %v", err)
	}
	mk("2", true)
	mk("10", true)
	mk("11", false) // no model.onnx yet (being copied)
	mk("9", true)
	p, v, err := newestVersion(repo)
	if err != nil || v != "10" || p != filepath.Join(repo, "artnet", "10", "model.onnx") {
		t.Fatalf("newest: %q %q %v, want version 10", p, v, err)
	}
}
