// Package spec is the description of a DeepArtNet model that every part of artnet shares:
// the hyperparameters that rebuild the network, the class names of the three tasks, the
// preprocessing contract (input size, resize policy, mean/std), and how all of that is written
// into an ONNX file's metadata_props and read back. It has no GoMLX or ONNX Runtime
// dependency, so the lean serving binary can use it.
package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Version is artnet's version, written into checkpoints and exported models.
const Version = "0.1.0"

// The three classification tasks.
const (
	TaskStyle  = "style"
	TaskGenre  = "genre"
	TaskArtist = "artist"
)

// Tasks are the three classification tasks, in the order of the model's outputs.
var Tasks = []string{TaskStyle, TaskGenre, TaskArtist}

// Default class counts of the WikiArt/ArtGAN splits.
const (
	NumStyles  = 27
	NumGenres  = 10
	NumArtists = 23
)

// ImageNet normalization.
var (
	ImageNetMean = [3]float32{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// Config holds every hyperparameter needed to rebuild a DeepArtNet, plus its class names and
// preprocessing. It is saved (as JSON) with every checkpoint and into every exported model.
type Config struct {
	// Variant is the EfficientNet variant ("b0".."b4") whose width/depth multipliers are used
	// unless WidthMult/DepthMult are set (non-zero).
	Variant   string  `json:"variant"`
	WidthMult float64 `json:"width_mult,omitempty"`
	DepthMult float64 `json:"depth_mult,omitempty"`
	// Stages keeps only the first Stages MBConv stages of the backbone (1..7); 0 means all 7.
	// Small configurations for tests and CPU training use it.
	Stages int `json:"stages,omitempty"`
	// HeadChannels is the channel count of the backbone's final 1×1 conv (features.8);
	// 0 means torchvision's 4 × (last stage's channels).
	HeadChannels int `json:"head_channels,omitempty"`

	ImageSize  int     `json:"image_size"`  // square input H = W
	ResizeSize int     `json:"resize_size"` // shorter side is resized to this, then centre-cropped to ImageSize
	ProjDim    int     `json:"proj_dim"`    // 1×1 projection channels (512)
	LSTMHidden int     `json:"lstm_hidden"` // per direction (256)
	LSTMLayers int     `json:"lstm_layers"` // (2)
	AttnDim    int     `json:"attn_dim"`    // (256)
	HeadHidden int     `json:"head_hidden"` // (256)
	Dropout    float64 `json:"dropout"`     // head dropout (0.4)
	DropPath   float64 `json:"drop_path"`   // stochastic depth probability at the last block (0.2)

	Mean [3]float32 `json:"mean"`
	Std  [3]float32 `json:"std"`

	// Classes maps task name → class names; len gives the head's output size.
	Classes map[string][]string `json:"classes"`

	// Temperature, per task, is the softmax temperature an ONNX model's outputs were calibrated
	// with (package calibrate: softmax(logits/T) inside the graph); absent means 1. Written by
	// `artnet calibrate`, informative: the graph applies it, nothing reads it to compute.
	Temperature map[string]float64 `json:"temperature,omitempty"`
}

// VariantParams are torchvision's EfficientNet scaling parameters.
type VariantParams struct {
	Width, Depth float64
	Resolution   int
	DropPath     float64
}

// Variants lists torchvision 0.14's efficientnet_b0..b4 parameters (width, depth, resolution,
// stochastic depth probability).
var Variants = map[string]VariantParams{
	"b0": {1.0, 1.0, 224, 0.2},
	"b1": {1.0, 1.1, 240, 0.2},
	"b2": {1.1, 1.2, 288, 0.3},
	"b3": {1.2, 1.4, 300, 0.3},
	"b4": {1.4, 1.8, 380, 0.4},
}

// Default returns the spec's full configuration: B4 at 224×224 with placeholder class names.
func Default() Config {
	c := Config{
		Variant: "b4", ImageSize: 224, ResizeSize: 256,
		ProjDim: 512, LSTMHidden: 256, LSTMLayers: 2, AttnDim: 256, HeadHidden: 256,
		Dropout: 0.4, DropPath: 0.2,
		Mean: ImageNetMean, Std: ImageNetStd,
		Classes: map[string][]string{
			"style":  Numbered("style", NumStyles),
			"genre":  Numbered("genre", NumGenres),
			"artist": Numbered("artist", NumArtists),
		},
	}
	return c
}

// Numbered makes n placeholder class names prefix_0 … prefix_{n-1}.
func Numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s_%d", prefix, i)
	}
	return out
}

// Width returns the width multiplier in effect.
func (c Config) Width() float64 {
	if c.WidthMult > 0 {
		return c.WidthMult
	}
	return Variants[c.Variant].Width
}

// Depth returns the depth multiplier in effect.
func (c Config) Depth() float64 {
	if c.DepthMult > 0 {
		return c.DepthMult
	}
	return Variants[c.Variant].Depth
}

