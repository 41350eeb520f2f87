package wikiart

import (
	"context"
	"fmt"
	"image"
	_ "image/gif"  // headers of GIF images
	_ "image/jpeg" // headers of JPEG images
	_ "image/png"  // headers of PNG images
	"os"
	"runtime"
	"slices"
	"sync"
)

// DataReport is what `artnet data report` shows (the seed's notebook 01_data_exploration): for
// each data root and for their union, per split, the images per class of each task, how many
// images carry 1, 2 or 3 labels, the image sizes, and the rows that were skipped and why.
type DataReport struct {
	Classes map[string][]string `json:"classes"`
	Roots   []RootStats         `json:"roots"` // one per data root, in order
	// Union is over all roots (after the cross-root disjointness drop, CrossRoot).
	Union RootStats `json:"union"`
	// CrossRoot counts train images dropped because another root's val split lists the same
	// image file (Roots.CrossRoot).
	CrossRoot int `json:"cross_root_dropped"`
	// Disjoint says whether train rows whose image a val split keeps were dropped (Options.Disjoint
	// of the first root, as in training).
	Disjoint bool `json:"disjoint"`
}

// RootStats is one data root (or the union of all: Root "all roots").
type RootStats struct {
	Root   string       `json:"root"`
	Images string       `json:"images,omitempty"` // the image folder checked; empty when images were not checked
	Splits []SplitStats `json:"splits"`           // train, val
	// Skipped sums the rows the split files gave no label for, by reason (Report's counts).
	Skipped Skipped `json:"skipped"`
	// Files is the per-file account of the root (nil for the union).
	Files []*FileReport `json:"files,omitempty"`
	// MissingTasks names the tasks this root has no split file for (their labels are masked).
	MissingTasks []string `json:"missing_tasks,omitempty"`
}

// Skipped counts rows without a label by reason (FileReport's fields summed over files).
type Skipped struct {
	Rows         int `json:"rows"` // all data rows read
	Duplicates   int `json:"duplicates"`
	ConflictRows int `json:"conflict_rows"`
	MissingImage int `json:"missing_image"`
	InVal        int `json:"in_val"`
	CrossRoot    int `json:"cross_root,omitempty"` // union only: train images dropped for another root's val
}

// Total returns all skipped rows.
func (s Skipped) Total() int {
	return s.Duplicates + s.ConflictRows + s.MissingImage + s.InVal + s.CrossRoot
}

// SplitStats is one split of one root (or of the union).
type SplitStats struct {
	Name         string      `json:"name"`
	Images       int         `json:"images"`         // samples (distinct image paths)
	ByLabelCount [4]int      `json:"by_label_count"` // images with 0, 1, 2, 3 task labels
	Tasks        []TaskStats `json:"tasks"`          // style, genre, artist
	Sizes        *SizeStats  `json:"sizes,omitempty"`
}

// TaskStats counts one task's labels in a split.
type TaskStats struct {
	Task     string `json:"task"`
	Labelled int    `json:"labelled"`  // images with a label for the task
	PerClass []int  `json:"per_class"` // images per class, in class-list order
	Present  int    `json:"present"`   // classes with at least one image
	// Absent names the classes without an image.
	Absent []string `json:"absent"`
	// Imbalance is the largest class count over the smallest among present classes (0 when no
	// class is present); Largest and Smallest name those classes.
	Imbalance float64 `json:"imbalance"`
	Largest   string  `json:"largest,omitempty"`
	Smallest  string  `json:"smallest,omitempty"`
}

// SizeStats describes the pixel sizes of a split's images, read from their headers only.
type SizeStats struct {
	Read       int            `json:"read"`        // images whose header was read
	Unreadable int            `json:"unreadable"`  // images whose header could not be read
	FirstError string         `json:"first_error"` // the first such image's error (file named)
	Width      MinMed         `json:"width"`
	Height     MinMed         `json:"height"`
	Is224      int            `json:"exactly_224x224"`
	Formats    map[string]int `json:"formats"` // image format (jpeg, png, gif) → images
}

