// Package wikiart reads the WikiArt/ArtGAN split files (style, genre and artist CSVs and their
// class lists) and merges them, per split, into multi-task samples for DeepArtNet: one sample
// per image path, with a label for each of the three tasks or -1 where that task's files do not
// list the image.
//
// It has its own folder because the data's quirks are its whole job and every consumer (the
// trainer, the CLI's data commands, evaluation) must see the same samples: the six CSVs differ
// in format (CRLF "path,label" without header for style/genre; LF, a header line, a blank line
// and "path,,label" for artist), paths carry mojibake bytes that are part of the file names and
// are kept byte-exact, style class 3 "Art_Nouveau" lives in the folder "Art_Nouveau_Modern",
// genre_val.csv lists one image twice with different labels, and a local image folder usually
// holds only part of the images. Load reports every row it does not keep and why. The package
// uses only the standard library.
package wikiart

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Task indices into Sample.Labels, in the order of spec.Tasks and of the model's outputs.
const (
	Style  = 0
	Genre  = 1
	Artist = 2
)

// Tasks names the three tasks (the same order as spec.Tasks).
var Tasks = [3]string{"style", "genre", "artist"}

// SplitNames are the two ArtGAN splits.
var SplitNames = [2]string{"train", "val"}

// Absent is the label of a task that does not list an image.
const Absent = -1

// ConflictPolicy says what Load does with a path that one file lists with different labels.
const ConflictPolicy = "drop: a path that one split file lists with different labels loses that task's label (all its rows are skipped); its labels from the other tasks are kept"

// Sample is one image with its labels for the three tasks.
type Sample struct {
	Path   string `json:"path"`   // relative, '/'-separated, byte-exact as in the CSV
	Labels [3]int `json:"labels"` // style, genre, artist; Absent (-1) where the task does not list the image
	// Images, when set, is the image root of the data root the sample came from (several roots
	// in one run: see LoadRoots); it takes precedence over the image root File is given.
	Images string `json:"images,omitempty"`
}

// Has reports whether the sample has a label for task.
func (s Sample) Has(task int) bool { return s.Labels[task] != Absent }

// File returns the sample's image file under the image root.
func (s Sample) File(images string) string {
	if s.Images != "" {
		images = s.Images
	}
	return filepath.Join(images, filepath.FromSlash(s.Path))
}

// Split is one split ("train" or "val") of merged samples, in order of first appearance in
// the style, then genre, then artist file.
type Split struct {
	Name    string   `json:"name"`
	Samples []Sample `json:"samples"`
}

// Count returns how many samples have a label for task.
func (s *Split) Count(task int) int {
	n := 0
	for _, x := range s.Samples {
		if x.Has(task) {
			n++
		}
	}
	return n
}

// ClassCounts returns, for task, how many samples carry each of the n class labels.
func (s *Split) ClassCounts(task, n int) []int {
	c := make([]int, n)
	for _, x := range s.Samples {
		if l := x.Labels[task]; l >= 0 && l < n {
			c[l]++
		}
	}
	return c
}

// Options says where the data is and how to treat rows whose image is not on disk.
type Options struct {
	// Root is the folder with the six split CSVs and the three class lists.
	Root string
	// Images is the image root (files at Images/<path from the CSV>). Empty means Root/images,
	// and if that folder does not exist, images are not checked. A non-empty Images that does
	// not exist is an error.
	Images string
	// SkipImageCheck keeps every row whatever is on disk (labels only).
	SkipImageCheck bool
	// Strict refuses rows whose image is missing: Load fails, naming the first missing path
	// and the count, instead of skipping them. It needs an image folder.
	Strict bool
	// Disjoint removes from train every path that val also keeps (for any task), so no
	// validation image is trained on. The ArtGAN splits are per task, and some images are in
	// one task's train file and another task's val file.
	Disjoint bool
	// Classes, when set, gives the class lists of a root that lacks some class files (an extra
	// root with style labels only); a root's own class file must then list the same classes.
	Classes map[string][]string
	// PartialTasks accepts a root without some of the six split files: a task whose file is
	// absent labels no image of that split (the loss masks it). At least one file must exist.
	PartialTasks bool
}

// FileName returns the CSV file name of a task and split, e.g. "style_train.csv".
func FileName(task int, split string) string { return Tasks[task] + "_" + split + ".csv" }

// ClassFileName returns the class list file name of a task, e.g. "style_class.txt".
func ClassFileName(task int) string { return Tasks[task] + "_class.txt" }

// StyleFolder returns the image folder of a style class name: the name itself, except
// "Art_Nouveau", whose images are in "Art_Nouveau_Modern".
func StyleFolder(class string) string {
	if class == "Art_Nouveau" {
		return "Art_Nouveau_Modern"
	}
	return class
}

// entry is one kept (task, split) label of a path, with the line that gave it.
type entry struct {
	row
	file string
}

