package train

import (
	"os"
	"path/filepath"
	"strings"
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

// TestRecipeConfigFields: the recipe's fields default to off, load when valid, and a bad value
// is a one-line error naming its field.
func TestRecipeConfigFields(t *testing.T) {
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte("model: {preset: tiny}\ndata: {root: x"+body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const phases = "\nphases: [{name: a, epochs: 1, batch: 32, lr: 0.1}]\n"
	fc, err := LoadFileConfig(write("}" + phases))
	if err != nil {
		t.Fatal(err)
	}
	if fc.Data.Augment != "" || fc.Data.Mixup != 0 || fc.Data.CutMix != 0 || fc.Data.RandomErasing != 0 ||
		fc.Train.LabelSmoothing != 0 || fc.Train.EMADecay != 0 || fc.Train.AccumSteps != 0 || fc.Train.Precision != "" {
		t.Errorf("recipe defaults not off: %+v %+v", fc.Data, fc.Train)
	}
	fc, err = LoadFileConfig(write(", augment: trivial, random_erasing: 0.25, mixup: 0.2, cutmix: 1, mix_prob: 0.5, mix_switch_prob: 0.3}\n" +
		"train: {label_smoothing: 0.1, ema_decay: 0.999, accum_steps: 4, precision: bf16}" + phases))
	if err != nil {
		t.Fatal(err)
	}
	if fc.Data.Augment != AugmentTrivial || fc.Data.CutMix != 1 || fc.Train.AccumSteps != 4 || fc.Train.Precision != PrecisionBF16 {
		t.Errorf("recipe fields not read: %+v %+v", fc.Data, fc.Train)
	}
	for field, body := range map[string]string{
		"data.augment":          ", augment: autoaugment}",
		"data.random_erasing":   ", random_erasing: 1.5}",
		"data.mixup":            ", mixup: -1}",
		"data.mix_prob":         ", mix_prob: 2}",
		"train.label_smoothing": "}\ntrain: {label_smoothing: -0.1}",
		"train.ema_decay":       "}\ntrain: {ema_decay: 1}",
		"train.accum_steps":     "}\ntrain: {accum_steps: 3}",
		"train.precision":       "}\ntrain: {precision: fp16}",
	} {
		_, err := LoadFileConfig(write(body + phases))
		if err == nil || !strings.Contains(err.Error(), "field "+field) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line naming the field", field, err)
		}
	}
}
