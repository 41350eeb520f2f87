package wikiart

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
)

// Integration: the report of the full WikiArt folder and the style-only extra root equals the
// test's own counts from their CSVs and files (per root, split and task, and the union); image
// sizes are checked on every 25th image, decoded in full.
func TestRealStatsBothRoots(t *testing.T) {
	root, extra := testenv.WikiArt(t), testenv.WikiArtExtra(t)
	roots, err := LoadRoots([]Options{{Root: root, Disjoint: true}, {Root: extra, Disjoint: true}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Stats(context.Background(), roots, StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	es := []expected{
		expectRoot(t, root, filepath.Join(root, "images"), true, false),
		expectRoot(t, extra, filepath.Join(extra, "images"), true, false),
	}
	for i, rs := range d.Roots {
		for si := range SplitNames {
			checkSplit(t, fmt.Sprintf("%s %s", rs.Root, SplitNames[si]), rs.Splits[si], si, roots.Classes, es[i])
		}
		if sk := rs.Skipped; sk.Rows != es[i].rows || sk.MissingImage != es[i].missing || sk.InVal != es[i].inVal {
			t.Errorf("%s: skipped %+v; test counts %d rows, %d without image, %d in val", rs.Root, sk, es[i].rows, es[i].missing, es[i].inVal)
		}
	}
	for si := range SplitNames {
		checkSplit(t, "union "+SplitNames[si], d.Union.Splits[si], si, roots.Classes, es...)
	}
	if d.CrossRoot != 0 {
		t.Errorf("%d train images of one root in another's val; the extra root's README says none is shared", d.CrossRoot)
	}
	if got := d.Roots[1].MissingTasks; len(got) != 2 {
		t.Errorf("extra root: tasks without files %v, want genre and artist", got)
	}
	for si, s := range []*Split{roots.Train, roots.Val} {
		z := d.Union.Splits[si].Sizes
		if z == nil || z.Read+z.Unreadable != len(s.Samples) || z.Is224 > z.Read {
			t.Fatalf("union %s: sizes %+v for %d images", s.Name, z, len(s.Samples))
		}
		checked, is224 := 0, 0
		for k := 0; k < len(s.Samples); k += 25 {
			f, err := os.Open(s.Samples[k].File(roots.Reports[0].Images))
			if err != nil {
				t.Fatal(err)
			}
			m, _, err := image.Decode(f)
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", s.Samples[k].Path, err)
			}
			w, h := m.Bounds().Dx(), m.Bounds().Dy()
			if w < z.Width.Min || w > z.Width.Max || h < z.Height.Min || h > z.Height.Max {
				t.Errorf("%s: %d×%d outside the report's width %+v, height %+v", s.Samples[k].Path, w, h, z.Width, z.Height)
			}
			checked++
			if w == 224 && h == 224 {
				is224++
			}
		}
		if is224 < checked && z.Is224 == z.Read {
			t.Errorf("union %s: %d of %d decoded images are not 224×224, yet the report says all %d are", s.Name, checked-is224, checked, z.Read)
		}
		t.Logf("%s: %d images (%d 224×224), width %+v, height %+v; %d decoded by the test", s.Name, z.Read, z.Is224, z.Width, z.Height, checked)
	}
}