// Load reads the class lists and the six split files under o.Root, checks the images (see
// Options) and returns the merged train and val splits, the class names per task (keyed by
// task name, like spec.Config.Classes) and a report of what was read and skipped. A malformed
// line is an error naming file and line. With Strict, missing images make Load fail; the report
// is returned with that error.
func Load(o Options) (train, val *Split, classes map[string][]string, rep *Report, err error) {
	if o.Root == "" {
		return nil, nil, nil, nil, errors.New("wikiart: Options.Root is empty")
	}
	classes = map[string][]string{}
	for t, name := range Tasks {
		file := filepath.Join(o.Root, ClassFileName(t))
		given, ok := o.Classes[name]
		if _, err := os.Stat(file); err != nil && ok && errors.Is(err, fs.ErrNotExist) {
			classes[name] = given
			continue
		}
		c, err := ReadClasses(file)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		if ok && !slices.Equal(c, given) {
			return nil, nil, nil, nil, fmt.Errorf("wikiart: %s: its %d %s classes differ from the first data root's %d", file, len(c), name, len(given))
		}
		classes[name] = c
	}

	rep = &Report{Root: o.Root, Policy: ConflictPolicy, Disjoint: o.Disjoint, Strict: o.Strict}
	images := o.Images
	if images == "" {
		images = filepath.Join(o.Root, "images")
		if st, err := os.Stat(images); err != nil || !st.IsDir() {
			images = ""
		}
	} else if st, err := os.Stat(images); err != nil || !st.IsDir() {
		return nil, nil, nil, nil, fmt.Errorf("wikiart: image folder %s: not a readable directory", images)
	}
	var onDisk *imageIndex
	if images != "" && !o.SkipImageCheck {
		rep.Images = images
		rep.ImagesChecked = true
		onDisk = newImageIndex(images)
	}
	if o.Strict && onDisk == nil {
		return nil, nil, nil, nil, fmt.Errorf("wikiart: Strict needs an image folder to check (none at %s, or SkipImageCheck set)", filepath.Join(o.Root, "images"))
	}

	// Read, deduplicate and check every file; kept[split][task] are the surviving labels.
	var kept [2][3][]entry
	fileRep := map[string]*FileReport{}
	listed := make(map[string]bool, 90000)
	present := 0
	for si, split := range SplitNames {
		for t := range Tasks {
			name := FileName(t, split)
			file := filepath.Join(o.Root, name)
			if _, err := os.Stat(file); o.PartialTasks && errors.Is(err, fs.ErrNotExist) {
				fileRep[name] = &FileReport{File: name, Task: Tasks[t], Split: split, Absent: true}
				rep.Files = append(rep.Files, fileRep[name])
				continue
			}
			present++
			rows, err := readSplitFile(file, len(classes[Tasks[t]]))
			if err != nil {
				return nil, nil, nil, nil, err
			}
			fr := &FileReport{File: name, Task: Tasks[t], Split: split, Rows: len(rows)}
			for _, r := range rows {
				listed[r.path] = true
			}
			ents := dedupe(name, rows, fr, rep)
			keep := ents[:0] // filtered in place
			for _, e := range ents {
				if t == Style {
					folder, _, _ := strings.Cut(e.path, "/")
					if want := StyleFolder(classes["style"][e.label]); folder != want {
						rep.FolderMismatch++
						if len(rep.FolderMismatchExamples) < maxExamples {
							rep.FolderMismatchExamples = append(rep.FolderMismatchExamples, Where{File: name, Line: e.line, Path: e.path,
								Note: fmt.Sprintf("label %d %s, expected folder %s", e.label, classes["style"][e.label], want)})
						}
					}
				}
				ok, err := onDisk.has(e.path)
				if err != nil {
					return nil, nil, nil, nil, err
				}
				if !ok {
					fr.MissingImage++
					rep.Missing++
					if len(rep.MissingExamples) < maxExamples {
						rep.MissingExamples = append(rep.MissingExamples, Where{File: name, Line: e.line, Path: e.path})
					}
					continue
				}
				keep = append(keep, e)
			}
			kept[si][t] = keep
			fileRep[name] = fr
			rep.Files = append(rep.Files, fr)
		}
	}
	if present == 0 {
		return nil, nil, nil, nil, fmt.Errorf("wikiart: %s: none of the six split files (style_train.csv …) is there", o.Root)
	}
	if onDisk != nil {
		for dir, names := range onDisk.dirs {
			for name := range names {
				rep.ImagesOnDisk++
				if !listed[joinSlash(dir, name)] {
					rep.Unlisted++
				}
			}
		}
	}
	if o.Strict && rep.Missing > 0 {
		first := rep.MissingExamples[0]
		return nil, nil, nil, rep, fmt.Errorf("wikiart: strict: %d labels have no image file under %s; first: %s:%d %s",
			rep.Missing, images, filepath.Join(o.Root, first.File), first.Line, first.Path)
	}

	// Paths in both splits (the ArtGAN splits are per task); Disjoint drops them from train.
	inVal := map[string]bool{}
	for t := range Tasks {
		for _, e := range kept[1][t] {
			inVal[e.path] = true
		}
	}
	cross := map[string]bool{}
	for t := range Tasks {
		keep := kept[0][t][:0] // filtered in place
		for _, e := range kept[0][t] {
			if inVal[e.path] {
				cross[e.path] = true
				if o.Disjoint {
					fileRep[e.file].InVal++
					continue
				}
			}
			keep = append(keep, e)
		}
		kept[0][t] = keep
	}
	rep.CrossSplit = len(cross)

	var splits [2]*Split
	for si, split := range SplitNames {
		s := &Split{Name: split, Samples: make([]Sample, 0, len(kept[si][Style])+len(kept[si][Genre])/4)}
		idx := make(map[string]int, len(kept[si][Style])+len(kept[si][Genre])/4)
		for t := range Tasks {
			fr := fileRep[FileName(t, split)]
			fr.PerClass = make([]int, len(classes[Tasks[t]]))
			for _, e := range kept[si][t] {
				i, ok := idx[e.path]
				if !ok {
					i = len(s.Samples)
					idx[e.path] = i
					s.Samples = append(s.Samples, Sample{Path: e.path, Labels: [3]int{Absent, Absent, Absent}})
				}
				s.Samples[i].Labels[t] = e.label
				fr.Labels++
				fr.PerClass[e.label]++
			}
		}
		sr := SplitReport{Name: split, Samples: len(s.Samples)}
		for _, x := range s.Samples {
			n := 0
			for t := range Tasks {
				if x.Has(t) {
					sr.Labelled[t]++
					n++
				}
			}
			sr.ByLabelCount[n]++
		}
		rep.Splits = append(rep.Splits, sr)
		splits[si] = s
	}
	rep.Classes = classes
	return splits[0], splits[1], classes, rep, nil
}