// MinMed is the minimum, median and maximum of a set of sizes.
type MinMed struct {
	Min    int     `json:"min"`
	Median float64 `json:"median"`
	Max    int     `json:"max"`
}

// StatsOptions says how Stats reads image headers.
type StatsOptions struct {
	// NoSizes skips the image headers (label counts only).
	NoSizes bool
	// Workers reads headers in parallel (0: 4 × GOMAXPROCS; header reads wait on the disk more
	// than on the CPU).
	Workers int
}

// imgSize is one image's header: Err set when it could not be read.
type imgSize struct {
	w, h   int
	format string
	err    error
}

// Stats computes the data report of roots (LoadRoots' result). Image headers are read (with
// image.DecodeConfig, in parallel) for every root whose images were checked; an unreadable image
// is counted, not an error. It returns ctx's error when ctx ends first.
func Stats(ctx context.Context, roots *Roots, o StatsOptions) (*DataReport, error) {
	if roots == nil || len(roots.Reports) == 0 {
		return nil, fmt.Errorf("wikiart: stats: no data root")
	}
	from := [2][][2]int{roots.TrainFrom, roots.ValFrom}
	splits := [2]*Split{roots.Train, roots.Val}
	var sizes [2][]imgSize
	if !o.NoSizes {
		for si, s := range splits {
			// The image file of each sample of a root whose images were checked ("" otherwise:
			// no header to read).
			files := make([]string, len(s.Samples))
			for i, rep := range roots.Reports {
				if !rep.ImagesChecked {
					continue
				}
				for k := from[si][i][0]; k < from[si][i][1]; k++ {
					files[k] = s.Samples[k].File(roots.Reports[0].Images)
				}
			}
			var err error
			if sizes[si], err = readSizes(ctx, files, o.Workers); err != nil {
				return nil, err
			}
		}
	}
	out := &DataReport{Classes: roots.Classes, CrossRoot: roots.CrossRoot, Disjoint: roots.Reports[0].Disjoint}
	union := RootStats{Root: "all roots", Skipped: Skipped{CrossRoot: roots.CrossRoot}}
	for i, rep := range roots.Reports {
		rs := RootStats{Root: rep.Root, Images: rep.Images, Files: rep.Files}
		missing := [3]bool{true, true, true}
		for _, f := range rep.Files {
			rs.Skipped.Rows += f.Rows
			rs.Skipped.Duplicates += f.Duplicates
			rs.Skipped.ConflictRows += f.ConflictRows
			rs.Skipped.MissingImage += f.MissingImage
			rs.Skipped.InVal += f.InVal
			if !f.Absent {
				missing[slices.Index(Tasks[:], f.Task)] = false
			}
		}
		for t, m := range missing {
			if m {
				rs.MissingTasks = append(rs.MissingTasks, Tasks[t])
			}
		}
		for si := range splits {
			r := from[si][i]
			withSizes := !o.NoSizes && rep.ImagesChecked
			var sz []imgSize
			if withSizes {
				sz = sizes[si][r[0]:r[1]]
			}
			rs.Splits = append(rs.Splits, splitStats(SplitNames[si], splits[si].Samples[r[0]:r[1]], withSizes, sz, roots.Classes))
		}
		u := &union.Skipped
		u.Rows += rs.Skipped.Rows
		u.Duplicates += rs.Skipped.Duplicates
		u.ConflictRows += rs.Skipped.ConflictRows
		u.MissingImage += rs.Skipped.MissingImage
		u.InVal += rs.Skipped.InVal
		out.Roots = append(out.Roots, rs)
	}
	for si := range splits {
		// Sizes over the roots whose images were checked.
		withSizes := false
		var sz []imgSize
		for i, rep := range roots.Reports {
			if !o.NoSizes && rep.ImagesChecked {
				withSizes = true
				r := from[si][i]
				sz = append(sz, sizes[si][r[0]:r[1]]...)
			}
		}
		union.Splits = append(union.Splits, splitStats(SplitNames[si], splits[si].Samples, withSizes, sz, roots.Classes))
	}
	out.Union = union
	return out, nil
}

