package wikiart

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// headerPrefix starts the header line of the artist CSVs:
// "(Path to image),, (Groundtruth class)" (artist_train.csv has a trailing space).
const headerPrefix = "(Path to image)"

// row is one data line of a split file.
type row struct {
	line  int // 1-based line number in the file
	path  string
	label int
}

// parseLine parses one data line of a split file, without its line ending. Two layouts are
// accepted, whatever the file: "path,label" (style, genre) and "path,,label" (artist). The
// path is returned byte for byte (the mojibake bytes of some names are part of the file name);
// surrounding blanks are trimmed from the label only. The path must be relative and must not
// climb out of the image root, since it is joined to it.
func parseLine(line []byte) (path string, label int, err error) {
	c1 := bytes.IndexByte(line, ',')
	if c1 < 0 {
		return "", 0, errors.New("want \"path,label\" or \"path,,label\", got 1 field")
	}
	p, rest := line[:c1], line[c1+1:]
	lab := rest
	if c2 := bytes.IndexByte(rest, ','); c2 >= 0 {
		if n := 2 + bytes.Count(rest, []byte{','}); n != 3 {
			return "", 0, fmt.Errorf("want \"path,label\" or \"path,,label\", got %d fields", n)
		}
		if c2 != 0 {
			return "", 0, errors.New("want \"path,label\" or \"path,,label\", got 3 fields with a non-empty middle one")
		}
		lab = rest[1:]
	}
	if len(p) == 0 {
		return "", 0, errors.New("empty image path")
	}
	path = string(p)
	if err := checkPath(path); err != nil {
		return "", 0, err
	}
	ls := strings.TrimSpace(string(lab))
	n, err := strconv.Atoi(ls)
	if err != nil {
		return "", 0, fmt.Errorf("label %q is not an integer", truncate(ls, 40))
	}
	return path, n, nil
}

// checkPath refuses image paths that are absolute or leave the image root.
func checkPath(p string) error {
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, "\\") || strings.ContainsRune(p, 0) {
		return fmt.Errorf("image path %q is not a relative path", truncate(p, 80))
	}
	if strings.Contains("/"+strings.ReplaceAll(p, "\\", "/")+"/", "/../") {
		return fmt.Errorf("image path %q leaves the image folder", truncate(p, 80))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// lines splits file contents into lines, dropping a trailing '\r' from each (files may mix
// CRLF and LF) and a UTF-8 byte-order mark at the start. A final line ending does not make an
// extra line.
func lines(b []byte) [][]byte {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	ls := bytes.Split(b, []byte{'\n'})
	if len(ls) > 0 && len(ls[len(ls)-1]) == 0 {
		ls = ls[:len(ls)-1]
	}
	for i, l := range ls {
		ls[i] = bytes.TrimSuffix(l, []byte{'\r'})
	}
	return ls
}

// readSplitFile reads one split CSV: optional header on line 1, blank lines ignored, every
// other line "path,label" or "path,,label" with 0 <= label < nClasses. Errors name file:line.
func readSplitFile(file string, nClasses int) ([]row, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("wikiart: %w", err)
	}
	var rows []row
	for i, l := range lines(b) {
		ln := i + 1
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if bytes.HasPrefix(l, []byte(headerPrefix)) {
			if ln != 1 {
				return nil, fmt.Errorf("wikiart: %s:%d: header line %q after line 1", file, ln, truncate(string(l), 60))
			}
			continue
		}
		p, lab, err := parseLine(l)
		if err != nil {
			return nil, fmt.Errorf("wikiart: %s:%d: %v", file, ln, err)
		}
		if lab < 0 || lab >= nClasses {
			return nil, fmt.Errorf("wikiart: %s:%d: label %d out of range: the class list has %d classes (0..%d)", file, ln, lab, nClasses, nClasses-1)
		}
		rows = append(rows, row{line: ln, path: p, label: lab})
	}
	return rows, nil
}

// ReadClasses reads a class list: one "index Name" per line, indices 0, 1, 2, … in order,
// names unique and without blanks. Blank lines are ignored; CRLF and LF are both accepted.
// Errors name file:line.
func ReadClasses(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wikiart: %w", err)
	}
	var names []string
	seen := map[string]int{}
	for i, l := range lines(b) {
		ln := i + 1
		s := strings.TrimSpace(string(l))
		if s == "" {
			continue
		}
		f := strings.Fields(s)
		if len(f) != 2 {
			return nil, fmt.Errorf("wikiart: %s:%d: want \"index Name\", got %d fields", path, ln, len(f))
		}
		idx, err := strconv.Atoi(f[0])
		if err != nil {
			return nil, fmt.Errorf("wikiart: %s:%d: class index %q is not an integer", path, ln, truncate(f[0], 40))
		}
		if idx != len(names) {
			return nil, fmt.Errorf("wikiart: %s:%d: class index %d, want %d (indices must be 0, 1, 2, … in order)", path, ln, idx, len(names))
		}
		if prev, dup := seen[f[1]]; dup {
			return nil, fmt.Errorf("wikiart: %s:%d: class name %q repeats line %d", path, ln, f[1], prev)
		}
		seen[f[1]] = ln
		names = append(names, f[1])
	}
	if len(names) < 2 {
		return nil, fmt.Errorf("wikiart: %s: %d classes, need at least 2", path, len(names))
	}
	return names, nil
}
