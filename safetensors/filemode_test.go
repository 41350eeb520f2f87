//go:build unix

package safetensors

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteMode: a written .safetensors gets 0644 (umask 022), not a temporary file's 0600.
func TestWriteMode(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022))
	p := filepath.Join(t.TempDir(), "w.safetensors")
	if err := Write(p, []*Tensor{{Name: "a", Shape: []int{1}, Data: []float32{1}}}, nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o644 {
		t.Errorf("mode %o, want 644", got)
	}
}
