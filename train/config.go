package train

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"
	"gopkg.in/yaml.v3"

	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
)

// FileConfig is a training configuration file (YAML), e.g. configs/base.yaml:
//
//	base: other.yaml        # optional: read that file first (relative to this one), then merge this one over it
//	model:                  # preset (default|tiny) then spec.Config fields by their JSON names
//	  preset: default
//	  variant: b0
//	data: {root: data/wikiart, cache_mem: 1GiB, jitter: 0.2, balanced: [style]}
//	train: {seed: 1, weight_decay: 0.01, warmup_epochs: 1, clip_norm: 5, pretrained: efficientnet_b0_rwightman-7f5810bc.pth}
//	phases:
//	  - {name: "1", epochs: 20, batch: 64, lr: 1.0e-3, freeze: [/encoder, /attention]}
//	  - {name: "2", epochs: 30, batch: 32, lr: 5.0e-4, init_from: out/other/phase1/best}
//
// Maps merge key by key over the base; lists (phases, freeze, balanced) replace the base's.
type FileConfig struct {
	Model  map[string]any `yaml:"model" json:"model"`
	Data   DataConfig     `yaml:"data" json:"data"`
	Train  TrainConfig    `yaml:"train" json:"train"`
	Phases []PhaseConfig  `yaml:"phases" json:"phases"`
}

// DataConfig says where the WikiArt data is and how it is augmented and sampled.
type DataConfig struct {
	Root      string   `yaml:"root" json:"root"`                       // the folder with the split CSVs (relative paths: to the working directory); --data and $ARTNET_DATA override it (wikiart.ResolveRoot)
	Images    string   `yaml:"images" json:"images,omitempty"`         // image root ("" → Root/images)
	Extra     []string `yaml:"extra" json:"extra,omitempty"`           // more data roots (folders with images/ and any of the split CSVs; tasks without CSVs are masked); --data given twice or more sets them
	Strict    bool     `yaml:"strict" json:"strict"`                   // refuse rows whose image is missing
	Disjoint  *bool    `yaml:"disjoint" json:"disjoint,omitempty"`     // drop train paths that val keeps (default true)
	CacheSize int      `yaml:"cache_size" json:"cache_size,omitempty"` // deprecated, ignored (images are cropped at their own size; see cache_mem)
	CacheMem  string   `yaml:"cache_mem" json:"cache_mem,omitempty"`   // decoded-image cache budget, e.g. 2GiB (""/0: no cache); --cache-mem overrides
	MinScale  float64  `yaml:"min_scale" json:"min_scale"`             // random resized crop's smallest area fraction (0 → 0.35)
	Jitter    float64  `yaml:"jitter" json:"jitter"`                   // colour jitter strength
	Balanced  []string `yaml:"balanced" json:"balanced,omitempty"`     // tasks whose classes are sampled balanced (at most one)
	Workers   int      `yaml:"workers" json:"workers,omitempty"`       // decoding goroutines (0 → GOMAXPROCS)

	// The recipe's augmentations (timm's names); each off by default.
	Augment       string  `yaml:"augment" json:"augment,omitempty"`                 // "" (none), trivial (TrivialAugmentWide) or randaugment (2 ops, magnitude 9): on the 8-bit crop before normalization
	RandomErasing float64 `yaml:"random_erasing" json:"random_erasing,omitempty"`   // probability of erasing one rectangle (2–33% of the image) with per-pixel N(0,1) noise, after normalization
	Mixup         float64 `yaml:"mixup" json:"mixup,omitempty"`                     // mixup's Beta(α, α) α (0: off)
	CutMix        float64 `yaml:"cutmix" json:"cutmix,omitempty"`                   // CutMix's Beta(α, α) α (0: off)
	MixProb       float64 `yaml:"mix_prob" json:"mix_prob,omitempty"`               // probability that a batch is mixed at all (0 → 1)
	MixSwitchProb float64 `yaml:"mix_switch_prob" json:"mix_switch_prob,omitempty"` // with both on, probability of CutMix rather than mixup for a batch (0 → 0.5)
}

// CacheBytes is cache_mem in bytes (0 when empty).
func (d DataConfig) CacheBytes() (int64, error) { return ParseBytes("data.cache_mem", d.CacheMem) }