// dedupe keeps the first row of each path. A repeated path with the same label is a counted
// duplicate; with a different label, the path is a conflict and all its rows are skipped
// (ConflictPolicy).
func dedupe(name string, rows []row, fr *FileReport, rep *Report) []entry {
	first := make(map[string]int, len(rows)) // path → index into out
	out := make([]entry, 0, len(rows))
	repeats := map[string][]row{} // path → its later rows
	for _, r := range rows {
		if i, ok := first[r.path]; ok {
			if len(repeats[r.path]) == 0 {
				repeats[r.path] = []row{out[i].row}
			}
			repeats[r.path] = append(repeats[r.path], r)
			continue
		}
		first[r.path] = len(out)
		out = append(out, entry{row: r, file: name})
	}
	if len(repeats) == 0 {
		return out
	}
	keep := out[:0]
	for _, e := range out {
		rs, ok := repeats[e.path]
		if !ok {
			keep = append(keep, e)
			continue
		}
		c := Conflict{File: name, Path: e.path}
		bad := false
		for _, r := range rs {
			c.Lines = append(c.Lines, r.line)
			c.Labels = append(c.Labels, r.label)
			bad = bad || r.label != e.label
		}
		if bad {
			fr.ConflictRows += len(rs)
			rep.Conflicts = append(rep.Conflicts, c)
		} else {
			fr.Duplicates += len(rs) - 1
			keep = append(keep, e)
		}
	}
	return keep
}

// imageIndex answers whether an image path exists under root. It lists each folder that the
// CSV paths name once (os.ReadDir follows symbolic links to folders), so names are compared
// byte for byte as the file system stores them, and a few dozen directory reads replace
// 160,000 stat calls.
type imageIndex struct {
	root string
	dirs map[string]map[string]bool // '/'-separated folder → names of its files
}

func newImageIndex(root string) *imageIndex {
	return &imageIndex{root: root, dirs: map[string]map[string]bool{}}
}

// has reports whether root/p is a file (or a link to one). A folder that does not exist
// holds no images; any other error reading a folder is returned.
func (x *imageIndex) has(p string) (bool, error) {
	if x == nil {
		return true, nil
	}
	dir, name := "", p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		dir, name = p[:i], p[i+1:]
	}
	names, ok := x.dirs[dir]
	if !ok {
		names = map[string]bool{}
		full := filepath.Join(x.root, filepath.FromSlash(dir))
		ents, err := os.ReadDir(full)
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return false, fmt.Errorf("wikiart: reading image folder %s: %w", full, err)
		}
		for _, e := range ents {
			switch {
			case e.Type().IsRegular():
				names[e.Name()] = true
			case e.Type()&fs.ModeSymlink != 0:
				if st, err := os.Stat(filepath.Join(full, e.Name())); err == nil && st.Mode().IsRegular() {
					names[e.Name()] = true
				}
			}
		}
		x.dirs[dir] = names
	}
	return names[name], nil
}

func joinSlash(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
