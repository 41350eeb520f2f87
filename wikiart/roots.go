package wikiart

import (
	"errors"
	"fmt"
)

// Roots is what LoadRoots returns: the union of several data roots' splits, with each root's own
// report and sample count, so that a run can report per root and over the union.
type Roots struct {
	Train, Val *Split
	Classes    map[string][]string
	Reports    []*Report // one per root, in order
	// TrainFrom and ValFrom give, per root, the index range [start, end) of its samples in Train
	// and Val.
	TrainFrom, ValFrom [][2]int
	// CrossRoot counts train samples dropped because another root's val split holds the same
	// image file (Disjoint).
	CrossRoot int
}

// LoadRoots loads several data roots into one pair of splits. The first root gives the class
// lists; the others may lack class files and split files (a root with style labels only: its
// images get Absent genre and artist labels, which the loss masks), but a class file they have
// must match. Samples of every root but the first carry their root's image folder
// (Sample.Images), so Sample.File finds them whatever image root a caller passes. With
// Disjoint, a train sample whose image file some root's val split also lists is dropped.
func LoadRoots(roots []Options) (*Roots, error) {
	if len(roots) == 0 {
		return nil, errors.New("wikiart: no data root")
	}
	out := &Roots{Train: &Split{Name: "train"}, Val: &Split{Name: "val"}}
	var images []string
	for i, o := range roots {
		if i > 0 {
			o.Classes, o.PartialTasks = out.Classes, true
		}
		tr, va, classes, rep, err := Load(o)
		if err != nil {
			if len(roots) > 1 {
				return nil, fmt.Errorf("data root %d (%s): %w", i+1, o.Root, err)
			}
			return nil, err
		}
		if i == 0 {
			out.Classes = classes
		} else {
			for _, s := range [2]*Split{tr, va} {
				for k := range s.Samples {
					s.Samples[k].Images = rep.Images
				}
			}
		}
		images = append(images, rep.Images)
		out.Reports = append(out.Reports, rep)
		out.TrainFrom = append(out.TrainFrom, [2]int{len(out.Train.Samples), len(out.Train.Samples) + len(tr.Samples)})
		out.ValFrom = append(out.ValFrom, [2]int{len(out.Val.Samples), len(out.Val.Samples) + len(va.Samples)})
		out.Train.Samples = append(out.Train.Samples, tr.Samples...)
		out.Val.Samples = append(out.Val.Samples, va.Samples...)
	}
	if len(roots) > 1 && roots[0].Disjoint {
		inVal := map[string]bool{}
		for _, s := range out.Val.Samples {
			inVal[s.File(images[0])] = true
		}
		// Filter in place, root by root, so each root's range is known as it is rebuilt.
		keep := out.Train.Samples[:0]
		for k, r := range out.TrainFrom {
			start := len(keep)
			for _, s := range out.Train.Samples[r[0]:r[1]] {
				if inVal[s.File(images[0])] {
					out.CrossRoot++
					continue
				}
				keep = append(keep, s)
			}
			out.TrainFrom[k] = [2]int{start, len(keep)}
		}
		out.Train.Samples = keep
	}
	return out, nil
}
