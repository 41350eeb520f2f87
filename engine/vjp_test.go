package engine_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/artnet/artnet/engine"
	"github.com/artnet/artnet/internal/testenv"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// dotCase is a DotGeneral configuration.
type dotCase struct {
	lhs, rhs       []int
	lc, lb, rc, rb []int
}

var dotCases = []dotCase{
	{lhs: []int{3, 4}, rhs: []int{4, 5}, lc: []int{1}, rc: []int{0}},                                   // matmul
	{lhs: []int{4, 3}, rhs: []int{5, 4}, lc: []int{0}, rc: []int{1}},                                   // transposed operands
	{lhs: []int{2, 3, 4}, rhs: []int{2, 4, 5}, lc: []int{2}, lb: []int{0}, rc: []int{1}, rb: []int{0}}, // batched
	{lhs: []int{3, 2, 4}, rhs: []int{5, 4, 2}, lc: []int{2}, lb: []int{1}, rc: []int{1}, rb: []int{2}}, // batch axes not first
	{lhs: []int{2, 3, 4, 3}, rhs: []int{3, 5, 4}, lc: []int{3, 2}, rc: []int{0, 2}},                    // two contracting axes, swapped order
	{lhs: []int{1, 5, 3}, rhs: []int{1, 3, 1}, lc: []int{2}, lb: []int{0}, rc: []int{1}, rb: []int{0}}, // batch 1, size-1 cross
	{lhs: []int{2, 7}, rhs: []int{2, 7}, lc: []int{1}, lb: []int{0}, rc: []int{1}, rb: []int{0}},       // no cross axes (batched dot)
	{lhs: []int{3}, rhs: []int{3, 2, 2}, lc: []int{0}, rc: []int{0}},                                   // vector · tensor
}

func (c dotCase) String() string {
	return fmt.Sprintf("%v.%v_c%v%v_b%v%v", c.lhs, c.rhs, c.lc, c.rc, c.lb, c.rb)
}

func (c dotCase) fn(xs []*Node) *Node { return DotGeneral(xs[0], c.lc, c.lb, xs[1], c.rc, c.rb) }

// TestDotGeneralGradient checks the matrix-product DotGeneral VJP (artnet's, on the "go"
// backend) against finite differences, and against GoMLX's own VJP on "go:reference".
func TestDotGeneralGradient(t *testing.T) {
	for i, c := range dotCases {
		t.Run(c.String(), func(t *testing.T) {
			in := []arr{randArr(uint64(40+i), c.lhs...), randArr(uint64(60+i), c.rhs...)}
			forward(t, in, func(xs []*Node) *Node { // artnet's VJP reads the axes GoMLX recorded
				y := c.fn(xs)
				lc, lb, rc, rb, err := engine.DotGeneralAxes(y)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(lc, lb, rc, rb) != fmt.Sprint(c.lc, c.lb, c.rc, c.rb) {
					t.Fatalf("DotGeneral axes read as %v %v %v %v, built with %v %v %v %v", lc, lb, rc, rb, c.lc, c.lb, c.rc, c.rb)
				}
				return y
			})
			checkGrad(t, in, c.fn)
			checkValueAndGradientsLikeReference(t, in, c.fn, 1e-12)
		})
	}
}

// TestDotGeneralKernel compares DotGeneral on "go" (artnet's batched GEMM) with "go:reference"
// (simplego's loop) in float32 and float64, over layouts that read operands directly,
// transposed, and through a permuted copy.
func TestDotGeneralKernel(t *testing.T) {
	if err := engine.DotGeneralKernelError(); errors.Is(err, engine.ErrNoBLAS) {
		testenv.Missing(t, "OpenBLAS ("+err.Error()+")", "apt-get install libopenblas-dev, then rebuild") // a build without OpenBLAS (-tags noblas / CGO_ENABLED=0)
	} else if err != nil {
		t.Fatal(err)
	}
	cases := append(slices.Clone(dotCases),
		dotCase{lhs: []int{33, 65}, rhs: []int{65, 17}, lc: []int{1}, rc: []int{0}},                                        // odd sizes
		dotCase{lhs: []int{4, 6, 5, 3}, rhs: []int{3, 6, 4}, lc: []int{1, 3}, lb: []int{0}, rc: []int{1, 0}, rb: []int{2}}, // permuted copies
		dotCase{lhs: []int{8, 130, 70}, rhs: []int{8, 70, 90}, lc: []int{2}, lb: []int{0}, rc: []int{1}, rb: []int{0}},     // larger, batched
	)
	r := rand.New(rand.NewPCG(5, 6))
	for _, dtype := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%s", dtype, c), func(t *testing.T) {
				a, b := randTensor(r, dtype, c.lhs...), randTensor(r, dtype, c.rhs...)
				fast, ref := runBoth(t, []*tensors.Tensor{a, b}, func(xs []*Node) []*Node { return []*Node{c.fn(xs)} })
				tol := 1e-12
				if dtype == dtypes.Float32 {
					tol = 1e-4
				}
				checkClose(t, arr{fast[0], nil}, arr{ref[0], nil}, tol)
			})
		}
	}
}
