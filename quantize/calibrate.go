package quantize

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxpb"
)

// Calibration methods (Options.Method).
const (
	MinMax     = "minmax"     // the observed min and max
	Percentile = "percentile" // the Options.Percentile-th percentile on each side
)

// sampleCap bounds the values kept per tensor for the percentile method.
const sampleCap = 1 << 17

// stats accumulate one tensor's observed values.
type stats struct {
	lo, hi float32
	rank   int
	sample []float32
}

// calibrate runs the float model m in ONNX Runtime on every batch of Options.Batches and returns
// the range of each named tensor. The graph input's range is computed from the batches directly.
func calibrate(ctx context.Context, m *onnxpb.ModelProto, tensors []string, o Options) (map[string]Range, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(o.Batches) == 0 {
		return nil, errors.New("no calibration images")
	}
	mc := proto.Clone(m).(*onnxpb.ModelProto)
	g := mc.GetGraph()
	isInput := map[string]bool{}
	for _, in := range g.GetInput() {
		isInput[in.GetName()] = true
	}
	existing := map[string]bool{}
	for _, out := range g.GetOutput() {
		existing[out.GetName()] = true
	}
	var names []string
	for _, t := range tensors {
		if isInput[t] {
			continue
		}
		names = append(names, t)
		if !existing[t] {
			g.Output = append(g.Output, &onnxpb.ValueInfoProto{Name: ptr(t), Type: &onnxpb.TypeProto{
				Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: ptr(int32(onnxpb.TensorProto_FLOAT))}}}})
		}
	}
	data, err := proto.Marshal(mc)
	if err != nil {
		return nil, err
	}
	st := map[string]*stats{}
	for _, t := range tensors {
		st[t] = &stats{lo: float32(math.Inf(1)), hi: float32(math.Inf(-1))}
	}
	perBatch := max(1, sampleCap/len(o.Batches))
	if len(names) > 0 {
		s, err := newCalibrationSession(data, names, o.Threads)
		if err != nil {
			return nil, fmt.Errorf("calibration session: %w", err)
		}
		defer s.Destroy()
		for _, b := range o.Batches {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := runBatch(s, b, o.size, names, st, perBatch); err != nil {
				return nil, err
			}
		}
	}
	for in := range isInput {
		if s, ok := st[in]; ok {
			for _, b := range o.Batches {
				s.add(b, 4, perBatch)
			}
		}
	}
	ranges := map[string]Range{}
	for t, s := range st {
		if s.rank == 0 {
			continue
		}
		r := Range{Lo: s.lo, Hi: s.hi, Rank: s.rank}
		if o.Method == Percentile && len(s.sample) > 0 {
			slices.Sort(s.sample)
			q := func(p float64) float32 {
				return s.sample[min(len(s.sample)-1, int(p*float64(len(s.sample)-1)+0.5))]
			}
			r.Lo, r.Hi = max(r.Lo, q(1-o.Percentile/100)), min(r.Hi, q(o.Percentile/100))
		}
		ranges[t] = r
	}
	return ranges, nil
}

func newCalibrationSession(data []byte, outputs []string, threads int) (*ort.DynamicAdvancedSession, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if threads > 0 {
		if err := so.SetIntraOpNumThreads(threads); err != nil {
			return nil, err
		}
	}
	return ort.NewDynamicAdvancedSessionWithONNXData(data, []string{spec.InputName}, outputs, so)
}

// runBatch runs one batch (images of size×size) and adds every output to its stats.
func runBatch(s *ort.DynamicAdvancedSession, images []float32, size int, names []string, st map[string]*stats, perBatch int) (err error) {
	n := len(images) / (3 * size * size)
	in, err := ort.NewTensor(ort.NewShape(int64(n), 3, int64(size), int64(size)), images)
	if err != nil {
		return fmt.Errorf("calibration input: %w", err)
	}
	defer in.Destroy()
	outs := make([]ort.Value, len(names))
	defer func() {
		for _, v := range outs {
			if v != nil {
				err = errors.Join(err, v.Destroy())
			}
		}
	}()
	if err := s.Run([]ort.Value{in}, outs); err != nil {
		return fmt.Errorf("calibration run: %w", err)
	}
	for i, v := range outs {
		t, ok := v.(*ort.Tensor[float32])
		if !ok {
			return fmt.Errorf("calibration: tensor %q is not float32 (%T)", names[i], v)
		}
		st[names[i]].add(t.GetData(), len(t.GetShape()), perBatch)
	}
	return nil
}

// add records values: min, max, rank, and up to perBatch of them (evenly strided) for the
// percentiles.
func (s *stats) add(v []float32, rank, perBatch int) {
	s.rank = rank
	for _, x := range v {
		s.lo, s.hi = min(s.lo, x), max(s.hi, x)
	}
	stride := max(1, (len(v)+perBatch-1)/perBatch)
	for i := 0; i < len(v); i += stride {
		s.sample = append(s.sample, v[i])
	}
}
