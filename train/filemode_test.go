//go:build unix

package train

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestRunFilesAreWorldReadable: the files of a run directory get 0644 (umask 022), also after a
// resume rewrites metrics.jsonl — a temporary file's 0600 must not leak into them.
func TestRunFilesAreWorldReadable(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022))
	dir := t.TempDir()
	o := standInOptions(dir)
	o.Steps, o.CheckpointEvery, o.EvalEvery, o.KeepBest = 2, 2, 2, true
	ds := NewSynthetic(o.Config, 32, 1)
	if _, err := Run(context.Background(), o, ds, NewSynthetic(o.Config, 8, 2), nil); err != nil {
		t.Fatal(err)
	}
	o.Resume, o.Steps = true, 3
	if _, err := Run(context.Background(), o, ds, NewSynthetic(o.Config, 8, 2), nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{LatestFile, BestFile, MetricsFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o644 {
			t.Errorf("%s: mode %o, want 644", name, got)
		}
	}
}
