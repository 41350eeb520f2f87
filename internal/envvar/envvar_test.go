package envvar

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const repoRoot = "../.."

// Every environment read outside tests goes through the registry: no os.Getenv, os.LookupEnv or
// os.Environ in the repository's non-test Go files except here (and the go:generate tool
// runtime/internal/ortapigen, which reads $CC at generation time only).
func TestNoEnvironmentReadOutsideRegistry(t *testing.T) {
	read := regexp.MustCompile(`\bos\.(Getenv|LookupEnv|Environ)\b`)
	allowed := map[string]bool{"internal/envvar": true, "runtime/internal/ortapigen": true}
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "third_party" || d.Name() == "node_modules" || allowed[filepath.ToSlash(rel)] {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if read.MatchString(line) && !strings.HasPrefix(strings.TrimSpace(line), "//") {
				t.Errorf("%s:%d reads the environment outside internal/envvar: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The README lists every registered variable.
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range All() {
		if !strings.Contains(string(b), "`"+v.Name+"`") {
			t.Errorf("README.md does not list `%s` (%s)", v.Name, v.Doc)
		}
		if v.Doc == "" || v.ReadBy == "" {
			t.Errorf("%s: Doc and ReadBy are required", v.Name)
		}
	}
}

func TestLookupOnlyRegistered(t *testing.T) {
	t.Setenv(Data.Name, "/x")
	t.Setenv("ARTNET_NOT_REGISTERED", "y")
	if got := Lookup(Data.Name); got != "/x" {
		t.Errorf("Lookup(%s) = %q", Data.Name, got)
	}
	if got := Lookup("ARTNET_NOT_REGISTERED"); got != "" {
		t.Errorf("Lookup of an unregistered name = %q, want \"\"", got)
	}
}
