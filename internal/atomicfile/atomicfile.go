// Package atomicfile writes files and directories so that a reader (or the next run after a
// crash) sees either the old content or the complete new one, never a part.
//
// A file is written to a temporary file in the same folder (same file system), fsynced,
// renamed over the target, and then the folder is fsynced so the rename itself survives a power
// loss. The new file gets the mode the caller chose (less the umask, as os.WriteFile does); the
// temporary file is created with that mode from the start, so os.CreateTemp's 0600 never leaks
// into a user's file. A directory (a checkpoint, a Triton model repository entry) is built in a
// temporary sibling and swapped in as a whole: on Linux with one renameat2 RENAME_EXCHANGE,
// elsewhere by moving the old one aside first.
//
// github.com/google/renameio does the file half of this, but it has no directory swap, and
// the file half is under 150 lines here, so the project keeps one small package rather than a
// dependency plus a second copy of the directory logic.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically; the file gets mode perm (less the umask).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write writes the file at path atomically with what fn writes; the file gets mode perm (less
// the umask). When fn returns an error nothing is installed, the old file (if any) stays as it
// was, and that error is returned.
func Write(path string, perm os.FileMode, fn func(io.Writer) error) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := fn(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// File is a file being written; it replaces its target only on Commit. Call Abort (safe after
// Commit, so it can be deferred) to drop it. Write through it like an *os.File (Name is the
// temporary file's path) but do not Close it: Commit and Abort do.
type File struct {
	*os.File
	path string
	done bool
}

// Create starts writing a file that will replace path on Commit, with mode perm (less the
// umask).
func Create(path string, perm os.FileMode) (*File, error) {
	f, err := createTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-", "", perm)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &File{File: f, path: path}, nil
}

// Path is the file the writer will replace.
func (f *File) Path() string { return f.path }

// Commit fsyncs the written data, renames it over the target and fsyncs the folder. After a
// failed Commit the target is unchanged and the temporary file removed.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("write %s: already committed or aborted", f.path)
	}
	f.done = true
	tmp := f.File.Name()
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := syncDir(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// Abort closes and removes the temporary file; the target stays as it was. It does nothing
// after Commit or a previous Abort.
func (f *File) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	cerr := f.File.Close()
	rerr := os.Remove(f.File.Name())
	return errors.Join(cerr, rerr)
}

// Rename renames a complete, already fsynced file (such as a resumable download's .part file,
// which must keep a fixed name between attempts) to newpath and fsyncs newpath's folder.
func Rename(oldpath, newpath string) error {
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	return syncDir(filepath.Dir(newpath))
}

// syncDir is SyncDir; a variable so tests can see which folders are synced.
var syncDir = SyncDir

// SyncDir fsyncs a folder, making the creation, removal or renaming of its entries durable. File
// systems that cannot sync a folder (EINVAL) are not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// createTemp creates a new file (or, with dir set, a folder) named prefix+random+suffix in dir
// with mode perm. Unlike os.CreateTemp/MkdirTemp the mode is the caller's from the start.
func createTemp(dir, prefix, suffix string, perm os.FileMode) (*os.File, error) {
	for range 100 {
		name := filepath.Join(dir, prefix+randomName()+suffix)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the caller names the target, not the temporary file
		}
		return f, err
	}
	return nil, fmt.Errorf("create a temporary file in %s: too many name collisions", dir)
}

func randomName() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}
