// Package runtimetest builds tiny ONNX models with an artnet model's interface, for tests that
// need a loadable model without the trainer or the exporter, and computes their outputs in Go.
//
// The graph (opset 17, IR 8):
//
//	pooled[b,c]   = mean over h,w of image[b,c,h,w]·mask[h,w]          (ReduceMean of Mul)
//	task[b,:]     = softmax(pooled[b,:]·W_task + bias_task)            for style, genre, artist
//	attention[b,:] = softmax(pooled[b,:]·W_att)                        (tokens = grid H'×W')
//
// with deterministic weights, so Reference gives the same numbers.
package runtimetest

import (
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
)

// Model describes a test model. The zero values of the fields after Config give a correct
// artnet model; the others build the broken variants that loading must reject.
type Model struct {
	Config spec.Config
	// Metadata replaces Config.Metadata() when non-nil; NoMetadata writes none.
	Metadata   map[string]string
	NoMetadata bool
	// Rename maps an output name (style, genre, artist, attention) to the name written.
	Rename map[string]string
	// Classes overrides a task's output width (the graph really computes that many).
	Classes map[string]int
	// Tokens overrides the attention width; InputSize the declared and used H = W.
	Tokens    int
	InputSize int
	// FixedBatch declares the batch dimension as this fixed size instead of "batch".
	FixedBatch int
	// SlowMatMuls adds a chain of this many 512×512 matrix products that depend on the input
	// and are then multiplied by 0, so a run takes long (≈0.27 GFLOP each) without changing
	// the outputs; for cancellation tests.
	SlowMatMuls int
}

const slowN = 512

// TinyModel returns a correct artnet-shaped model for cfg (e.g. spec.Tiny()).
func TinyModel(cfg spec.Config) []byte { return Model{Config: cfg}.Bytes() }

func (m Model) size() int {
	if m.InputSize > 0 {
		return m.InputSize
	}
	return m.Config.ImageSize
}

func (m Model) width(out string) int {
	if out == spec.OutputAttention {
		if m.Tokens > 0 {
			return m.Tokens
		}
		return m.Config.Tokens()
	}
	if n, ok := m.Classes[out]; ok {
		return n
	}
	return m.Config.NumClasses(out)
}

// Mask is the spatial weight mask[h*size+w] the model multiplies the image with.
func Mask(size int) []float32 {
	v := make([]float32, size*size)
	for h := 0; h < size; h++ {
		for w := 0; w < size; w++ {
			v[h*size+w] = float32(1 + 0.5*math.Sin(0.3*float64(h)+0.17*float64(w)+0.05*float64(h*w)))
		}
	}
	return v
}

// Weights returns the [3,n] matrix (row-major) and [n] bias of an output; k numbers it.
func Weights(k, n int) (w, b []float32) {
	w = make([]float32, 3*n)
	for c := 0; c < 3; c++ {
		for j := 0; j < n; j++ {
			w[c*n+j] = float32(2 * math.Sin(1.3*float64(c)+0.7*float64(j)+1.1*float64(k)+0.2))
		}
	}
	b = make([]float32, n)
	for j := range b {
		b[j] = float32(0.1 * math.Cos(float64(j)+float64(k)))
	}
	return w, b
}

