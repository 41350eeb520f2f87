package models

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/models/spec"
)

// trainedContext returns an initialized Tiny context with a non-model int64 variable (like an
// optimizer's global step) and a non-trainable float variable, as a trainer leaves them.
func trainedContext(t *testing.T, seed int64) (*context.Context, spec.Config, [][]float32) {
	t.Helper()
	cfg := spec.Tiny()
	ctx := seededContext(seed)
	out := run(t, ctx, cfg, randomImages(9, 2, cfg.ImageSize), false)
	ctx.InAbsPath("/optimizers").Checked(false).VariableWithValue("global_step", int64(41)).SetTrainable(false)
	ctx.InAbsPath("/optimizers/adam").Checked(false).VariableWithValue("m", []float32{1, 2, 3})
	return ctx, cfg, out
}

func TestCheckpointRoundTrip(t *testing.T) {
	ctx, cfg, want := trainedContext(t, 11)
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := SaveCheckpoint(ctx, cfg, dir); err != nil {
		t.Fatal(err)
	}
	loaded, cfg2, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg2.JSON()) != string(cfg.JSON()) {
		t.Fatalf("config changed in the round trip:\n%s\nvs\n%s", cfg2.JSON(), cfg.JSON())
	}
	if loaded.NumVariables() != ctx.NumVariables() {
		t.Fatalf("loaded %d variables, saved %d", loaded.NumVariables(), ctx.NumVariables())
	}
	for v := range ctx.IterVariables() {
		lv := loaded.GetVariableByScopeAndName(v.Scope(), v.Name())
		if lv == nil {
			t.Fatalf("variable %s missing after load", v.ScopeAndName())
		}
		if lv.Trainable != v.Trainable || !lv.Shape().Equal(v.Shape()) {
			t.Errorf("variable %s: trainable %v shape %s, saved %v %s", v.ScopeAndName(), lv.Trainable, lv.Shape(), v.Trainable, v.Shape())
		}
	}
	step := loaded.GetVariableByScopeAndName("/optimizers", "global_step")
	if got := tensors.ToScalar[int64](step.MustValue()); got != 41 {
		t.Fatalf("global_step %d after load, want 41", got)
	}
	got := run(t, loaded.Reuse(), cfg2, randomImages(9, 2, cfg.ImageSize), false)
	for i := range want {
		if d := maxDiff(want[i], got[i]); d != 0 {
			t.Fatalf("output %d differs after the round trip by %g", i, d)
		}
	}
	if c := ParamCounts(loaded); c[PartTotal] == 0 || c[PartTotal] != ParamCounts(ctx)[PartTotal] {
		t.Fatalf("ParamCounts after load %v, before %v", c, ParamCounts(ctx))
	}

	// Saving again over the existing checkpoint replaces it.
	step.MustSetValue(tensors.FromScalar(int64(42)))
	if err := SaveCheckpoint(loaded, cfg2, dir); err != nil {
		t.Fatal(err)
	}
	again, _, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := tensors.ToScalar[int64](again.GetVariableByScopeAndName("/optimizers", "global_step").MustValue()); got != 42 {
		t.Fatalf("global_step %d after overwrite, want 42", got)
	}
	assertNoLeftovers(t, filepath.Dir(dir), "ckpt")
}

func assertNoLeftovers(t *testing.T, parent string, keep ...string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		ok := false
		for _, k := range keep {
			ok = ok || e.Name() == k
		}
		if !ok {
			t.Errorf("left behind in %s: %s", parent, e.Name())
		}
	}
}

