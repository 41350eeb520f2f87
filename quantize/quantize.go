package quantize

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
)

// Activation types (Options.Activations).
const (
	Uint8 = "uint8"
	Int8  = "int8"
)

// DefaultOps are the op types quantized when Options.Ops is empty: chosen by measurement
// (README, "int8 quantization").
var DefaultOps = []string{"Conv", "Sigmoid", "Mul", "Add", "GlobalAveragePool"}

// Defaults of Options (chosen by measurement, README).
const (
	DefaultMethod      = Percentile
	DefaultPercentile  = 99.99
	DefaultActivations = Uint8
	DefaultWeightBits  = 8
)

// Options configure Model.
type Options struct {
	// Batches are the calibration images, preprocessed for the model (NCHW float32, one slice
	// per batch; LoadImages makes them).
	Batches [][]float32
	// Source describes the calibration images for the metadata (e.g. the folder).
	Source string
	// Method is MinMax or Percentile ("" = DefaultMethod); Percentile in (50, 100] ("0" =
	// DefaultPercentile).
	Method     string
	Percentile float64
	// Activations is Uint8 or Int8 ("" = DefaultActivations).
	Activations string
	// WeightBits is 8, or 7 (weights in [-63, 63]: no int16 saturation in AVX2's u8·s8 pair
	// sums); 0 = DefaultWeightBits.
	WeightBits int
	// Ops are the op types to quantize (QuantizableOps); empty = DefaultOps.
	Ops []string
	// Threads are ONNX Runtime's intra-op threads for calibration (0: ORT's default).
	Threads int

	size int // image size, from the model
}

// Report says what Model did.
type Report struct {
	Ops     map[string]int // op type → nodes quantized
	Tensors int            // activation tensors quantized
	Images  int            // calibration images
	Meta    string         // the spec.MetaQuantization value written
}

// Metadata is the JSON of spec.MetaQuantization.
type Metadata struct {
	Format      string         `json:"format"` // "QDQ"
	Weights     string         `json:"weights"`
	Activations string         `json:"activations"`
	Method      string         `json:"calibration"`
	Percentile  float64        `json:"percentile,omitempty"`
	Images      int            `json:"calibration_images"`
	Source      string         `json:"calibration_source,omitempty"`
	Ops         map[string]int `json:"quantized_ops"`
}

func (o *Options) defaults() error {
	if o.Method == "" {
		o.Method = DefaultMethod
	}
	if o.Method != MinMax && o.Method != Percentile {
		return fmt.Errorf("calibration method %q: want %s or %s", o.Method, MinMax, Percentile)
	}
	if o.Percentile == 0 {
		o.Percentile = DefaultPercentile
	}
	if o.Method == Percentile && (o.Percentile <= 50 || o.Percentile > 100) {
		return fmt.Errorf("percentile %g: want a value in (50, 100]", o.Percentile)
	}
	if o.Activations == "" {
		o.Activations = DefaultActivations
	}
	if o.Activations != Uint8 && o.Activations != Int8 {
		return fmt.Errorf("activation type %q: want %s or %s", o.Activations, Uint8, Int8)
	}
	if o.WeightBits == 0 {
		o.WeightBits = DefaultWeightBits
	}
	if o.WeightBits != 8 && o.WeightBits != 7 {
		return fmt.Errorf("weight bits %d: want 8 or 7", o.WeightBits)
	}
	if len(o.Ops) == 0 {
		o.Ops = DefaultOps
	}
	for _, op := range o.Ops {
		if !slices.Contains(QuantizableOps(), op) {
			return fmt.Errorf("op type %q cannot be quantized (want some of %s)", op, strings.Join(QuantizableOps(), ", "))
		}
	}
	return nil
}

// Model returns a statically quantized copy of the float32 artnet model onnx (see the package
// doc), calibrated on o.Batches in ONNX Runtime (runtime.Init must have been called). The input
// must be an artnet model that spec.ValidateONNX accepts and not already quantized; the error is
// one line.
func Model(ctx context.Context, onnx []byte, o Options) (*onnxpb.ModelProto, *Report, error) {
	if err := o.defaults(); err != nil {
		return nil, nil, fmt.Errorf("quantize: %w", err)
	}
	it, err := spec.ValidateONNX("input", onnx)
	if err != nil {
		return nil, nil, fmt.Errorf("quantize: %w", err)
	}
	o.size = it.Height
	if it.Height != it.Width {
		return nil, nil, fmt.Errorf("quantize: input %dx%d is not square", it.Height, it.Width)
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(onnx, &m); err != nil {
		return nil, nil, fmt.Errorf("quantize: %v", err)
	}
	for _, p := range m.GetMetadataProps() {
		if p.GetKey() == spec.MetaQuantization || p.GetKey() == spec.MetaPrecision {
			return nil, nil, fmt.Errorf("quantize: the model is already converted (metadata key %q present)", p.GetKey())
		}
	}
	images := 0
	for i, b := range o.Batches {
		if len(b) == 0 || len(b)%(3*o.size*o.size) != 0 {
			return nil, nil, fmt.Errorf("quantize: calibration batch %d: %d floats is not a whole number of 3×%d×%d images", i, len(b), o.size, o.size)
		}
		images += len(b) / (3 * o.size * o.size)
	}
	ops := map[string]bool{}
	for _, op := range o.Ops {
		ops[op] = true
	}
	p, err := newPlan(m.GetGraph(), ops)
	if err != nil {
		return nil, nil, fmt.Errorf("quantize: %w", err)
	}
	ranges, err := calibrate(ctx, &m, p.tensors, o)
	if err != nil {
		return nil, nil, fmt.Errorf("quantize: %s", errtext.OneLine(err))
	}
	counts, err := apply(p, ranges, o.Activations == Int8, o.WeightBits)
	if err != nil {
		return nil, nil, fmt.Errorf("quantize: %w", err)
	}
	md := Metadata{
		Format:      "QDQ",
		Weights:     fmt.Sprintf("int8 symmetric per output channel (%d-bit range)", o.WeightBits),
		Activations: o.Activations + " asymmetric per tensor",
		Method:      o.Method,
		Images:      images,
		Source:      o.Source,
		Ops:         counts,
	}
	if o.Method == Percentile {
		md.Percentile = o.Percentile
	}
	js, err := json.Marshal(md)
	if err != nil {
		return nil, nil, err
	}
	m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: ptr(spec.MetaQuantization), Value: ptr(string(js))})
	sort.SliceStable(m.MetadataProps, func(i, j int) bool { return m.MetadataProps[i].GetKey() < m.MetadataProps[j].GetKey() })
	m.ProducerName = ptr("artnet")
	tensors := 0
	for _, n := range m.GetGraph().GetNode() {
		if n.GetOpType() == "QuantizeLinear" {
			tensors++
		}
	}
	return &m, &Report{Ops: counts, Tensors: tensors, Images: images, Meta: string(js)}, nil
}