// ParseBytes reads a memory size such as 512MiB, 2GB or 1073741824 ("" and "0" are 0); the
// error names the field.
func ParseBytes(field, s string) (int64, error) {
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	n, err := humanize.ParseBytes(s)
	if err != nil || n > math.MaxInt64 {
		return 0, fmt.Errorf("field %s: %q is not a size like 512MiB or 2GB", field, s)
	}
	return int64(n), nil
}

// TrainConfig holds what the phases share.
type TrainConfig struct {
	Seed         int64   `yaml:"seed" json:"seed"`
	WeightDecay  float64 `yaml:"weight_decay" json:"weight_decay"`
	WarmupEpochs float64 `yaml:"warmup_epochs" json:"warmup_epochs"`
	MinLRFactor  float64 `yaml:"min_lr_factor" json:"min_lr_factor"` // cosine floor as a fraction of each phase's lr
	ClipNorm     float64 `yaml:"clip_norm" json:"clip_norm"`
	Keep         int     `yaml:"keep" json:"keep"` // checkpoints kept per phase
	Backend      string  `yaml:"backend" json:"backend,omitempty"`
	EvalBatch    int     `yaml:"eval_batch" json:"eval_batch,omitempty"` // batch of the final evaluation (results.json); 0 → 32
	// Pretrained is the PyTorch weights file (safetensors or .pth/.pt; a whole DeepArtNet or an
	// ImageNet-pretrained backbone, see models.ImportWeights) a phase starts from when it has no
	// earlier phase in the output folder to continue (phase 1, or a phase trained alone).
	// Relative paths are relative to the working directory, like data.root.
	Pretrained string `yaml:"pretrained" json:"pretrained,omitempty"`
	// AllowPartial accepts a Pretrained (or init_from) weights file that lacks model tensors or
	// holds extra ones, as `artnet import --allow-partial`.
	AllowPartial bool `yaml:"allow_partial" json:"allow_partial,omitempty"`

	// The recipe's training options; each off by default.
	LabelSmoothing float64 `yaml:"label_smoothing" json:"label_smoothing,omitempty"` // ε: targets (1−ε)·one-hot + ε/N per task
	EMADecay       float64 `yaml:"ema_decay" json:"ema_decay,omitempty"`             // exponential moving average of the weights (e.g. 0.999; 0: off), evaluated and saved as phase<N>/ema
	AccumSteps     int     `yaml:"accum_steps" json:"accum_steps,omitempty"`         // split each phase batch into this many micro-batches, one update (0/1: off)
	Precision      string  `yaml:"precision" json:"precision,omitempty"`             // "" or float32; bf16 (XLA backend only)
}

// PhaseConfig is one training phase.
type PhaseConfig struct {
	Name   string   `yaml:"name" json:"name"`
	Epochs float64  `yaml:"epochs" json:"epochs"` // may be fractional (a shortened run)
	Batch  int      `yaml:"batch" json:"batch"`
	LR     float64  `yaml:"lr" json:"lr"`
	Freeze []string `yaml:"freeze" json:"freeze,omitempty"` // variable scope prefixes, e.g. /encoder, /backbone/features/0
	// InitFrom, when set, is what this phase starts from instead of the previous phase's best
	// checkpoint: a checkpoint directory or a PyTorch weights file (see Options.InitFrom).
	InitFrom string `yaml:"init_from" json:"init_from,omitempty"`
}

// LoadFileConfig reads a YAML training configuration (following base: links). Errors name the
// file and, where they can, the field.
func LoadFileConfig(path string) (*FileConfig, error) {
	m, err := readMerged(path, 0)
	if err != nil {
		return nil, err
	}
	delete(m, "base")
	b, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var fc FileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("%s: %s", path, errtext.OneLine(err))
	}
	if err := fc.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &fc, nil
}