func TestLoadCheckpointCorrupt(t *testing.T) {
	ctx, cfg, _ := trainedContext(t, 12)
	good := filepath.Join(t.TempDir(), "good")
	if err := SaveCheckpoint(ctx, cfg, good); err != nil {
		t.Fatal(err)
	}
	copyDir := func(t *testing.T) string {
		d := filepath.Join(t.TempDir(), "bad")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{ConfigFile, VariablesFile, DataFile} {
			b, err := os.ReadFile(filepath.Join(good, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	for _, tc := range []struct {
		name, file, want string
		corrupt          func(t *testing.T, d string)
	}{
		{"missing config", ConfigFile, "no such file", func(t *testing.T, d string) { os.Remove(filepath.Join(d, ConfigFile)) }},
		{"bad config JSON", ConfigFile, "model config", func(t *testing.T, d string) {
			editFile(t, d, ConfigFile, func(b []byte) []byte { return b[:len(b)/2] })
		}},
		{"invalid config", ConfigFile, "lstm_hidden", func(t *testing.T, d string) {
			editFile(t, d, ConfigFile, func(b []byte) []byte {
				return []byte(strings.Replace(string(b), `"lstm_hidden": 16`, `"lstm_hidden": -1`, 1))
			})
		}},
		{"missing index", VariablesFile, "no such file", func(t *testing.T, d string) { os.Remove(filepath.Join(d, VariablesFile)) }},
		{"bad index JSON", VariablesFile, "invalid character", func(t *testing.T, d string) {
			editFile(t, d, VariablesFile, func(b []byte) []byte { return append([]byte("x"), b...) })
		}},
		{"bad dtype", VariablesFile, "unsupported dtype", func(t *testing.T, d string) {
			editFile(t, d, VariablesFile, func(b []byte) []byte {
				return []byte(strings.Replace(string(b), `"Float32"`, `"Float99"`, 1))
			})
		}},
		{"config does not match the variables", VariablesFile, "encoder/lstm", func(t *testing.T, d string) {
			editFile(t, d, ConfigFile, func(b []byte) []byte {
				return []byte(strings.Replace(string(b), `"lstm_hidden": 16`, `"lstm_hidden": 8`, 1))
			})
		}},
		{"model variable missing", VariablesFile, "attention.v.weight", func(t *testing.T, d string) {
			// Rename the variable in the index: the data stays consistent, the model lacks it.
			editFile(t, d, VariablesFile, func(b []byte) []byte {
				return []byte(strings.Replace(string(b), `"scope": "/attention/v"`, `"scope": "/attention/u"`, 1))
			})
		}},
		{"missing data", DataFile, "no such file", func(t *testing.T, d string) { os.Remove(filepath.Join(d, DataFile)) }},
		{"truncated data", DataFile, "truncated", func(t *testing.T, d string) {
			editFile(t, d, DataFile, func(b []byte) []byte { return b[:len(b)-5] })
		}},
		{"flipped byte", DataFile, "checksum", func(t *testing.T, d string) {
			editFile(t, d, DataFile, func(b []byte) []byte { b[len(b)/3] ^= 0x40; return b })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyDir(t)
			tc.corrupt(t, d)
			var err error
			panicErr := catch(func() { _, _, err = LoadCheckpoint(d) })
			if panicErr != nil {
				t.Fatalf("LoadCheckpoint panicked: %v", panicErr)
			}
			if err == nil {
				t.Fatal("LoadCheckpoint accepted a corrupt checkpoint")
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, d) || !strings.Contains(msg, tc.file) || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q should be one line naming %s, %s and %q", msg, d, tc.file, tc.want)
			}
		})
	}
	if _, _, err := LoadCheckpoint(good); err != nil {
		t.Fatalf("the good checkpoint no longer loads: %v", err)
	}
}

func TestSaveCheckpointFailureKeepsOldCheckpoint(t *testing.T) {
	ctx, cfg, _ := trainedContext(t, 13)
	parent := t.TempDir()
	dir := filepath.Join(parent, "ckpt")
	if err := SaveCheckpoint(ctx, cfg, dir); err != nil {
		t.Fatal(err)
	}
	step := ctx.GetVariableByScopeAndName("/optimizers", "global_step")
	step.MustSetValue(tensors.FromScalar(int64(100)))
	defer func() { saveHook = nil }()
	for _, stage := range []string{"data", "config", "install"} {
		saveHook = func(s string) error {
			if s == stage {
				return errors.New("simulated failure")
			}
			return nil
		}
		err := SaveCheckpoint(ctx, cfg, dir)
		if err == nil || !strings.Contains(err.Error(), "simulated failure") {
			t.Fatalf("stage %s: SaveCheckpoint error %v, want the simulated failure", stage, err)
		}
		loaded, _, err := LoadCheckpoint(dir)
		if err != nil {
			t.Fatalf("stage %s: old checkpoint damaged: %v", stage, err)
		}
		if got := tensors.ToScalar[int64](loaded.GetVariableByScopeAndName("/optimizers", "global_step").MustValue()); got != 41 {
			t.Fatalf("stage %s: global_step %d, want the old 41", stage, got)
		}
		assertNoLeftovers(t, parent, "ckpt")
	}
	// A failure on a fresh path leaves nothing at all.
	fresh := filepath.Join(parent, "fresh")
	saveHook = func(s string) error { return errors.New("simulated failure") }
	if err := SaveCheckpoint(ctx, cfg, fresh); err == nil {
		t.Fatal("SaveCheckpoint ignored the failure")
	}
	saveHook = nil
	assertNoLeftovers(t, parent, "ckpt")
}

func TestSaveCheckpointRefusesForeignDir(t *testing.T) {
	ctx, cfg, _ := trainedContext(t, 14)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := SaveCheckpoint(ctx, cfg, dir)
	if err == nil || !strings.Contains(err.Error(), "not an artnet checkpoint") {
		t.Fatalf("SaveCheckpoint over a foreign directory: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "notes.txt")); err != nil || string(b) != "mine" {
		t.Fatal("foreign directory was modified")
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if err := SaveCheckpoint(ctx, cfg, file); err == nil {
		t.Fatal("SaveCheckpoint replaced a regular file")
	}
	// Uninitialized variables are an error, not a panic.
	fresh := context.New()
	fresh.VariableWithShape("w", tensors.FromScalar(float32(0)).Shape())
	if err := SaveCheckpoint(fresh, cfg, filepath.Join(t.TempDir(), "x")); err == nil || !strings.Contains(err.Error(), "/w") {
		t.Fatalf("saving an uninitialized variable: %v", err)
	}
}

// TestCheckpointOfAnotherModel: a checkpoint without any DeepArtNet variable (a trainer's
// stand-in model) round-trips without the model-variable check.
func TestCheckpointOfAnotherModel(t *testing.T) {
	ctx := context.New()
	ctx.In("hidden").VariableWithValue("weights", []float32{1, 2})
	ctx.InAbsPath("/optimizers").Checked(false).VariableWithValue("global_step", int64(3))
	dir := filepath.Join(t.TempDir(), "c")
	if err := SaveCheckpoint(ctx, spec.Tiny(), dir); err != nil {
		t.Fatal(err)
	}
	loaded, _, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := tensors.MustCopyFlatData[float32](loaded.GetVariableByScopeAndName("/hidden", "weights").MustValue()); got[1] != 2 {
		t.Fatalf("weights %v", got)
	}
}

// editFile replaces the file d/file with fn of its contents.
func editFile(t *testing.T, d, file string, fn func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(d, file)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, fn(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The save path reads no environment: the variable crash tests once set to slow every save
// (ARTNET_TEST_SAVE_DELAY) has no effect on a normal build.
func TestSaveCheckpointReadsNoEnvironment(t *testing.T) {
	ctx, cfg, _ := trainedContext(t, 15)
	t.Setenv("ARTNET_TEST_SAVE_DELAY", "1h")
	done := make(chan error, 1)
	go func() { done <- SaveCheckpoint(ctx, cfg, filepath.Join(t.TempDir(), "ckpt")) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("SaveCheckpoint still running after 2 minutes with ARTNET_TEST_SAVE_DELAY=1h: the save path reads the environment")
	}
}

// The options a checkpoint was trained with are its options.json, covered by checksums.json and
// read without loading the variables; an edited one is refused naming it, and a checkpoint
// saved without options has none.
func TestCheckpointOptionsFile(t *testing.T) {
	ctx, cfg, _ := trainedContext(t, 17)
	dir := filepath.Join(t.TempDir(), "ckpt")
	opts := []byte(`{"phase":{"name":"2","lr":0.0005}}`)
	if err := SaveCheckpointWithOptions(ctx, cfg, dir, opts); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCheckpointOptions(dir)
	if err != nil || string(got) != string(opts) {
		t.Fatalf("options %q, %v; want %q", got, err, opts)
	}
	if _, _, err := LoadCheckpoint(dir); err != nil {
		t.Fatalf("a checkpoint with options does not load: %v", err)
	}
	if loaded, _, _ := LoadCheckpoint(dir); loaded.GetVariableByScopeAndName("/train", "options") != nil {
		t.Error("the options are still a variable of the checkpoint")
	}
	if err := os.WriteFile(filepath.Join(dir, OptionsFile), []byte(`{"phase":{"name":"2","lr":0.5}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCheckpointOptions(dir); err == nil || !strings.Contains(err.Error(), OptionsFile) {
		t.Errorf("edited options.json: %v, want an error naming it", err)
	}
	plain := filepath.Join(t.TempDir(), "plain")
	if err := SaveCheckpoint(ctx, cfg, plain); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadCheckpointOptions(plain); got != nil || err != nil {
		t.Errorf("checkpoint without options: %q, %v", got, err)
	}
	if err := SaveCheckpointWithOptions(ctx, cfg, plain, []byte("{not json")); err == nil || !strings.Contains(err.Error(), OptionsFile) {
		t.Errorf("invalid options JSON: %v", err)
	}
}