// splitStats counts one split's samples; with withSizes, sz are the headers of the images
// checked (the union's may be fewer than its samples).
func splitStats(name string, samples []Sample, withSizes bool, sz []imgSize, classes map[string][]string) SplitStats {
	s := SplitStats{Name: name, Images: len(samples)}
	for _, x := range samples {
		n := 0
		for t := range Tasks {
			if x.Has(t) {
				n++
			}
		}
		s.ByLabelCount[n]++
	}
	for t, task := range Tasks {
		names := classes[task]
		ts := TaskStats{Task: task, PerClass: make([]int, len(names)), Absent: []string{}}
		for _, x := range samples {
			if l := x.Labels[t]; l >= 0 && l < len(names) {
				ts.PerClass[l]++
				ts.Labelled++
			}
		}
		lo, hi := -1, -1
		for c, n := range ts.PerClass {
			if n == 0 {
				ts.Absent = append(ts.Absent, names[c])
				continue
			}
			ts.Present++
			if lo < 0 || n < ts.PerClass[lo] {
				lo = c
			}
			if hi < 0 || n > ts.PerClass[hi] {
				hi = c
			}
		}
		if lo >= 0 {
			ts.Imbalance = float64(ts.PerClass[hi]) / float64(ts.PerClass[lo])
			ts.Largest, ts.Smallest = names[hi], names[lo]
		}
		s.Tasks = append(s.Tasks, ts)
	}
	if withSizes {
		s.Sizes = sizeStats(sz)
	}
	return s
}

// sizeStats sums up image headers.
func sizeStats(sz []imgSize) *SizeStats {
	st := &SizeStats{Formats: map[string]int{}}
	var ws, hs []int
	for _, x := range sz {
		if x.err != nil {
			if st.Unreadable == 0 {
				st.FirstError = x.err.Error()
			}
			st.Unreadable++
			continue
		}
		st.Read++
		st.Formats[x.format]++
		ws, hs = append(ws, x.w), append(hs, x.h)
		if x.w == 224 && x.h == 224 {
			st.Is224++
		}
	}
	st.Width, st.Height = minMed(ws), minMed(hs)
	return st
}

// minMed returns the minimum, median (the mean of the two middle values for an even count) and
// maximum of v (zeros when v is empty). It sorts v.
func minMed(v []int) MinMed {
	if len(v) == 0 {
		return MinMed{}
	}
	slices.Sort(v)
	n := len(v)
	med := float64(v[n/2])
	if n%2 == 0 {
		med = float64(v[n/2-1]+v[n/2]) / 2
	}
	return MinMed{Min: v[0], Median: med, Max: v[n-1]}
}

// readSizes reads the header of each file with image.DecodeConfig, with workers goroutines, in
// the order of files; an empty name is skipped.
func readSizes(ctx context.Context, files []string, workers int) ([]imgSize, error) {
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	out := make([]imgSize, len(files))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				out[k] = readHeader(files[k])
			}
		}()
	}
	var err error
feed:
	for k, f := range files {
		if f == "" {
			continue
		}
		select {
		case jobs <- k:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err != nil {
		return nil, fmt.Errorf("wikiart: reading image headers: %w", err)
	}
	return out, nil
}

// readHeader reads one image's size and format from its header.
func readHeader(file string) imgSize {
	f, err := os.Open(file)
	if err != nil {
		return imgSize{err: err}
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return imgSize{err: fmt.Errorf("%s: %w", file, err)}
	}
	return imgSize{w: cfg.Width, h: cfg.Height, format: format}
}
