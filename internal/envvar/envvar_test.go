package envvar_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/artnet/artnet/internal/envvar"
	"github.com/artnet/artnet/internal/testenv"
)

// Every environment read outside tests goes through the registry: no os.Getenv, os.LookupEnv or
// os.Environ in the repository's non-test Go files except in internal/envvar (and the
// go:generate tool onnxrt/internal/ortapigen, which reads $CC at generation time only).
func TestNoEnvironmentReadOutsideRegistry(t *testing.T) {
	read := regexp.MustCompile(`\bos\.(Getenv|LookupEnv|Environ)\b`)
	testenv.GoFiles(t, func(rel string, src []byte) {
		if strings.HasSuffix(rel, "_test.go") || strings.HasPrefix(rel, "internal/envvar/") || strings.HasPrefix(rel, "onnxrt/internal/ortapigen/") {
			return
		}
		for i, line := range strings.Split(string(src), "\n") {
			if read.MatchString(line) && !strings.HasPrefix(strings.TrimSpace(line), "//") {
				t.Errorf("%s:%d reads the environment outside internal/envvar: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
	})
}

// The README lists every registered variable.
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range envvar.All() {
		if !strings.Contains(string(b), "`"+v.Name+"`") {
			t.Errorf("README.md does not list `%s` (%s)", v.Name, v.Doc)
		}
		if v.Doc == "" || v.ReadBy == "" {
			t.Errorf("%s: Doc and ReadBy are required", v.Name)
		}
	}
}

func TestLookupOnlyRegistered(t *testing.T) {
	t.Setenv(envvar.Data.Name, "/x")
	t.Setenv("ARTNET_NOT_REGISTERED", "y")
	if got := envvar.Lookup(envvar.Data.Name); got != "/x" {
		t.Errorf("Lookup(%s) = %q", envvar.Data.Name, got)
	}
	if got := envvar.Lookup("ARTNET_NOT_REGISTERED"); got != "" {
		t.Errorf("Lookup of an unregistered name = %q, want \"\"", got)
	}
}