// NumStages returns how many MBConv stages the backbone has (1..7).
func (c Config) NumStages() int {
	if c.Stages <= 0 || c.Stages > 7 {
		return 7
	}
	return c.Stages
}

// StageStrides are the strides of torchvision EfficientNet's 7 MBConv stages.
var StageStrides = [7]int{1, 2, 2, 2, 1, 2, 1}

// Stride returns the backbone's total downsampling factor (32 for the full network).
func (c Config) Stride() int {
	s := 2 // stem
	for i := 0; i < c.NumStages(); i++ {
		s *= StageStrides[i]
	}
	return s
}

// Grid returns the backbone output grid H'×W' (token count = H'·W'). Convolutions use
// symmetric padding (k-1)/2, so each stride-2 step maps n → ceil(n/2).
func (c Config) Grid() (h, w int) {
	n := c.ImageSize
	n = (n + 1) / 2 // stem
	for i := 0; i < c.NumStages(); i++ {
		if StageStrides[i] == 2 {
			n = (n + 1) / 2
		}
	}
	return n, n
}

// Tokens returns the number of sequence tokens (H'·W').
func (c Config) Tokens() int { h, w := c.Grid(); return h * w }

// NumClasses returns the class count of a task.
func (c Config) NumClasses(task string) int { return len(c.Classes[task]) }

// Validate checks that the configuration can build a model; the error names the field.
func (c Config) Validate() error {
	var errs []error
	if _, ok := Variants[c.Variant]; !ok && (c.WidthMult <= 0 || c.DepthMult <= 0) {
		errs = append(errs, fmt.Errorf("config field variant: unknown %q (want b0..b4, or set width_mult and depth_mult)", c.Variant))
	}
	pos := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("config field %s: must be > 0, got %d", name, v))
		}
	}
	pos("image_size", c.ImageSize)
	pos("resize_size", c.ResizeSize)
	pos("proj_dim", c.ProjDim)
	pos("lstm_hidden", c.LSTMHidden)
	pos("lstm_layers", c.LSTMLayers)
	pos("attn_dim", c.AttnDim)
	pos("head_hidden", c.HeadHidden)
	if c.ResizeSize > 0 && c.ImageSize > c.ResizeSize {
		errs = append(errs, fmt.Errorf("config field resize_size: %d is smaller than image_size %d", c.ResizeSize, c.ImageSize))
	}
	if c.Stages < 0 || c.Stages > 7 {
		errs = append(errs, fmt.Errorf("config field stages: must be 0..7, got %d", c.Stages))
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		errs = append(errs, fmt.Errorf("config field dropout: must be in [0,1), got %g", c.Dropout))
	}
	for i := 0; i < 3; i++ {
		if !(c.Std[i] > 0) {
			errs = append(errs, fmt.Errorf("config field std[%d]: must be > 0, got %g", i, c.Std[i]))
		}
	}
	for t, v := range c.Temperature {
		if !slices.Contains(Tasks, t) {
			errs = append(errs, fmt.Errorf("config field temperature.%s: unknown task (want %s)", t, strings.Join(Tasks, ", ")))
		} else if !(v > 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("config field temperature.%s: must be a finite number > 0, got %g", t, v))
		}
	}
	for _, t := range Tasks {
		if len(c.Classes[t]) < 2 {
			errs = append(errs, fmt.Errorf("config field classes.%s: need at least 2 classes, got %d", t, len(c.Classes[t])))
		}
	}
	return errors.Join(errs...)
}

// MarshalJSON-friendly helpers.

// JSON returns the configuration as indented JSON.
func (c Config) JSON() []byte {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		panic(err) // Config has only plain fields.
	}
	return b
}

// ParseJSON reads a configuration written by JSON and validates it.
func ParseJSON(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("model config: %w", err)
	}
	return c, c.Validate()
}

// ONNX metadata_props keys written by the exporter and read by the runtime.
const (
	MetaVersion     = "artnet.version"
	MetaVariant     = "artnet.variant"
	MetaInputSize   = "artnet.input_size"  // "HxW"
	MetaMean        = "artnet.mean"        // "0.485,0.456,0.406"
	MetaStd         = "artnet.std"         // "0.229,0.224,0.225"
	MetaResize      = "artnet.resize"      // "shorter_side=256;center_crop=224x224;interp=bilinear"
	MetaTokensGrid  = "artnet.tokens_grid" // "7x7"
	MetaClassPrefix = "artnet.classes."    // + task: JSON array of names
	MetaConfig      = "artnet.config"      // the whole Config as JSON
	MetaTemperature = "artnet.temperature" // "style=1.31;genre=1.12;artist=1.05" when calibrated (Config.Temperature)
	// MetaQuantization is written by `artnet quantize` only: JSON with the method, the
	// calibration and the op types quantized (absent in a float model).
	MetaQuantization = "artnet.quantization"
	// MetaPrecision is written by `artnet export --fp16` only: "fp16" (absent: float32).
	MetaPrecision = "artnet.precision"
)

