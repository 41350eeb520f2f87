package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every test file that can skip is listed in DEVELOPERS.md's standards with what it needs, so
// that the text ("core tests never skip for want of data") and the tests agree. testenv itself
// (the WikiArt skip) is the documented rule.
func TestSkipsAreListed(t *testing.T) {
	root := RepoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "DEVELOPERS.md"))
	if err != nil {
		t.Fatal(err)
	}
	skip := regexp.MustCompile(`\b(t|tb|b)\.Skip(f|Now)?\(`)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "third_party" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, "_test.go") || strings.HasPrefix(rel, "internal/testenv/") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if skip.Match(b) && !strings.Contains(string(doc), "`"+rel+"`") {
			t.Errorf("%s can skip but DEVELOPERS.md does not list it (say what it needs)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
