package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepoRoot(t *testing.T) {
	r := RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(r, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "module github.com/artnet/artnet\n") {
		t.Errorf("%s/go.mod is not artnet's", r)
	}
	if p := Testdata(t, "images"); !strings.HasPrefix(p, r) {
		t.Errorf("Testdata = %q, not under %q", p, r)
	}
}

// mkWikiArt makes a folder that locate accepts.
func mkWikiArt(t *testing.T, dir string) {
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "style_train.csv"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLocate(t *testing.T) {
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	if err := os.Mkdir(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	// Nothing beside the repository, no variable: skip.
	if p, err := locate("", repo); p != "" || err != nil {
		t.Errorf("locate(no env, no shared) = %q, %v; want skip", p, err)
	}
	// The variable names a folder without the data: a clear error naming the variable.
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := locate(empty, repo); err == nil || !strings.Contains(err.Error(), EnvWikiArt+"="+empty) {
		t.Errorf("locate(empty env) error = %v", err)
	}
	// ../shared/wikiart beside the repository.
	shared := filepath.Join(base, "shared", "wikiart")
	mkWikiArt(t, shared)
	if p, err := locate("", repo); p != shared || err != nil {
		t.Errorf("locate(no env, shared) = %q, %v; want %q", p, err, shared)
	}
	// The variable wins over ../shared.
	other := filepath.Join(base, "other")
	mkWikiArt(t, other)
	if p, err := locate(other, repo); p != other || err != nil {
		t.Errorf("locate(env) = %q, %v; want %q", p, err, other)
	}
}

func TestSkipLine(t *testing.T) {
	if strings.Contains(SkipLine, "\n") || !strings.Contains(SkipLine, EnvWikiArt+"=") {
		t.Errorf("SkipLine %q must be one line naming %s", SkipLine, EnvWikiArt)
	}
}

func TestLocateExtra(t *testing.T) {
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	if err := os.Mkdir(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := locateExtra("", "", repo); p != "" || err != nil {
		t.Errorf("locateExtra(nothing) = %q, %v; want skip", p, err)
	}
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := locateExtra(empty, "", repo); err == nil || !strings.Contains(err.Error(), EnvWikiArtExtra+"="+empty) || strings.Contains(err.Error(), "\n") {
		t.Errorf("locateExtra(empty env) error = %v", err)
	}
	// ../shared/wikiart-extra beside the repository.
	shared := filepath.Join(base, "shared", "wikiart-extra")
	mkWikiArt(t, shared)
	if p, err := locateExtra("", "", repo); p != shared || err != nil {
		t.Errorf("locateExtra(shared) = %q, %v; want %q", p, err, shared)
	}
	// Beside the $ARTNET_WIKIART folder wins over ../shared.
	elsewhere := filepath.Join(base, "data", "wikiart-extra")
	mkWikiArt(t, elsewhere)
	if p, err := locateExtra("", filepath.Join(base, "data", "wikiart")+"/", repo); p != elsewhere || err != nil {
		t.Errorf("locateExtra(beside ARTNET_WIKIART) = %q, %v; want %q", p, err, elsewhere)
	}
	// The variable wins over both.
	other := filepath.Join(base, "other")
	mkWikiArt(t, other)
	if p, err := locateExtra(other, filepath.Join(base, "data", "wikiart"), repo); p != other || err != nil {
		t.Errorf("locateExtra(env) = %q, %v; want %q", p, err, other)
	}
	if strings.Contains(SkipLineExtra, "\n") || !strings.Contains(SkipLineExtra, EnvWikiArtExtra+"=") {
		t.Errorf("SkipLineExtra %q must be one line naming %s", SkipLineExtra, EnvWikiArtExtra)
	}
}

// TestMissing runs TestMissingChild in a child process, without and with ARTNET_REQUIRE_DEPS=1:
// the first skips with Missing's one line, the second fails with it.
func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		require string
		want    string // in the child's -test.v output
		fails   bool
	}{
		{"", "--- SKIP: TestMissingChild", false},
		{"1", "--- FAIL: TestMissingChild", true},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingChild$", "-test.v")
		cmd.Env = append(os.Environ(), "ARTNET_TESTENV_CHILD=1", EnvRequireDeps+"="+tc.require)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.fails {
			t.Errorf("%s=%q: child error %v, want failure %v\n%s", EnvRequireDeps, tc.require, err, tc.fails, out)
		}
		if !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), MissingLine("a frob", "apt-get install frob")) {
			t.Errorf("%s=%q: child output lacks %q or the missing line:\n%s", EnvRequireDeps, tc.require, tc.want, out)
		}
	}
	if l := MissingLine("a frob", "apt-get install frob"); strings.Contains(l, "\n") || !strings.Contains(l, "apt-get install frob") {
		t.Errorf("MissingLine = %q: want one line with the how-to", l)
	}
}

func TestMissingChild(t *testing.T) {
	if os.Getenv("ARTNET_TESTENV_CHILD") != "1" {
		t.Skip("run by TestMissing in a child process")
	}
	Missing(t, "a frob", "apt-get install frob")
	t.Error("Missing returned")
}
