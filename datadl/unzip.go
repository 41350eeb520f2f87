package datadl

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/artnet/artnet/internal/atomicfile"
)

// UnzipResult counts what Unzip did.
type UnzipResult struct {
	Extracted int    `json:"extracted"`
	Skipped   int    `json:"skipped"` // already there with the entry's size
	Ignored   int    `json:"ignored"` // symbolic links and other non-regular entries
	Stripped  string `json:"stripped,omitempty"`
}

// Unzip unpacks the regular files of the zip archive at zipPath under dest. When every file
// sits under one top folder below which there are folders (the WikiArt archive's
// "wikiart/<Style>/<file>"), that folder is dropped, so files land at dest/<Style>/<file>.
// Every entry path is checked before anything is written: an absolute path, a ".." that
// leaves dest, a backslash or a NUL is an error naming the entry (zip-slip). A file already at
// its target with the entry's size is skipped; others are written atomically (temporary file,
// rename), their CRC-32 checked by archive/zip. Symbolic links are not created.
func Unzip(ctx context.Context, zipPath, dest string, log *slog.Logger) (res UnzipResult, err error) {
	if log == nil {
		log = slog.Default()
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return res, fmt.Errorf("datadl: %s: %w", zipPath, err)
	}
	defer zr.Close()

	type job struct {
		f   *zip.File
		rel string
	}
	var files []job
	for _, f := range zr.File {
		name := f.Name
		if err := checkEntry(name); err != nil {
			return res, fmt.Errorf("datadl: %s: entry %q: %v", zipPath, truncate(name, 120), err)
		}
		if f.FileInfo().IsDir() {
			continue
		}
		if !f.Mode().IsRegular() {
			res.Ignored++
			log.Warn("zip entry is not a regular file; ignored", "archive", zipPath, "entry", name, "mode", f.Mode().String())
			continue
		}
		files = append(files, job{f, path.Clean(name)})
	}
	if top := commonTop(files2names(files, func(j job) string { return j.rel })); top != "" {
		res.Stripped = top + "/"
		for i := range files {
			files[i].rel = strings.TrimPrefix(files[i].rel, res.Stripped)
		}
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return res, fmt.Errorf("datadl: %w", err)
	}
	for _, j := range files {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("datadl: unzip %s: %w", zipPath, err)
		}
		target := filepath.Join(dest, filepath.FromSlash(j.rel))
		if st, err := os.Lstat(target); err == nil && st.Mode().IsRegular() && uint64(st.Size()) == j.f.UncompressedSize64 {
			res.Skipped++
			continue
		}
		if err := extract(j.f, target); err != nil {
			return res, fmt.Errorf("datadl: %s: entry %q: %v", zipPath, truncate(j.f.Name, 120), err)
		}
		res.Extracted++
		if res.Extracted%5000 == 0 {
			log.Info("unpacking", "archive", zipPath, "extracted", res.Extracted, "skipped", res.Skipped, "of", len(files))
		}
	}
	return res, nil
}

func files2names[T any](xs []T, name func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = name(x)
	}
	return out
}

// commonTop returns the first path element shared by every name when every name has at least
// three elements (top/folder/file); "" otherwise.
func commonTop(names []string) string {
	top := ""
	for _, n := range names {
		parts := strings.Split(n, "/")
		if len(parts) < 3 {
			return ""
		}
		if top == "" {
			top = parts[0]
		} else if parts[0] != top {
			return ""
		}
	}
	return top
}

// checkEntry refuses entry names that could write outside the destination.
func checkEntry(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty path")
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("path contains NUL")
	case strings.Contains(name, `\`):
		return fmt.Errorf("path contains a backslash")
	case strings.HasPrefix(name, "/") || (len(name) > 1 && name[1] == ':'):
		return fmt.Errorf("absolute path leaves the destination folder")
	}
	clean := strings.TrimSuffix(name, "/")
	if clean == "" || !filepath.IsLocal(filepath.FromSlash(clean)) {
		return fmt.Errorf("path leaves the destination folder")
	}
	return nil
}

// extract writes one entry to target through a temporary file and a rename. It refuses to
// write more bytes than the entry declares.
func extract(f *zip.File, target string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := atomicfile.Create(target, 0o644)
	if err != nil {
		return err
	}
	defer out.Abort()
	n, err := io.Copy(out, io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	if err != nil {
		return err
	}
	if uint64(n) != f.UncompressedSize64 {
		return fmt.Errorf("%d bytes, the archive declares %d", n, f.UncompressedSize64)
	}
	return out.Commit()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
