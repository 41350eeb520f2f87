package train

// Soft targets for the recipe: label smoothing and mixup/CutMix mix each task's one-hot labels
// into a distribution, and the focal loss takes that distribution.

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's usual style for graph code.
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/models/spec"
)

// SoftTargets returns one task's targets [B, n] for labels a and b ([B], integer; −1 = absent)
// mixed with weight lam ([B], float): λ·onehot(a) + (1−λ)·onehot(b), then label-smoothed:
// (1−ε)·t + ε/n. mask [B] is 1 where both a and b are present and 0 elsewhere: a mixed
// example whose partner lacks the task's label is masked for that task (its target would
// otherwise be a fraction of a distribution). Unmixed examples have b = a and λ = 1.
func SoftTargets(a, b, lam *Node, n int, smoothing float64) (target, mask *Node) {
	dtype := lam.DType()
	g := lam.Graph()
	zero := ScalarZero(g, dtypes.Int32)
	a, b = ConvertDType(a, dtypes.Int32), ConvertDType(b, dtypes.Int32)
	pa, pb := GreaterOrEqual(a, zero), GreaterOrEqual(b, zero)
	mask = ConvertDType(LogicalAnd(pa, pb), dtype)
	oa := OneHot(Where(pa, a, zero), n, dtype)
	ob := OneHot(Where(pb, b, zero), n, dtype)
	l := InsertAxes(lam, -1)
	target = Add(Mul(oa, l), Mul(ob, OneMinus(l)))
	if smoothing > 0 {
		target = AddScalar(MulScalar(target, 1-smoothing), smoothing/float64(n))
	}
	return target, mask
}

// SoftFocalSum returns Σ_b mask_b·FL_b and Σ_b mask_b, where FL_b = −Σ_c t_bc·(1−p_bc)^γ·log p_bc
// is the focal loss against the target distribution t (logits [B, N], target [B, N], mask [B]).
// For a one-hot target it is FocalLoss's per-example term.
func SoftFocalSum(logits, target, mask *Node, gamma float64) (sum, count *Node) {
	if logits.Rank() != 2 || !logits.Shape().Equal(target.Shape()) {
		panic(fmt.Sprintf("SoftFocalSum: logits %s and target %s must be the same [batch, classes]", logits.Shape(), target.Shape()))
	}
	logP := LogSoftmax(logits, -1)
	w := focalWeight(OneMinus(Exp(logP)), gamma)
	fl := Neg(ReduceSum(Mul(target, Mul(w, logP)), -1)) // [B]
	return ReduceAllSum(Mul(fl, mask)), ReduceAllSum(mask)
}

// SoftFocalLoss is SoftFocalSum's mean over the unmasked examples (0 when there is none).
func SoftFocalLoss(logits, target, mask *Node, gamma float64) *Node {
	sum, count := SoftFocalSum(logits, target, mask, gamma)
	return Div(sum, Max(count, OnesLike(count)))
}

// recipeLoss is MultiTaskLoss for soft targets and for one micro-batch of a batch split into
// accumulation steps. labels and partner are [B, tasks] (partner: the labels mixed in, equal to
// labels when unmixed), lam [B] the weight of labels, counts [tasks] the number of unmasked
// examples of each task in the whole batch, share the micro-batch's part of the batch (1/K).
// With mean focal losses L_k = Σ_batch mask·FL / N_k, the whole batch's loss is
//
//	Σ_k  [N_k > 0] · ( exp(−s_k) · L_k + s_k )
//
// and each micro-batch returns its part of it: its own Σ mask·FL divided by the batch's N_k,
// and share·s_k. The micro-batches' losses (and so their gradients) add up to the batch's.
// perTask holds the micro-batch's part of each L_k.
func recipeLoss(ctx *gomlxcontext.Context, logits map[string]*Node, labels, partner, lam, counts *Node, share, smoothing, gamma float64) (total *Node, perTask map[string]*Node) {
	batch := labels.Shape().Dimensions[0]
	perTask = map[string]*Node{}
	uctx := ctx.In(UncertaintyScope)
	for k, task := range spec.Tasks {
		lg := logits[task]
		if lg == nil {
			panic(fmt.Sprintf("recipeLoss: the model has no logits for task %q", task))
		}
		a := Reshape(SliceAxis(labels, 1, AxisElem(k)), batch)
		b := Reshape(SliceAxis(partner, 1, AxisElem(k)), batch)
		target, mask := SoftTargets(a, b, ConvertDType(lam, lg.DType()), lg.Shape().Dimensions[1], smoothing)
		sum, _ := SoftFocalSum(lg, target, mask, gamma)
		n := ConvertDType(Reshape(SliceAxis(counts, 0, AxisElem(k))), lg.DType())
		lk := Div(sum, Max(n, OnesLike(n)))
		perTask[task] = lk
		s := uctx.VariableWithValue("log_var_"+task, shapes0(lk.DType())).ValueGraph(lk.Graph())
		present := ConvertDType(GreaterThan(n, ZerosLike(n)), lk.DType())
		term := Add(Mul(Exp(Neg(s)), lk), Mul(present, MulScalar(s, share)))
		if total == nil {
			total = term
		} else {
			total = Add(total, term)
		}
	}
	return total, perTask
}

// unmaskedCounts returns, per task, how many examples of labels/partner ([B·tasks] flat) have
// both labels present (SoftTargets's mask).
func unmaskedCounts(labels, partner []int32) []float32 {
	nt := len(spec.Tasks)
	out := make([]float32, nt)
	for i := range labels {
		if labels[i] >= 0 && partner[i] >= 0 {
			out[i%nt]++
		}
	}
	return out
}
