//go:build unix

package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// umask reads the process umask (it can only be read by setting it).
func umask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// onlyFiles fails unless dir holds exactly names (no temporary file left behind).
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(got)
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

func TestWriteFileMode(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	for _, perm := range []os.FileMode{0o644, 0o600, 0o640, 0o755} {
		p := filepath.Join(dir, fmt.Sprintf("f%o", perm))
		if err := WriteFile(p, []byte("x"), perm); err != nil {
			t.Fatal(err)
		}
		if got := mode(t, p); got != perm {
			t.Errorf("new file: mode %o, want %o", got, perm)
		}
		// Replacing a file gives the chosen mode too (not the temp file's 0600).
		if err := WriteFile(p, []byte("y"), perm); err != nil {
			t.Fatal(err)
		}
		if got := mode(t, p); got != perm {
			t.Errorf("replaced file: mode %o, want %o", got, perm)
		}
	}
	// The umask applies, as with os.WriteFile.
	syscall.Umask(0o077)
	p := filepath.Join(dir, "masked")
	if err := WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, p); got != 0o600 {
		t.Errorf("umask 077: mode %o, want 600", got)
	}
}

func TestWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "results.json")
	if err := WriteFile(p, []byte("old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	err := Write(p, 0o644, func(w io.Writer) error {
		if _, err := w.Write([]byte("new cont")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write error = %v, want %v", err, boom)
	}
	if got, _ := os.ReadFile(p); string(got) != "old content" {
		t.Errorf("after a failed write the file holds %q", got)
	}
	onlyFiles(t, dir, "results.json")

	// Aborting a streaming writer also keeps the old file.
	f, err := Create(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("partial"))
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if got, _ := os.ReadFile(p); string(got) != "old content" {
		t.Errorf("after Abort the file holds %q", got)
	}
	onlyFiles(t, dir, "results.json")

	// A folder that cannot be written: clear error naming the file, nothing created.
	if err := WriteFile(filepath.Join(dir, "missing", "x"), nil, 0o644); err == nil {
		t.Error("writing into a missing folder succeeded")
	}
}

// TestCrashMidWrite kills a process in the middle of writing: the old file is intact.
func TestCrashMidWrite(t *testing.T) {
	if p := os.Getenv("ATOMICFILE_CRASH_PATH"); p != "" {
		f, err := Create(p, 0o644)
		if err != nil {
			os.Exit(3)
		}
		_, _ = f.Write([]byte("half of the new"))
		_ = f.Sync()
		os.Exit(7) // dies without Commit or Abort
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "best.json")
	if err := WriteFile(p, []byte("old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashMidWrite$")
	cmd.Env = append(os.Environ(), "ATOMICFILE_CRASH_PATH="+p)
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("crashing child: %v, want exit status 7", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "old content" {
		t.Errorf("after a crash mid-write the file holds %q", got)
	}
}

func TestCommitSyncsFolder(t *testing.T) {
	var synced []string
	syncDir = func(dir string) error { synced = append(synced, dir); return SyncDir(dir) }
	defer func() { syncDir = SyncDir }()
	dir := t.TempDir()
	p := filepath.Join(dir, "latest")
	if err := WriteFile(p, []byte("step-10"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(synced, []string{dir}) {
		t.Errorf("synced folders %q, want [%s]", synced, dir)
	}
	// A failing folder sync is reported (the rename may not be durable).
	syncDir = func(string) error { return errors.New("EIO") }
	if err := WriteFile(p, []byte("step-20"), 0o644); err == nil {
		t.Error("a failed folder fsync was not reported")
	}
	if err := SyncDir(filepath.Join(dir, "nope")); err == nil {
		t.Error("SyncDir of a missing folder succeeded")
	}
}

// TestConcurrentWriters: many writers of one file, readers never see a mix or a part, and no
// temporary file is left.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "metrics.json")
	const writers, rounds = 8, 20
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
	}
	if err := WriteFile(p, contents[0], 0o644); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds+1)
	done := make(chan struct{})
	var rg sync.WaitGroup
	rg.Add(1)
	go func() {
		defer rg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := os.ReadFile(p)
			if err != nil {
				errs <- err
				return
			}
			if !slices.ContainsFunc(contents, func(c []byte) bool { return bytes.Equal(c, b) }) {
				errs <- fmt.Errorf("reader saw %d bytes that no writer wrote whole", len(b))
				return
			}
		}
	}()
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if err := WriteFile(p, contents[i], 0o644); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	onlyFiles(t, dir, "metrics.json")
}

func TestDirReplace(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	parent := t.TempDir()
	target := filepath.Join(parent, "sub", "step-1")
	write := func(content string) error {
		d, err := CreateDir(target, 0o755)
		if err != nil {
			return err
		}
		defer d.Abort()
		if err := os.WriteFile(filepath.Join(d.TempPath(), "config.json"), []byte(content), 0o644); err != nil {
			return err
		}
		return d.Commit()
	}
	if err := write("one"); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, target); got != 0o755 {
		t.Errorf("folder mode %o, want 755", got)
	}
	// Replacing syncs the new folder's tree and the parent (after the swap).
	var synced []string
	syncDir = func(dir string) error { synced = append(synced, dir); return SyncDir(dir) }
	err := write("two")
	syncDir = SyncDir
	if err != nil {
		t.Fatal(err)
	}
	if len(synced) < 2 || !strings.HasPrefix(filepath.Base(synced[0]), ".step-1.tmp-") || synced[len(synced)-1] != filepath.Dir(target) {
		t.Errorf("synced folders %q, want the temporary folder first and the parent %s last", synced, filepath.Dir(target))
	}
	if got, _ := os.ReadFile(filepath.Join(target, "config.json")); string(got) != "two" {
		t.Errorf("after the swap config.json holds %q", got)
	}
	onlyFiles(t, filepath.Dir(target), "step-1")

	// An aborted build leaves the old folder and no temporary one.
	d, err := CreateDir(target, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(d.TempPath(), "config.json"), []byte("three"), 0o644)
	if err := d.Abort(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(target, "config.json")); string(got) != "two" {
		t.Errorf("after Abort config.json holds %q", got)
	}
	onlyFiles(t, filepath.Dir(target), "step-1")
}

