package datadl

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
)

// The repository's data/wikiart holds the nine ArtGAN split files byte-for-byte: each has the
// size and sha256 that `artnet data download` expects, so a download into data/wikiart keeps
// them and only adds the images.
func TestRepositorySplitFiles(t *testing.T) {
	data := testenv.Data(t)
	for _, s := range SplitFiles {
		p := filepath.Join(data, s.Name)
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if err := verify(p, st.Size(), s.Expect); err != nil {
			t.Errorf("%v", err)
		}
	}
}
