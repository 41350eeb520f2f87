package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// GoFiles calls fn with the slash-separated path (relative to the repository root) and the
// source of every .go file of the repository, tests included; folders starting with a dot,
// third_party and node_modules are skipped. For tests that check the source tree as a whole.
func GoFiles(tb testing.TB, fn func(rel string, src []byte)) {
	tb.Helper()
	root := RepoRoot(tb)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "third_party" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fn(filepath.ToSlash(rel), b)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}