// TestReplaceDirFallback runs the two-rename path used where renameat2 exchange is missing.
func TestReplaceDirFallback(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "repo")
	for i, content := range []string{"old", "new"} {
		tmp := filepath.Join(parent, fmt.Sprintf(".tmp%d", i))
		if err := os.Mkdir(tmp, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := replaceDir(tmp, dir, func(a, b string) error { return errors.ErrUnsupported }); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "f")); string(got) != "new" {
		t.Errorf("after the fallback swap f holds %q", got)
	}
	onlyFiles(t, parent, "repo")
}

func TestExchange(t *testing.T) {
	d := t.TempDir()
	a, b := filepath.Join(d, "a"), filepath.Join(d, "b")
	for _, p := range []string{a, b} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(a, "x"), []byte("A"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := exchange(a, b)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no atomic exchange on this platform; ReplaceDir uses two renames (TestReplaceDirFallback)")
	}
	if err != nil {
		t.Skipf("atomic exchange unavailable on this file system (%v); ReplaceDir uses two renames (TestReplaceDirFallback)", err)
	}
	if got, err := os.ReadFile(filepath.Join(b, "x")); err != nil || string(got) != "A" {
		t.Fatalf("after exchange b/x = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(a, "x")); !os.IsNotExist(err) {
		t.Fatalf("after exchange a still has x: %v", err)
	}
}

// TestConcurrentDirWriters: writers racing to install the same folder (created by the first)
// all succeed, and the folder ends up holding one writer's complete content.
func TestConcurrentDirWriters(t *testing.T) {
	parent := t.TempDir()
	target := filepath.Join(parent, "best")
	const writers = 8
	var wg, ready sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, writers)
	ready.Add(writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := CreateDir(target, 0o755)
			ready.Done()
			if err != nil {
				errs <- err
				return
			}
			defer d.Abort()
			for _, f := range []string{"a", "b"} {
				if err := os.WriteFile(filepath.Join(d.TempPath(), f), []byte{byte('0' + i)}, 0o644); err != nil {
					errs <- err
					return
				}
			}
			<-start // commit all at once
			errs <- d.Commit()
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	a, errA := os.ReadFile(filepath.Join(target, "a"))
	b, errB := os.ReadFile(filepath.Join(target, "b"))
	if errA != nil || errB != nil || string(a) != string(b) {
		t.Errorf("folder holds a=%q (%v) b=%q (%v), want one writer's pair", a, errA, b, errB)
	}
	onlyFiles(t, parent, "best")
}
