package artnet

import (
	"context"
	"fmt"
	"image"
	"strings"
	"testing"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/predict"
)

// shortPredictor answers without one task's output (a broken or foreign predictor).
type shortPredictor struct {
	closeCounter
	drop string
}

func (s *shortPredictor) Run(_ context.Context, _ []float32, n int) (*predict.Result, error) {
	res := &predict.Result{Batch: n, Probs: map[string][]float32{}, Attention: make([]float32, n*s.cfg.Tokens())}
	for _, t := range spec.Tasks {
		if t != s.drop {
			res.Probs[t] = make([]float32, n*s.cfg.NumClasses(t))
		}
	}
	return res, nil
}

// A predictor whose result lacks a task is a one-line error naming it, not a panic.
func TestWrapResultMissingTask(t *testing.T) {
	for _, task := range spec.Tasks {
		m, err := Wrap(&shortPredictor{closeCounter: closeCounter{cfg: spec.Tiny()}, drop: task}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		img := image.NewRGBA(image.Rect(0, 0, 80, 80))
		var r *Result
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic: %v", p)
				}
			}()
			r, err = m.Predict(context.Background(), img)
		}()
		if err == nil || !strings.Contains(err.Error(), task) || strings.Contains(err.Error(), "panic") || r != nil {
			t.Errorf("result without %s: want a one-line error naming it, got %v", task, err)
		}
	}
}
