package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Dir is a folder being built beside its target; Commit swaps it in as a whole, so a reader
// sees the complete old folder or the complete new one. Abort (safe after Commit, so it can be
// deferred) removes it.
type Dir struct {
	tmp, path string
	done      bool
}

// CreateDir creates an empty temporary folder with mode perm (less the umask) beside path,
// creating path's parent (0755) if needed. Fill the folder at d.TempPath(), then Commit.
func CreateDir(path string, perm os.FileMode) (*Dir, error) {
	path = filepath.Clean(path)
	parent := filepath.Dir(path)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	for range 100 {
		tmp := filepath.Join(parent, "."+filepath.Base(path)+".tmp-"+randomName())
		err := os.Mkdir(tmp, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		return &Dir{tmp: tmp, path: path}, nil
	}
	return nil, fmt.Errorf("write %s: too many name collisions for a temporary folder", path)
}

// TempPath is the temporary folder to write the new content into.
func (d *Dir) TempPath() string { return d.tmp }

// Path is the folder Commit replaces.
func (d *Dir) Path() string { return d.path }

// Commit fsyncs every file and folder under the temporary folder, swaps it in at the target
// (replacing an existing folder there only once the new one is complete), removes the old
// content and fsyncs the parent folder.
func (d *Dir) Commit() error {
	if d.done {
		return fmt.Errorf("write %s: already committed or aborted", d.path)
	}
	d.done = true
	if err := syncTree(d.tmp); err != nil {
		_ = os.RemoveAll(d.tmp)
		return fmt.Errorf("write %s: %w", d.path, err)
	}
	if err := ReplaceDir(d.tmp, d.path); err != nil {
		_ = os.RemoveAll(d.tmp)
		return fmt.Errorf("write %s: %w", d.path, err)
	}
	return nil
}

// Abort removes the temporary folder; the target stays as it was. It does nothing after Commit
// or a previous Abort.
func (d *Dir) Abort() error {
	if d.done {
		return nil
	}
	d.done = true
	return os.RemoveAll(d.tmp)
}

// ReplaceDir moves the complete folder tmp to dir (a sibling), replacing dir's previous content
// only once the new one is in place — one atomic exchange on Linux; elsewhere the old folder is
// moved aside, the new one in, and the old one is put back if that fails. The old content is
// removed and the parent folder fsynced. tmp's own content must already be durable (Dir.Commit
// syncs it).
func ReplaceDir(tmp, dir string) error { return replaceDir(tmp, dir, exchange) }

func replaceDir(tmp, dir string, exchange func(a, b string) error) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		err := os.Rename(tmp, dir)
		if err == nil {
			return syncDir(filepath.Dir(dir))
		}
		if _, serr := os.Lstat(dir); serr != nil {
			return err
		}
		// Another writer installed dir meanwhile: replace it as below.
	}
	old := tmp
	if err := exchange(tmp, dir); err != nil {
		// No atomic exchange: move the old one aside, move the new one in.
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return err
		}
		if err := os.Rename(tmp, dir); err != nil {
			_ = os.Rename(old, dir)
			return err
		}
	}
	// old now holds the previous content; the new one is installed. Make the swap durable
	// before the old content goes.
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// syncTree fsyncs every regular file and folder under root (root included).
func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && !e.Type().IsRegular() {
			return nil
		}
		if e.IsDir() {
			return syncDir(p)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", p, err)
		}
		return nil
	})
}