func readMerged(path string, depth int) (map[string]any, error) {
	if depth > 8 {
		return nil, fmt.Errorf("%s: base: too many levels", path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("training config: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %s", path, errtext.OneLine(err))
	}
	if m == nil {
		m = map[string]any{}
	}
	base, ok := m["base"]
	if !ok {
		return m, nil
	}
	bs, ok := base.(string)
	if !ok || bs == "" {
		return nil, fmt.Errorf("%s: field base: want a file name", path)
	}
	if !filepath.IsAbs(bs) {
		bs = filepath.Join(filepath.Dir(path), bs)
	}
	bm, err := readMerged(bs, depth+1)
	if err != nil {
		return nil, fmt.Errorf("%s: field base: %w", path, err)
	}
	delete(bm, "base")
	return mergeMaps(bm, m), nil
}

// mergeMaps returns over merged onto base: nested maps merge, anything else replaces.
func mergeMaps(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if om, ok := v.(map[string]any); ok {
			if bm, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

func (fc *FileConfig) validate() error {
	var errs []error
	if len(fc.Phases) == 0 {
		errs = append(errs, errors.New("field phases: at least one phase is needed"))
	}
	seen := map[string]bool{}
	for i, p := range fc.Phases {
		where := fmt.Sprintf("phases[%d]", i)
		if p.Name == "" {
			errs = append(errs, fmt.Errorf("field %s.name: empty", where))
		} else if seen[p.Name] || strings.ContainsAny(p.Name, "/\\ ") {
			errs = append(errs, fmt.Errorf("field %s.name: %q is repeated or not a plain name", where, p.Name))
		}
		seen[p.Name] = true
		if !(p.Epochs > 0) {
			errs = append(errs, fmt.Errorf("field %s.epochs: must be > 0, got %g", where, p.Epochs))
		}
		if p.Batch <= 0 {
			errs = append(errs, fmt.Errorf("field %s.batch: must be > 0, got %d", where, p.Batch))
		}
		if !(p.LR > 0) {
			errs = append(errs, fmt.Errorf("field %s.lr: must be > 0, got %g", where, p.LR))
		}
		for _, f := range p.Freeze {
			if !strings.HasPrefix(f, "/") || !isModelVariable(f) {
				errs = append(errs, fmt.Errorf("field %s.freeze: %q is not a model scope (/backbone/..., /encoder, /attention, /heads/..., /uncertainty)", where, f))
			}
		}
	}
	if len(fc.Data.Balanced) > 1 {
		errs = append(errs, fmt.Errorf("field data.balanced: at most one task, got %v", fc.Data.Balanced))
	}
	for _, t := range fc.Data.Balanced {
		if taskIndex(t) < 0 {
			errs = append(errs, fmt.Errorf("field data.balanced: unknown task %q (want one of %v)", t, spec.Tasks))
		}
	}
	if _, err := fc.Data.CacheBytes(); err != nil {
		errs = append(errs, err)
	}
	if fc.Data.Jitter < 0 || fc.Data.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("field data.jitter: must be in [0,1), got %g", fc.Data.Jitter))
	}
	if fc.Train.WarmupEpochs < 0 || fc.Train.ClipNorm < 0 || fc.Train.WeightDecay < 0 || fc.Train.MinLRFactor < 0 || fc.Train.MinLRFactor > 1 {
		errs = append(errs, errors.New("fields train.warmup_epochs, clip_norm, weight_decay: must be ≥ 0; min_lr_factor in [0,1]"))
	}
	errs = append(errs, fc.validateRecipe()...)
	if cfg, err := fc.ModelConfig(); err != nil {
		errs = append(errs, err)
	} else if err := cfg.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("field model: %s", errtext.OneLine(err)))
	}
	return errors.Join(errs...)
}

func taskIndex(t string) int {
	for k, name := range spec.Tasks {
		if name == t {
			return k
		}
	}
	return -1
}

// ModelConfig is the model section: the preset (default: spec.Default(); tiny: spec.Tiny())
// with the given spec.Config fields over it. Classes are left to the data.
func (fc *FileConfig) ModelConfig() (spec.Config, error) {
	m := map[string]any{}
	for k, v := range fc.Model {
		m[k] = v
	}
	cfg := spec.Default()
	if p, ok := m["preset"]; ok {
		switch p {
		case "default":
		case "tiny":
			cfg = spec.Tiny()
		default:
			return cfg, fmt.Errorf("field model.preset: %v: want default or tiny", p)
		}
		delete(m, "preset")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return cfg, fmt.Errorf("field model: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("field model: %w", err)
	}
	return cfg, nil
}

// StartFrom is the Options.InitFrom of a phase: its own init_from, else previous (the
// checkpoint of the phase before it in this output folder, "" when there is none), else
// train.pretrained ("" when unset: fresh initialisation).
func (fc *FileConfig) StartFrom(ph PhaseConfig, previous string) string {
	switch {
	case ph.InitFrom != "":
		return ph.InitFrom
	case previous != "":
		return previous
	}
	return fc.Train.Pretrained
}

// Phase returns the phase with that name.
func (fc *FileConfig) Phase(name string) (PhaseConfig, bool) {
	for _, p := range fc.Phases {
		if p.Name == name {
			return p, true
		}
	}
	return PhaseConfig{}, false
}
