package export

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// lstmFusion replaces the recorded, unrolled ops of a PyTorch-convention stacked bidirectional
// LSTM (models.BiLSTM: variables weight_ih_l{k}[_reverse] [4H, in], weight_hh_l{k}[_reverse]
// [4H, H], bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse] [4H], gate order i, f, g, o, zero
// initial state, input [B, T, F] → output [B, T, 2H]) by one ONNX LSTM node per layer.
//
// The subgraph is every recorded op whose scope is scope; it must have exactly one non-constant
// input from outside and exactly one op used outside, with the shapes above. If the recording
// does not match, nothing is fused and the unrolled ops are written as usual.
type lstmFusion struct {
	scope          string // recorded scope, e.g. "/encoder/lstm"
	hidden, layers int

	inID, outID int // planned: the subgraph's input and output ops
	ok          bool
}

func (f *lstmFusion) name() string      { return "lstm " + f.scope }
func (f *lstmFusion) onRecording() bool { return true }

// run plans the fusion on the recording; the emitter then writes the LSTM nodes in place of the
// subgraph. A recording that does not match is left unfused.
func (f *lstmFusion) run(x *exportRun) {
	if f.plan(x.rec.recs, x.rec.outputs) == nil {
		x.e.fusions = append(x.e.fusions, f)
	}
}

// plan finds the subgraph in recording a; it reports why it cannot fuse.
func (f *lstmFusion) plan(a []*rec, outputs []*rec) error {
	inScope := func(r *rec) bool { return r.scope == f.scope }
	ins, outs := map[int]bool{}, map[int]bool{}
	for _, r := range a {
		for _, x := range r.inputs {
			switch {
			case inScope(r) && !inScope(x) && x.op != backends.OpTypeConstant:
				ins[x.id] = true
			case !inScope(r) && inScope(x):
				outs[x.id] = true
			}
		}
	}
	for _, o := range outputs {
		if inScope(o) {
			outs[o.id] = true
		}
	}
	if len(ins) != 1 || len(outs) != 1 {
		return fmt.Errorf("scope %q has %d inputs and %d outputs, want 1 and 1", f.scope, len(ins), len(outs))
	}
	for id := range ins {
		f.inID = id
	}
	for id := range outs {
		f.outID = id
	}
	is, os := a[f.inID].shape, a[f.outID].shape
	if is.Rank() != 3 || os.Rank() != 3 || os.Dimensions[0] != is.Dimensions[0] || os.Dimensions[1] != is.Dimensions[1] ||
		os.Dimensions[2] != 2*f.hidden {
		return fmt.Errorf("scope %q maps %s to %s, want [B,T,F] to [B,T,%d]", f.scope, is, os, 2*f.hidden)
	}
	f.ok = true
	return nil
}

// varFloats returns the float32 values of variable scope/name, checking its dims.
func (e *emitter) varFloats(scope, name string, dims ...int) ([]float32, error) {
	v := e.ctx.GetVariableByScopeAndName(scope, name)
	if v == nil {
		return nil, fmt.Errorf("export: LSTM variable %s not found", context.JoinScope(scope, name))
	}
	t, err := v.Value()
	if err != nil || t == nil {
		return nil, fmt.Errorf("export: LSTM variable %s has no value", context.JoinScope(scope, name))
	}
	if !slices.Equal(t.Shape().Dimensions, dims) {
		return nil, fmt.Errorf("export: LSTM variable %s has shape %s, want %v", context.JoinScope(scope, name), t.Shape(), dims)
	}
	flat, err := tensorFlat(t)
	if err != nil {
		return nil, err
	}
	f, ok := flat.([]float32)
	if !ok {
		return nil, fmt.Errorf("export: LSTM variable %s is not float32", context.JoinScope(scope, name))
	}
	return f, nil
}

// emitLSTM writes the fused LSTM layers; x is the recorded input op.
func (e *emitter) emitLSTM(f *lstmFusion) (string, error) {
	x, err := e.value(f.inID)
	if err != nil {
		return "", err
	}
	H := f.hidden
	in := e.a[f.inID].shape.Dimensions[2]
	scope := f.scope
	// PyTorch gate blocks i, f, g, o → ONNX i, o, f, c.
	order := []int{0, 3, 1, 2}
	reorder := func(dst, src []float32, rowLen int) []float32 {
		for _, blk := range order {
			dst = append(dst, src[blk*H*rowLen:(blk+1)*H*rowLen]...)
		}
		return dst
	}
	xt := e.node(scope, "Transpose", []string{x}, attrInts("perm", []int{1, 0, 2})) // [T, B, F]
	for k := 0; k < f.layers; k++ {
		var W, R, B []float32
		for _, suffix := range []string{fmt.Sprintf("_l%d", k), fmt.Sprintf("_l%d_reverse", k)} {
			wih, err := e.varFloats(scope, "weight_ih"+suffix, 4*H, in)
			if err != nil {
				return "", err
			}
			whh, err := e.varFloats(scope, "weight_hh"+suffix, 4*H, H)
			if err != nil {
				return "", err
			}
			bih, err := e.varFloats(scope, "bias_ih"+suffix, 4*H)
			if err != nil {
				return "", err
			}
			bhh, err := e.varFloats(scope, "bias_hh"+suffix, 4*H)
			if err != nil {
				return "", err
			}
			W, R = reorder(W, wih, in), reorder(R, whh, H)
			B = reorder(reorder(B, bih, 1), bhh, 1)
		}
		base := fmt.Sprintf("%s/l%d", scope[1:], k)
		wName, err := e.init(base+"/W", []int{2, 4 * H, in}, W)
		if err != nil {
			return "", err
		}
		rName, _ := e.init(base+"/R", []int{2, 4 * H, H}, R)
		bName, _ := e.init(base+"/B", []int{2, 8 * H}, B)
		y := e.node(scope, "LSTM", []string{xt, wName, rName, bName},
			attrInt("hidden_size", int64(H)), attrString("direction", "bidirectional")) // [T, 2, B, H]
		if k < f.layers-1 {
			t := e.node(scope, "Transpose", []string{y}, attrInts("perm", []int{0, 2, 1, 3})) // [T, B, 2, H]
			xt = e.node(scope, "Reshape", []string{t, e.ints64([]int64{0, 0, -1}, false)})    // [T, B, 2H]
			in = 2 * H
			continue
		}
		t := e.node(scope, "Transpose", []string{y}, attrInts("perm", []int{2, 0, 1, 3})) // [B, T, 2, H]
		return e.node(scope, "Reshape", []string{t, e.ints64([]int64{0, 0, -1}, false)}), nil
	}
	return "", fmt.Errorf("export: LSTM with %d layers", f.layers)
}
