package wikiart

import (
	"fmt"
	"strings"
)

// maxExamples bounds the example paths kept in a report.
const maxExamples = 5

// Report says what Load read, kept and skipped, and why.
type Report struct {
	Root          string `json:"root"`
	Images        string `json:"images,omitempty"` // the image root checked, if any
	ImagesChecked bool   `json:"images_checked"`
	ImagesOnDisk  int    `json:"images_on_disk"` // files in the image folders that CSV paths name
	Unlisted      int    `json:"unlisted"`       // of those, files that no CSV row names
	Strict        bool   `json:"strict"`
	Disjoint      bool   `json:"disjoint"`
	Policy        string `json:"conflict_policy"`

	Files  []*FileReport `json:"files"`  // one per CSV: style, genre, artist × train, val
	Splits []SplitReport `json:"splits"` // train, val

	Conflicts       []Conflict `json:"conflicts"`        // paths listed with different labels in one file
	Missing         int        `json:"missing_image"`    // labelled paths without an image (all files)
	MissingExamples []Where    `json:"missing_examples"` // the first few, in file order
	// FolderMismatch counts style rows whose folder is not the style's (Art_Nouveau →
	// Art_Nouveau_Modern taken into account). Such rows are kept; the count is a data check.
	FolderMismatch         int     `json:"folder_mismatch"`
	FolderMismatchExamples []Where `json:"folder_mismatch_examples,omitempty"`
	// CrossSplit counts kept paths that are in train for some task and in val for some task
	// (before Disjoint removes them from train).
	CrossSplit int `json:"cross_split"`

	Classes map[string][]string `json:"classes"`
}

// FileReport accounts for every data row of one split file:
// Rows = Labels + Duplicates + ConflictRows + MissingImage + InVal.
type FileReport struct {
	File         string `json:"file"`
	Task         string `json:"task"`
	Split        string `json:"split"`
	Rows         int    `json:"rows"`             // data rows read (header and blank lines excluded)
	Duplicates   int    `json:"duplicates"`       // rows repeating an earlier row's path and label
	ConflictRows int    `json:"conflict_rows"`    // rows of paths listed with different labels (ConflictPolicy)
	MissingImage int    `json:"missing_image"`    // paths without an image on disk
	InVal        int    `json:"in_val"`           // train paths removed because val keeps them (Disjoint)
	Labels       int    `json:"labels"`           // labels kept
	PerClass     []int  `json:"per_class"`        // labels kept per class
	Absent       bool   `json:"absent,omitempty"` // the root has no such file (Options.PartialTasks): the task labels none of the split
}

// Skipped returns the rows of the file that gave no label.
func (f *FileReport) Skipped() int { return f.Duplicates + f.ConflictRows + f.MissingImage + f.InVal }

// SplitReport sums up one merged split.
type SplitReport struct {
	Name         string `json:"name"`
	Samples      int    `json:"samples"`
	Labelled     [3]int `json:"labelled"`       // samples with a style, genre, artist label
	ByLabelCount [4]int `json:"by_label_count"` // samples with 0, 1, 2, 3 labels
}

// Conflict is a path that one file lists with different labels.
type Conflict struct {
	File   string `json:"file"`
	Path   string `json:"path"`
	Lines  []int  `json:"lines"`
	Labels []int  `json:"labels"`
}

// Where is a row of a file.
type Where struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Path string `json:"path"`
	Note string `json:"note,omitempty"`
}

// File returns the report of the named CSV (e.g. "genre_val.csv"), or nil.
func (r *Report) File(name string) *FileReport {
	for _, f := range r.Files {
		if f.File == name {
			return f
		}
	}
	return nil
}

// String renders the report for humans.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "WikiArt splits in %s\n", r.Root)
	if r.ImagesChecked {
		fmt.Fprintf(&b, "images: %s, %d files (%d not named by any CSV row); rows without an image are %s\n",
			r.Images, r.ImagesOnDisk, r.Unlisted, map[bool]string{false: "skipped", true: "refused (strict)"}[r.Strict])
	} else {
		fmt.Fprintf(&b, "images: not checked (labels only)\n")
	}
	fmt.Fprintf(&b, "%-18s %7s %6s %9s %9s %7s %7s\n", "file", "rows", "dup", "conflict", "no-image", "in-val", "kept")
	for _, f := range r.Files {
		fmt.Fprintf(&b, "%-18s %7d %6d %9d %9d %7d %7d\n", f.File, f.Rows, f.Duplicates, f.ConflictRows, f.MissingImage, f.InVal, f.Labels)
	}
	for _, s := range r.Splits {
		fmt.Fprintf(&b, "split %-5s %6d samples; with style %d, genre %d, artist %d; with 1/2/3 labels %d/%d/%d\n",
			s.Name, s.Samples, s.Labelled[Style], s.Labelled[Genre], s.Labelled[Artist], s.ByLabelCount[1], s.ByLabelCount[2], s.ByLabelCount[3])
	}
	fmt.Fprintf(&b, "paths in both train and val: %d (%s)\n", r.CrossSplit,
		map[bool]string{false: "kept in both", true: "removed from train: Disjoint"}[r.Disjoint])
	if len(r.Conflicts) > 0 {
		fmt.Fprintf(&b, "conflicting labels (policy: %s):\n", r.Policy)
		for _, c := range r.Conflicts {
			fmt.Fprintf(&b, "  %s: %s lines %v labels %v\n", c.File, c.Path, c.Lines, c.Labels)
		}
	}
	if r.Missing > 0 {
		fmt.Fprintf(&b, "rows without an image: %d; first:\n", r.Missing)
		for _, w := range r.MissingExamples {
			fmt.Fprintf(&b, "  %s:%d %s\n", w.File, w.Line, w.Path)
		}
	}
	if r.FolderMismatch > 0 {
		fmt.Fprintf(&b, "style rows whose folder is not their style's: %d (kept); first:\n", r.FolderMismatch)
		for _, w := range r.FolderMismatchExamples {
			fmt.Fprintf(&b, "  %s:%d %s (%s)\n", w.File, w.Line, w.Path, w.Note)
		}
	}
	for _, f := range r.Files {
		if f.Labels == 0 {
			continue
		}
		names := r.Classes[f.Task]
		fmt.Fprintf(&b, "%s per class:", f.File)
		for i, n := range f.PerClass {
			if n == 0 {
				continue
			}
			name := fmt.Sprint(i)
			if i < len(names) {
				name = names[i]
			}
			fmt.Fprintf(&b, " %s=%d", name, n)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
