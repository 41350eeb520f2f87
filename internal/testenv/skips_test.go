package testenv

import (
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
	doc, err := os.ReadFile(filepath.Join(RepoRoot(t), "DEVELOPERS.md"))
	if err != nil {
		t.Fatal(err)
	}
	skip := regexp.MustCompile(`\b(t|tb|b)\.Skip(f|Now)?\(`)
	GoFiles(t, func(rel string, src []byte) {
		if strings.HasSuffix(rel, "_test.go") && !strings.HasPrefix(rel, "internal/testenv/") &&
			skip.Match(src) && !strings.Contains(string(doc), "`"+rel+"`") {
			t.Errorf("%s can skip but DEVELOPERS.md does not list it (say what it needs)", rel)
		}
	})
}