// Metadata returns the ONNX metadata_props of a model with this configuration.
func (c Config) Metadata() map[string]string {
	h, w := c.Grid()
	m := map[string]string{
		MetaVersion:    Version,
		MetaVariant:    c.Variant,
		MetaInputSize:  fmt.Sprintf("%dx%d", c.ImageSize, c.ImageSize),
		MetaMean:       floats(c.Mean),
		MetaStd:        floats(c.Std),
		MetaResize:     fmt.Sprintf("shorter_side=%d;center_crop=%dx%d;interp=bilinear", c.ResizeSize, c.ImageSize, c.ImageSize),
		MetaTokensGrid: fmt.Sprintf("%dx%d", h, w),
		MetaConfig:     string(c.JSON()),
	}
	if len(c.Temperature) > 0 {
		m[MetaTemperature] = c.TemperatureString()
	}
	for _, t := range Tasks {
		b, _ := json.Marshal(c.Classes[t])
		m[MetaClassPrefix+t] = string(b)
	}
	return m
}

func floats(v [3]float32) string {
	s := make([]string, 3)
	for i, f := range v {
		s[i] = strconv.FormatFloat(float64(f), 'g', -1, 32)
	}
	return strings.Join(s, ",")
}

// FromMetadata rebuilds a Config from ONNX metadata_props and checks every readable key
// (variant, input size, mean, std, resize, tokens grid, class names) against the embedded
// config, so that the values a reader of the file sees are the ones the model uses: a tools
// that reads artnet.tokens_grid sizes the same attention as Config.Grid(). The error names the
// missing or inconsistent key.
func FromMetadata(m map[string]string) (Config, error) {
	raw, ok := m[MetaConfig]
	if !ok {
		return Config{}, fmt.Errorf("metadata key %q missing: not an artnet model", MetaConfig)
	}
	var c Config
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return c, fmt.Errorf("metadata key %q: %w", MetaConfig, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("metadata key %q: %w", MetaConfig, err)
	}
	for _, t := range Tasks {
		key := MetaClassPrefix + t
		var names []string
		if err := json.Unmarshal([]byte(m[key]), &names); err != nil {
			return c, fmt.Errorf("metadata key %q: %v", key, err)
		}
		if len(names) != len(c.Classes[t]) {
			return c, fmt.Errorf("metadata key %q: %d classes, config says %d", key, len(names), len(c.Classes[t]))
		}
		for i, n := range names {
			if n != c.Classes[t][i] {
				return c, fmt.Errorf("metadata key %q: class %d is %q, config says %q", key, i, n, c.Classes[t][i])
			}
		}
	}
	want := c.Metadata()
	for _, key := range []string{MetaVariant, MetaInputSize, MetaMean, MetaStd, MetaResize, MetaTokensGrid} {
		got, ok := m[key]
		if !ok {
			return c, fmt.Errorf("metadata key %q missing", key)
		}
		if got != want[key] {
			return c, fmt.Errorf("metadata key %q: %q, config says %q", key, got, want[key])
		}
	}
	if got, want := m[MetaTemperature], c.TemperatureString(); got != want {
		return c, fmt.Errorf("metadata key %q: %q, config says %q", MetaTemperature, got, want)
	}
	return c, nil
}

// TemperatureString is the MetaTemperature value of c: "task=T" for each calibrated task in
// Tasks order, joined by ';' ("" when uncalibrated).
func (c Config) TemperatureString() string {
	var parts []string
	for _, t := range Tasks {
		if v, ok := c.Temperature[t]; ok {
			parts = append(parts, t+"="+strconv.FormatFloat(v, 'g', 6, 64))
		}
	}
	return strings.Join(parts, ";")
}

// ResizeScale is the ratio ResizeSize/ImageSize (e.g. 256/224).
func (c Config) ResizeScale() float64 {
	return float64(c.ResizeSize) / math.Max(1, float64(c.ImageSize))
}

// Tiny returns a small configuration with the full structure (stem, MBConv stages with SE,
// head conv, projection, 2-layer BiLSTM, attention, three heads) that trains on a CPU in
// minutes: b0 scaled to width 0.25 and depth 0.25, first 4 stages, 64×64 input, 4×4 tokens.
func Tiny() Config {
	c := Default()
	c.Variant = "b0"
	c.WidthMult, c.DepthMult = 0.25, 0.25
	c.Stages = 4
	c.HeadChannels = 64
	c.ImageSize, c.ResizeSize = 64, 72
	c.ProjDim, c.LSTMHidden, c.LSTMLayers, c.AttnDim, c.HeadHidden = 32, 16, 2, 16, 32
	c.Dropout, c.DropPath = 0.1, 0
	return c
}
