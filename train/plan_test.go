package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadRepoConfig(t *testing.T) *FileConfig {
	t.Helper()
	fc, err := LoadFileConfig("../configs/train.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return fc
}

// --set path=value changes exactly the named field of the merged configuration.
func TestSetOverrides(t *testing.T) {
	fc := loadRepoConfig(t)
	want := *loadRepoConfig(t)
	want.Phases = append([]PhaseConfig(nil), want.Phases...)
	if len(fc.Phases) < 2 {
		t.Fatalf("configs/train.yaml has %d phases; the test wants two", len(fc.Phases))
	}
	second := fc.Phases[1].Name
	err := fc.Set("train.weight_decay=0.5", "phases."+second+".lr=1e-4", "phases.*.batch=8",
		"data.balanced=[genre]", "data.cache_mem=3GiB", "model.variant=b2")
	if err != nil {
		t.Fatal(err)
	}
	want.Train.WeightDecay = 0.5
	want.Phases[1].LR = 1e-4
	for i := range want.Phases {
		want.Phases[i].Batch = 8
	}
	want.Data.Balanced = []string{"genre"}
	want.Data.CacheMem = "3GiB"
	if fc.Train != want.Train || fc.Data.CacheMem != want.Data.CacheMem || strings.Join(fc.Data.Balanced, ",") != "genre" {
		t.Errorf("train %+v data %+v, want %+v %+v", fc.Train, fc.Data, want.Train, want.Data)
	}
	for i, p := range fc.Phases {
		w := want.Phases[i]
		if p.Name != w.Name || p.LR != w.LR || p.Batch != w.Batch || p.Epochs != w.Epochs {
			t.Errorf("phase %s: %+v, want %+v", p.Name, p, w)
		}
	}
	if cfg, err := fc.ModelConfig(); err != nil || cfg.Variant != "b2" {
		t.Errorf("model.variant: %q (%v)", cfg.Variant, err)
	}
}

// A bad override is one line naming it, and leaves the configuration as it was.
func TestSetRefusesBadOverrides(t *testing.T) {
	cases := [][2]string{ // override, what the error names
		{"train.weight_decayy=1", "train.weight_decayy"}, {"phases.9.lr=1", "phases.9"},
		{"train.seed=abc", "train.seed"}, {"phases.*.lr=-1", "lr"}, {"no-equals", "no-equals"},
		{"phases.1=3", "phases.1"},
	}
	for _, c := range cases {
		set, want := c[0], c[1]
		fc := loadRepoConfig(t)
		before := fc.Train
		err := fc.Set(set)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("--set %s: want a one-line error naming %q, got %v", set, want, err)
		}
		if fc.Train != before {
			t.Errorf("--set %s: configuration changed by a refused override", set)
		}
	}
}

// Plan: --data given several times makes the first the root and the others data.extra; typed
// overrides reach the selected phases only; an unknown phase is refused naming the flag.
func TestPlanDataRootsAndOverrides(t *testing.T) {
	fc := loadRepoConfig(t)
	first, second := fc.Phases[0].Name, fc.Phases[1].Name
	lr := 0.125
	o, err := Plan(Request{ConfigFile: "../configs/train.yaml", DefaultOut: t.TempDir(), Phase: second,
		Data: []string{"/data/a", "/data/b", "/data/c"}, Overrides: Overrides{LR: &lr},
		Set: []string{"train.weight_decay=0.25"}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Config.Data.Root != "/data/a" || strings.Join(o.Config.Data.Extra, ",") != "/data/b,/data/c" || o.Config.Data.Images != "" {
		t.Errorf("data: root %q extra %q images %q", o.Config.Data.Root, o.Config.Data.Extra, o.Config.Data.Images)
	}
	if p, _ := o.Config.Phase(second); p.LR != lr {
		t.Errorf("phase %s lr %g, want %g", second, p.LR, lr)
	}
	if p, _ := o.Config.Phase(first); p.LR == lr {
		t.Errorf("phase %s (not selected) got the --lr override", first)
	}
	if o.Config.Train.WeightDecay != 0.25 || len(o.Phases) != 1 || o.Phases[0] != second {
		t.Errorf("weight decay %g phases %v", o.Config.Train.WeightDecay, o.Phases)
	}
	if _, err := Plan(Request{ConfigFile: "../configs/train.yaml", Phase: "nine"}); err == nil || !strings.Contains(err.Error(), "--phase") {
		t.Errorf("unknown phase: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "none.pth")
	p := missing
	if _, err := Plan(Request{ConfigFile: "../configs/train.yaml", Overrides: Overrides{Pretrained: &p}}); err == nil || !strings.Contains(err.Error(), "none.pth") {
		t.Errorf("missing pretrained file: %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatal(err)
	}
}
