package train

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX's usual style for graph code.
	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/artnet/artnet/models/spec"
)

// DefaultGamma is the focal loss focusing parameter γ used by DeepArtNet.
const DefaultGamma = 2.0

// UncertaintyScope is the context scope (under the context passed to MultiTaskLoss) of the
// learned per-task log-variances s_k, one scalar variable "log_var_<task>" per task.
const UncertaintyScope = "uncertainty"

// FocalLoss returns the focal loss FL = -(1-p_t)^γ · log p_t averaged over the samples whose
// label is present, and the number of such samples (float32 scalar).
//
// logits is [B, N]; labels is [B] (any integer dtype), where a label < 0 marks an absent label:
// that sample is masked out. A batch without any present label gives loss 0 (not NaN) and count 0.
// p_t = softmax(logits)[label] is computed through log-softmax, so it is stable for large logits.
// Labels ≥ N select no class and contribute 0; the trainer rejects them on the host before a
// batch reaches the graph.
func FocalLoss(logits, labels *Node, gamma float64) (loss, count *Node) {
	if logits.Rank() != 2 {
		panic(fmt.Sprintf("FocalLoss: logits must be [batch, classes], got %s", logits.Shape()))
	}
	if labels.Rank() != 1 || labels.Shape().Dimensions[0] != logits.Shape().Dimensions[0] {
		panic(fmt.Sprintf("FocalLoss: labels must be [batch]=[%d], got %s", logits.Shape().Dimensions[0], labels.Shape()))
	}
	dtype := logits.DType()
	numClasses := logits.Shape().Dimensions[1]
	g := logits.Graph()

	labels = ConvertDType(labels, dtypes.Int32)
	present := GreaterOrEqual(labels, ScalarZero(g, dtypes.Int32))
	mask := ConvertDType(present, dtype)                              // [B]
	safeLabels := Where(present, labels, ScalarZero(g, dtypes.Int32)) // absent → class 0, masked below
	oneHot := OneHot(safeLabels, numClasses, dtype)                   // [B, N]

	logP := LogSoftmax(logits, -1)
	logPt := ReduceSum(Mul(oneHot, logP), -1) // [B]
	pt := Exp(logPt)
	fl := Neg(Mul(focalWeight(OneMinus(pt), gamma), logPt))

	count = ReduceAllSum(mask)
	sum := ReduceAllSum(Mul(fl, mask))
	loss = Div(sum, Max(count, OnesLike(count)))
	return loss, count
}

// focalWeight returns x^γ. Integer γ (the usual 2) is built from multiplications so its
// gradient is exact and finite at x = 0; other γ use Pow on x clamped away from 0.
func focalWeight(x *Node, gamma float64) *Node {
	if gamma == 0 {
		return OnesLike(x)
	}
	if gamma == math.Trunc(gamma) && gamma > 0 && gamma <= 8 {
		w := x
		for i := 1; i < int(gamma); i++ {
			w = Mul(w, x)
		}
		return w
	}
	x = Max(x, Scalar(x.Graph(), x.DType(), 1e-12))
	return Pow(x, Scalar(x.Graph(), x.DType(), gamma))
}

// MultiTaskLoss combines the focal losses of the three tasks with Kendall et al. 2018's learned
// homoscedastic uncertainty weighting. For each task k with mean focal loss L_k and learned
// scalar s_k = log σ_k² (variable UncertaintyScope/"log_var_<task>", initialised to 0):
//
//	total = Σ_k  present_k · ( exp(-s_k) · L_k + s_k )
//
// where present_k is 1 if the batch has at least one label for task k and 0 otherwise (so a
// batch without labels for a task adds nothing, and does not push s_k down either).
//
// logits maps task → [B, N_task]; labels is [B, len(spec.Tasks)] in spec.Tasks order (−1 =
// absent). It returns the total and, per task, the unweighted focal loss L_k.
func MultiTaskLoss(ctx *gomlxcontext.Context, logits map[string]*Node, labels *Node, gamma float64) (total *Node, perTask map[string]*Node) {
	if labels.Rank() != 2 || labels.Shape().Dimensions[1] != len(spec.Tasks) {
		panic(fmt.Sprintf("MultiTaskLoss: labels must be [batch, %d], got %s", len(spec.Tasks), labels.Shape()))
	}
	batch := labels.Shape().Dimensions[0]
	perTask = make(map[string]*Node, len(spec.Tasks))
	uctx := ctx.In(UncertaintyScope)
	for k, task := range spec.Tasks {
		lg, ok := logits[task]
		if !ok || lg == nil {
			panic(fmt.Sprintf("MultiTaskLoss: the model has no logits for task %q", task))
		}
		taskLabels := Reshape(SliceAxis(labels, 1, AxisElem(k)), batch)
		lk, count := FocalLoss(lg, taskLabels, gamma)
		perTask[task] = lk
		dtype := lk.DType()
		s := uctx.VariableWithValue("log_var_"+task, shapes0(dtype)).ValueGraph(lk.Graph())
		present := ConvertDType(GreaterThan(count, ZerosLike(count)), dtype)
		term := Mul(present, Add(Mul(Exp(Neg(s)), lk), s))
		if total == nil {
			total = term
		} else {
			total = Add(total, term)
		}
	}
	return total, perTask
}

// shapes0 returns a zero scalar of dtype as a Go value for VariableWithValue.
func shapes0(dtype dtypes.DType) any {
	if dtype == dtypes.Float64 {
		return float64(0)
	}
	return float32(0)
}
