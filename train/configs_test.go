package train

import (
	"path/filepath"
	"testing"
)

// TestRepositoryConfigs: every configuration in configs/ loads (base: chains included),
// validates and gives a valid model configuration — a broken shipped config fails here, not
// an hour into a run.
func TestRepositoryConfigs(t *testing.T) {
	files, err := filepath.Glob("../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs/*.yaml found (%v)", err)
	}
	for _, f := range files {
		fc, err := LoadFileConfig(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(fc.Phases) == 0 {
			t.Errorf("%s: no phases", f)
		}
		cfg, err := fc.ModelConfig()
		if err != nil {
			t.Errorf("%s: model: %v", f, err)
			continue
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: model config: %v", f, err)
		}
		if _, err := fc.Data.CacheBytes(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
