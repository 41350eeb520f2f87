package train

import (
	"fmt"
	"math"

	"github.com/artnet/artnet/internal/tfevents"
	"github.com/artnet/artnet/models/spec"
)

// TensorBoard scalars written beside metrics.jsonl (one event file per Run, in OutDir):
//
//	loss/total, loss/<task>   the uncertainty-weighted total and each task's focal loss
//	sigma/<task>              the learned σ_k = exp(s_k/2) (s_k = log σ_k², before the update)
//	lr, images_per_sec        the step's learning rate and throughput
//	val/top1/<task>, val/top5/<task>, val/score   each evaluation (score: mean top-1)
//
// A resumed run starts its file with a SessionLog START at the step it resumed from, so
// TensorBoard drops the earlier files' events of the steps being redone.

func openEvents(outDir string, startStep int, resumedFrom string) (*tfevents.Writer, error) {
	w, err := tfevents.Create(outDir)
	if err != nil {
		return nil, err
	}
	if startStep > 0 {
		if err := w.SessionStart(int64(startStep), "resumed from "+resumedFrom); err != nil {
			_ = w.Close()
			return nil, err
		}
	}
	return w, w.Flush()
}

func writeStepEvents(w *tfevents.Writer, m StepMetrics) error {
	tags := []string{"loss/total"}
	vals := []float64{m.Loss}
	for _, task := range spec.Tasks {
		tags = append(tags, "loss/"+task, "sigma/"+task)
		vals = append(vals, m.TaskLoss[task], math.Exp(m.LogVar[task]/2))
	}
	tags = append(tags, "lr", "images_per_sec")
	vals = append(vals, m.LR, m.ImagesPerSec)
	if err := w.Scalars(int64(m.Step), tags, vals); err != nil {
		return err
	}
	return w.Flush()
}

func writeEvalEvents(w *tfevents.Writer, m EvalMetrics) error {
	var tags []string
	var vals []float64
	for _, task := range spec.Tasks {
		if a, ok := m.Accuracy[task]; ok {
			tags = append(tags, "val/top1/"+task)
			vals = append(vals, a)
		}
		if a, ok := m.Top5[task]; ok {
			tags = append(tags, "val/top5/"+task)
			vals = append(vals, a)
		}
	}
	tags = append(tags, "val/score")
	vals = append(vals, Score(m.Accuracy))
	if err := w.Scalars(int64(m.Step), tags, vals); err != nil {
		return fmt.Errorf("evaluation at step %d: %w", m.Step, err)
	}
	return w.Flush()
}
