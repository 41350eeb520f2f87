package onnxrt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFindLibraryInProject needs scripts/setup-ort.sh to have run (CI does it before tests).
func TestFindLibraryInProject(t *testing.T) {
	f := finder{getenv: func(string) string { return "" }, getwd: os.Getwd, exe: os.Executable}
	p, src, err := f.find("")
	if err != nil {
		t.Fatalf("library not found in the project (run scripts/setup-ort.sh): %v", err)
	}
	if !strings.HasSuffix(p, ProjectLibrary) || !strings.HasPrefix(src, "project ") {
		t.Fatalf("found %s (%s), want <project>/%s", p, src, ProjectLibrary)
	}
	root := strings.TrimPrefix(src, "project ")
	if !isArtnetGoMod(filepath.Join(root, "go.mod")) {
		t.Fatalf("project root %s has no artnet go.mod", root)
	}
}

func touch(t *testing.T, p string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFindLibraryOrder(t *testing.T) {
	tmp := t.TempDir()
	flagLib := touch(t, filepath.Join(tmp, "flag", "libonnxruntime.so.1"))
	envLib := touch(t, filepath.Join(tmp, "env", "libonnxruntime.so.1.30.0"))
	proj := filepath.Join(tmp, "proj")
	projLib := touch(t, filepath.Join(proj, ProjectLibrary))
	if err := os.WriteFile(filepath.Join(proj, "go.mod"), []byte("module github.com/artnet/artnet\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(proj, "cmd", "artnet")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// A project found only from the executable's folder (no go.mod, only third_party).
	exeProj := filepath.Join(tmp, "install")
	exeLib := touch(t, filepath.Join(exeProj, ProjectLibrary))
	exe := touch(t, filepath.Join(exeProj, "bin", "artnet"))
	ldDir := filepath.Join(tmp, "ld")
	ldLib := touch(t, filepath.Join(ldDir, "libonnxruntime.so"))
	sysDir := filepath.Join(tmp, "sys")
	sysLib := touch(t, filepath.Join(sysDir, "libonnxruntime.so.1"))
	nowhere := filepath.Join(tmp, "nowhere")
	if err := os.MkdirAll(nowhere, 0o755); err != nil {
		t.Fatal(err)
	}

	type setup struct {
		flag, env, wd, exe, ld string
		sys                    []string
	}
	mk := func(s setup) finder {
		return finder{
			getenv: func(k string) string {
				switch k {
				case EnvLibraryPath:
					return s.env
				case "LD_LIBRARY_PATH":
					return s.ld
				}
				return ""
			},
			getwd:  func() (string, error) { return s.wd, nil },
			exe:    func() (string, error) { return s.exe, nil },
			sysDir: s.sys,
		}
	}
	all := setup{flag: flagLib, env: envLib, wd: sub, exe: exe, ld: ldDir, sys: []string{sysDir}}
	cases := []struct {
		name    string
		mod     func(*setup)
		want    string
		wantSrc string
	}{
		{"flag first", func(*setup) {}, flagLib, "flag"},
		{"env second", func(s *setup) { s.flag = "" }, envLib, "$" + EnvLibraryPath},
		{"project from working dir", func(s *setup) { s.flag, s.env = "", "" }, projLib, "project " + proj},
		{"project from executable", func(s *setup) { s.flag, s.env, s.wd = "", "", nowhere }, exeLib, "project " + exeProj},
		{"LD_LIBRARY_PATH", func(s *setup) { s.flag, s.env, s.wd, s.exe = "", "", nowhere, filepath.Join(nowhere, "x") }, ldLib, "system " + ldDir},
		{"system dirs", func(s *setup) { s.flag, s.env, s.wd, s.exe, s.ld = "", "", nowhere, filepath.Join(nowhere, "x"), "" }, sysLib, "system " + sysDir},
	}
	for _, c := range cases {
		s := all
		c.mod(&s)
		p, src, err := mk(s).find(s.flag)
		if err != nil || p != c.want || src != c.wantSrc {
			t.Errorf("%s: got %q (%q) err %v, want %q (%q)", c.name, p, src, err, c.want, c.wantSrc)
		}
	}

	// Errors: an explicit path that does not exist is not skipped; nothing found says how to fix.
	s := all
	s.flag = filepath.Join(tmp, "missing.so")
	if _, _, err := mk(s).find(s.flag); err == nil || !strings.Contains(err.Error(), "flag") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing flag path: err %v", err)
	}
	s = all
	s.flag, s.env = "", filepath.Join(tmp, "missing.so")
	if _, _, err := mk(s).find(""); err == nil || !strings.Contains(err.Error(), EnvLibraryPath) {
		t.Errorf("missing env path: err %v", err)
	}
	none := setup{wd: nowhere, exe: filepath.Join(nowhere, "x")}
	_, _, err := mk(none).find("")
	if err == nil || !strings.Contains(err.Error(), "scripts/setup-ort.sh") || !strings.Contains(err.Error(), EnvLibraryPath) || strings.Contains(err.Error(), "\n") {
		t.Errorf("nothing found: err %v", err)
	}
	// A project without the library is reported.
	s = setup{wd: sub, exe: filepath.Join(nowhere, "x")}
	if err := os.Remove(projLib); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mk(s).find(""); err == nil || !strings.Contains(err.Error(), projLib) {
		t.Errorf("project without library: err %v", err)
	}
}
