package engine

import (
	"fmt"
	"reflect"
	"slices"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's graph-building API reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// GoMLX v0.26's gradient of DotGeneral (pkg/core/graph dotGeneralVJP) multiplies the output
// gradient by the other operand with broadcasting and then ReduceSums the other operand's free
// axes: it materializes a [batch, lhs free, rhs free, contracted] tensor and runs it through the
// elementwise executors. On the pure-Go backend that was ~80% of a training step. The VJP
// installed here computes the same two gradients as DotGenerals (matrix products) instead, for
// graphs built on artnet's fast "go" backend; every other backend ("go:reference", XLA) keeps
// GoMLX's own VJP, so their graphs are unchanged.

// dotGeneralParams are the axes of a DotGeneral node.
type dotGeneralParams struct {
	lhsContracting, lhsBatch, rhsContracting, rhsBatch []int
}

// dotGeneralParamsOf reads the axes of a DotGeneral node from GoMLX's unexported node inputs
// (nodeInputsDotGeneral in v0.26.0), by reflection; an error if that layout changed.
func dotGeneralParamsOf(node *Node) (dotGeneralParams, error) {
	var p dotGeneralParams
	v := reflect.ValueOf(node).Elem().FieldByName("inputs")
	if !v.IsValid() || v.Kind() != reflect.Interface || v.IsNil() {
		return p, fmt.Errorf("graph.Node has no \"inputs\" interface field")
	}
	in := v.Elem()
	if in.Kind() != reflect.Pointer || in.Elem().Kind() != reflect.Struct {
		return p, fmt.Errorf("DotGeneral node inputs are %s, not a pointer to a struct", in.Type())
	}
	in = in.Elem()
	ints := func(name string) ([]int, error) {
		f := in.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.Int {
			return nil, fmt.Errorf("%s has no []int field %q", in.Type(), name)
		}
		out := make([]int, f.Len())
		for i := range out {
			out[i] = int(f.Index(i).Int())
		}
		return out, nil
	}
	var err error
	if p.lhsContracting, err = ints("lhsContractingAxes"); err != nil {
		return p, err
	}
	if p.lhsBatch, err = ints("lhsBatchAxes"); err != nil {
		return p, err
	}
	if p.rhsContracting, err = ints("rhsContractingAxes"); err != nil {
		return p, err
	}
	if p.rhsBatch, err = ints("rhsBatchAxes"); err != nil {
		return p, err
	}
	return p, nil
}

// vjpInstallErr is why the DotGeneral VJP could not be installed (nil when it is).
var vjpInstallErr error

func init() {
	orig, ok := VJPRegistration[NodeTypeDotGeneral]
	if !ok {
		vjpInstallErr = fmt.Errorf("GoMLX has no registered DotGeneral VJP")
		return
	}
	VJPRegistration[NodeTypeDotGeneral] = func(node *Node, vjpOutputs []*Node, outputShape shapes.Shape) []*Node {
		if b, ok := node.Graph().Backend().(*Backend); ok && !b.reference && len(vjpOutputs) == 1 {
			if p, err := dotGeneralParamsOf(node); err == nil {
				return dotGeneralMatmulVJP(node, vjpOutputs[0], p)
			}
		}
		return orig(node, vjpOutputs, outputShape)
	}
}

// crossAxes returns the axes of an operand of rank that are neither contracting nor batch, in order.
func crossAxes(rank int, contracting, batch []int) []int {
	var out []int
	for a := range rank {
		if !slices.Contains(contracting, a) && !slices.Contains(batch, a) {
			out = append(out, a)
		}
	}
	return out
}

// dotGeneralMatmulVJP returns the gradients of DotGeneral(lhs, rhs) with output gradient v
// ([batch..., lhs cross..., rhs cross...]) as two DotGenerals:
//
//	grad lhs = v ·(rhs cross) rhs → [batch, lhs cross, rhs contracting (in rhs axis order)]
//	grad rhs = v ·(lhs cross) lhs → [batch, rhs cross, lhs contracting (in lhs axis order)]
//
// each transposed back to its operand's axis order.
func dotGeneralMatmulVJP(node, v *Node, p dotGeneralParams) []*Node {
	lhs, rhs := node.Inputs()[0], node.Inputs()[1]
	lCross := crossAxes(lhs.Rank(), p.lhsContracting, p.lhsBatch)
	rCross := crossAxes(rhs.Rank(), p.rhsContracting, p.rhsBatch)
	nb := len(p.lhsBatch)
	vBatch := make([]int, nb)
	for i := range vBatch {
		vBatch[i] = i
	}
	vL := make([]int, len(lCross)) // v's axes holding lhs cross axes
	for i := range vL {
		vL[i] = nb + i
	}
	vR := make([]int, len(rCross)) // v's axes holding rhs cross axes
	for i := range vR {
		vR[i] = nb + len(lCross) + i
	}
	// grad computes the gradient of "this" operand (batch, cross, contracting axes as given) from
	// v (its cross axes vThis, the other's vOther) and the other operand.
	grad := func(this *Node, thisBatch, thisCross, thisContracting []int, vOther []int,
		other *Node, otherBatch, otherCross, otherContracting []int) *Node {
		g := DotGeneral(v, vOther, vBatch, other, otherCross, otherBatch)
		// g axes: batch (nb), this cross (in order), then other's remaining axes — its contracting
		// axes — in increasing axis order.
		resultAxisOf := make([]int, this.Rank())
		for i, a := range thisBatch {
			resultAxisOf[a] = i
		}
		for i, a := range thisCross {
			resultAxisOf[a] = nb + i
		}
		sortedOther := slices.Sorted(slices.Values(otherContracting))
		for i, oa := range otherContracting {
			k := slices.Index(sortedOther, oa)
			resultAxisOf[thisContracting[i]] = nb + len(thisCross) + k
		}
		identity := true
		for i, r := range resultAxisOf {
			identity = identity && i == r
		}
		if !identity {
			g = TransposeAllAxes(g, resultAxisOf...)
		}
		return g
	}
	gl := grad(lhs, p.lhsBatch, lCross, p.lhsContracting, vR, rhs, p.rhsBatch, rCross, p.rhsContracting)
	gr := grad(rhs, p.rhsBatch, rCross, p.rhsContracting, vL, lhs, p.lhsBatch, lCross, p.lhsContracting)
	return []*Node{gl, gr}
}
