package spec

import (
	"strings"
	"testing"
)

// FromMetadata checks every readable key against the embedded config: a key that was written
// but disagrees (or is gone) is an error naming it, never a model run with the wrong values.
func TestFromMetadataChecksEveryKey(t *testing.T) {
	cfg := Tiny()
	if _, err := FromMetadata(cfg.Metadata()); err != nil {
		t.Fatalf("the config's own metadata: %v", err)
	}
	h, w := cfg.Grid()
	cases := map[string]string{
		MetaVariant:               "b4",
		MetaInputSize:             "65x65",
		MetaMean:                  "0.5,0.5,0.5",
		MetaStd:                   "0.229,0.224,0.226",
		MetaResize:                "shorter_side=80;center_crop=64x64;interp=bilinear",
		MetaTokensGrid:            "9x9", // the runtime once sized attention from it
		MetaClassPrefix + "genre": `["a","b","c","d","e","f","g","h","i","j"]`,
	}
	if got := cfg.Metadata()[MetaTokensGrid]; got == "9x9" || h*w == 81 {
		t.Fatalf("test needs a grid other than 9x9, config has %s", got)
	}
	for key, v := range cases {
		m := cfg.Metadata()
		m[key] = v
		if _, err := FromMetadata(m); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s = %q: want an error naming the key, got %v", key, v, err)
		}
		delete(m, key)
		if _, err := FromMetadata(m); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s missing: want an error naming the key, got %v", key, err)
		}
	}
}