// Bytes serializes the model as an ONNX ModelProto.
func (m Model) Bytes() []byte {
	size := m.size()
	var nodes []*onnxpb.NodeProto
	var inits []*onnxpb.TensorProto
	node := func(op string, in []string, out string, attrs ...*onnxpb.AttributeProto) {
		nodes = append(nodes, &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(out + "_" + op), Input: in, Output: []string{out}, Attribute: attrs})
	}
	tensor := func(name string, dims []int64, v []float32) {
		inits = append(inits, &onnxpb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: v})
	}
	tensor("mask", []int64{1, 1, int64(size), int64(size)}, Mask(size))
	node("Mul", []string{spec.InputName, "mask"}, "masked")
	node("ReduceMean", []string{"masked"}, "pooled",
		&onnxpb.AttributeProto{Name: proto.String("axes"), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: []int64{2, 3}},
		&onnxpb.AttributeProto{Name: proto.String("keepdims"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(0)})
	if m.SlowMatMuls > 0 {
		inits = append(inits, &onnxpb.TensorProto{Name: proto.String("slow_shape"), Dims: []int64{2}, DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Int64Data: []int64{slowN, slowN}})
		tensor("zero", nil, []float32{0})
		nodes = append(nodes, &onnxpb.NodeProto{OpType: proto.String("ConstantOfShape"), Input: []string{"slow_shape"}, Output: []string{"slow_c"},
			Attribute: []*onnxpb.AttributeProto{{Name: proto.String("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(),
				T: &onnxpb.TensorProto{Dims: []int64{1}, DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), FloatData: []float32{1.0 / slowN}}}}})
		node("ReduceMean", []string{spec.InputName}, "slow_mean", &onnxpb.AttributeProto{Name: proto.String("keepdims"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(0)})
		node("Mul", []string{"slow_mean", "zero"}, "slow_z0")
		node("Add", []string{"slow_c", "slow_z0"}, "slow_0")
		prev := "slow_0"
		for i := 1; i <= m.SlowMatMuls; i++ {
			cur := fmt.Sprintf("slow_%d", i)
			node("MatMul", []string{prev, "slow_0"}, cur)
			prev = cur
		}
		node("ReduceMean", []string{prev}, "slow_s", &onnxpb.AttributeProto{Name: proto.String("keepdims"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(0)})
		node("Mul", []string{"slow_s", "zero"}, "slow_z")
		node("Add", []string{"pooled", "slow_z"}, "pooled_slow")
	}
	pooled := "pooled"
	if m.SlowMatMuls > 0 {
		pooled = "pooled_slow"
	}
	batch := &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}}
	if m.FixedBatch > 0 {
		batch = dimV(int64(m.FixedBatch))
	}
	var outs []*onnxpb.ValueInfoProto
	for k, name := range spec.OutputNames() {
		n := m.width(name)
		w, b := Weights(k, n)
		tensor("W_"+name, []int64{3, int64(n)}, w)
		node("MatMul", []string{pooled, "W_" + name}, "mm_"+name)
		pre := "mm_" + name
		if name != spec.OutputAttention {
			tensor("b_"+name, []int64{int64(n)}, b)
			node("Add", []string{pre, "b_" + name}, "logits_"+name)
			pre = "logits_" + name
		}
		out := name
		if r, ok := m.Rename[name]; ok {
			out = r
		}
		node("Softmax", []string{pre}, out, &onnxpb.AttributeProto{Name: proto.String("axis"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(-1)})
		outs = append(outs, valueInfo(out, batch, dimV(int64(n))))
	}
	g := &onnxpb.GraphProto{
		Name:        proto.String("artnet_runtimetest"),
		Node:        nodes,
		Initializer: inits,
		Input:       []*onnxpb.ValueInfoProto{valueInfo(spec.InputName, batch, dimV(3), dimV(int64(size)), dimV(int64(size)))},
		Output:      outs,
	}
	mp := &onnxpb.ModelProto{
		IrVersion:    proto.Int64(8),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		ProducerName: proto.String("artnet-runtimetest"),
		Graph:        g,
	}
	if !m.NoMetadata {
		md := m.Metadata
		if md == nil {
			md = m.Config.Metadata()
		}
		keys := make([]string, 0, len(md))
		for k := range md {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			mp.MetadataProps = append(mp.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(md[k])})
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	if err != nil {
		panic(fmt.Sprintf("runtimetest: marshal: %v", err)) // only plain generated types
	}
	return b
}

func dimV(v int64) *onnxpb.TensorShapeProto_Dimension {
	return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
}

func valueInfo(name string, dims ...*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape:    &onnxpb.TensorShapeProto{Dim: dims},
		}}},
	}
}

// Reference computes, in float64, what the model built by m outputs for images
// (batch×3×size×size): task → batch×N probabilities, and batch×tokens attention.
func (m Model) Reference(images []float32, batch int) (probs map[string][]float32, attention []float32) {
	size := m.size()
	mask := Mask(size)
	hw := size * size
	pooled := make([]float64, batch*3)
	for b := 0; b < batch; b++ {
		for c := 0; c < 3; c++ {
			img := images[(b*3+c)*hw : (b*3+c+1)*hw]
			var s float64
			for i, v := range img {
				s += float64(v) * float64(mask[i])
			}
			pooled[b*3+c] = s / float64(hw)
		}
	}
	probs = map[string][]float32{}
	for k, name := range spec.OutputNames() {
		n := m.width(name)
		w, bias := Weights(k, n)
		out := make([]float32, batch*n)
		logits := make([]float64, n)
		for b := 0; b < batch; b++ {
			mx := math.Inf(-1)
			for j := 0; j < n; j++ {
				l := 0.0
				for c := 0; c < 3; c++ {
					l += pooled[b*3+c] * float64(w[c*n+j])
				}
				if name != spec.OutputAttention {
					l += float64(bias[j])
				}
				logits[j] = l
				mx = math.Max(mx, l)
			}
			var sum float64
			for j := range logits {
				logits[j] = math.Exp(logits[j] - mx)
				sum += logits[j]
			}
			for j := range logits {
				out[b*n+j] = float32(logits[j] / sum)
			}
		}
		if name == spec.OutputAttention {
			attention = out
		} else {
			probs[name] = out
		}
	}
	return probs, attention
}

// Images returns batch deterministic pseudo-random images of size×size: noise in [-1, 1] plus
// a per-image, per-channel offset in [-1.5, 1.5], so that the model's outputs differ between
// images. Different seeds give different images.
func Images(batch, size int, seed uint64) []float32 {
	hw := size * size
	v := make([]float32, batch*3*hw)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range v {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		bc := i / hw // b*3 + c
		off := 1.5 * math.Sin(float64(seed)+1.7*float64(bc/3)+2.3*float64(bc%3))
		v[i] = float32(x>>40)/float32(1<<24)*2 - 1 + float32(off)
	}
	return v
}
