package wikiart

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// RootNames returns short names for the report's roots: each root's folder name, or "root N"
// where two folder names are the same.
func (d *DataReport) RootNames() []string {
	names := make([]string, len(d.Roots))
	seen := map[string]int{}
	for i, r := range d.Roots {
		names[i] = filepath.Base(filepath.Clean(r.Root))
		seen[names[i]]++
	}
	for i := range names {
		if seen[names[i]] > 1 || names[i] == "." || names[i] == "/" {
			names[i] = fmt.Sprintf("root %d", i+1)
		}
	}
	return names
}

// Markdown renders the report as a markdown document (tables per section).
func (d *DataReport) Markdown() string {
	var b strings.Builder
	names := d.RootNames()
	type named struct {
		name string
		rs   *RootStats
	}
	all := make([]named, 0, len(d.Roots)+1)
	for i := range d.Roots {
		all = append(all, named{names[i], &d.Roots[i]})
	}
	if len(d.Roots) > 1 {
		all = append(all, named{"all roots", &d.Union})
	}

	b.WriteString("# WikiArt data report\n\n")
	b.WriteString("| root | folder | images checked in | train images | val images | tasks without split files (masked) |\n|---|---|---|--:|--:|---|\n")
	for _, n := range all {
		folder, imgs := code(n.rs.Root), code(n.rs.Images)
		if n.rs == &d.Union {
			folder = ""
		} else if imgs == "" {
			imgs = "not checked: labels only"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", n.name, folder, imgs,
			num(n.rs.Splits[0].Images), num(n.rs.Splits[1].Images), dash(strings.Join(n.rs.MissingTasks, ", ")))
	}
	if d.Disjoint {
		b.WriteString("\nSplits made disjoint, as in training: a train image that a val split also lists (for any task) is counted in val only.")
		if len(d.Roots) > 1 {
			fmt.Fprintf(&b, " Train images dropped because another root's val split lists the same image file: %s.", num(d.CrossRoot))
		}
		b.WriteByte('\n')
	} else {
		b.WriteString("\nSplits as listed (not disjoint): an image may count in train and in val.\n")
	}

	b.WriteString("\n## Task labels per image\n\n| root | split | images | 1 label | 2 labels | 3 labels | none |\n|---|---|--:|--:|--:|--:|--:|\n")
	for _, n := range all {
		for _, s := range n.rs.Splits {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", n.name, s.Name, num(s.Images),
				num(s.ByLabelCount[1]), num(s.ByLabelCount[2]), num(s.ByLabelCount[3]), num(s.ByLabelCount[0]))
		}
	}

	b.WriteString("\n## Classes per task\n\nImbalance: the largest class over the smallest, among the classes present.\n\n")
	b.WriteString("| root | split | task | labelled | classes present | imbalance | largest | smallest |\n|---|---|---|--:|--:|--:|---|---|\n")
	for _, n := range all {
		for _, s := range n.rs.Splits {
			for _, t := range s.Tasks {
				imb, lg, sm := "–", "–", "–"
				if t.Present > 0 {
					imb = strconv.FormatFloat(t.Imbalance, 'f', 1, 64)
					lg = fmt.Sprintf("%s (%s)", t.Largest, num(t.PerClass[slices.Index(d.Classes[t.Task], t.Largest)]))
					sm = fmt.Sprintf("%s (%s)", t.Smallest, num(t.PerClass[slices.Index(d.Classes[t.Task], t.Smallest)]))
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %d of %d | %s | %s | %s |\n", n.name, s.Name, t.Task, num(t.Labelled),
					t.Present, len(t.PerClass), imb, lg, sm)
			}
		}
	}

	for t, task := range Tasks {
		fmt.Fprintf(&b, "\n### %s: images per class\n\n| class |", task)
		for _, n := range all {
			for _, s := range n.rs.Splits {
				fmt.Fprintf(&b, " %s %s |", n.name, s.Name)
			}
		}
		b.WriteString("\n|---|" + strings.Repeat("--:|", 2*len(all)) + "\n")
		for c, class := range d.Classes[task] {
			fmt.Fprintf(&b, "| %s |", class)
			for _, n := range all {
				for _, s := range n.rs.Splits {
					fmt.Fprintf(&b, " %s |", dash0(s.Tasks[t].PerClass[c]))
				}
			}
			b.WriteByte('\n')
		}
	}

	b.WriteString("\n## Image sizes\n\nRead from the image headers only (`image.DecodeConfig`).\n\n")
	b.WriteString("| root | split | read | unreadable | width min / median / max | height min / median / max | exactly 224×224 | formats |\n|---|---|--:|--:|---|---|--:|---|\n")
	for _, n := range all {
		for _, s := range n.rs.Splits {
			z := s.Sizes
			if z == nil {
				fmt.Fprintf(&b, "| %s | %s | – | – | – | – | – | not read |\n", n.name, s.Name)
				continue
			}
			var formats []string
			for f, k := range z.Formats {
				formats = append(formats, fmt.Sprintf("%s %s", f, num(k)))
			}
			slices.Sort(formats)
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", n.name, s.Name, num(z.Read), num(z.Unreadable),
				mmm(z.Width), mmm(z.Height), num(z.Is224), dash(strings.Join(formats, ", ")))
		}
	}
	for _, n := range all {
		for _, s := range n.rs.Splits {
			if s.Sizes != nil && s.Sizes.Unreadable > 0 {
				fmt.Fprintf(&b, "\n%s %s: first unreadable image: %s\n", n.name, s.Name, s.Sizes.FirstError)
			}
		}
	}

	b.WriteString("\n## Skipped rows\n\nRows of the split files that gave no label, by reason: a repeat of an earlier row, a path listed with different labels (all its rows), no image file, a train row whose image val keeps (disjoint splits).\n\n")
	b.WriteString("| root | file | rows | repeated | conflicting | no image | in val | labels kept |\n|---|---|--:|--:|--:|--:|--:|--:|\n")
	for i, r := range d.Roots {
		for _, f := range r.Files {
			if f.Absent {
				fmt.Fprintf(&b, "| %s | %s | no file: %s masked | | | | | |\n", names[i], f.File, f.Task)
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", names[i], f.File, num(f.Rows), num(f.Duplicates),
				num(f.ConflictRows), num(f.MissingImage), num(f.InVal), num(f.Labels))
		}
	}
	for _, n := range all {
		s := n.rs.Skipped
		fmt.Fprintf(&b, "\n%s: %s rows read, %s skipped (repeated %s, conflicting %s, no image %s, in val %s",
			n.name, num(s.Rows), num(s.Total()), num(s.Duplicates), num(s.ConflictRows), num(s.MissingImage), num(s.InVal))
		if n.rs == &d.Union {
			fmt.Fprintf(&b, ", train images in another root's val %s", num(s.CrossRoot))
		}
		b.WriteString(").\n")
	}
	return b.String()
}

// num writes n with thousands separators.
func num(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func dash0(n int) string {
	if n == 0 {
		return "·"
	}
	return num(n)
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

func mmm(m MinMed) string {
	return fmt.Sprintf("%d / %s / %d", m.Min, strconv.FormatFloat(m.Median, 'f', -1, 64), m.Max)
}
