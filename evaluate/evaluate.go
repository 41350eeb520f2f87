package evaluate

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/artnet/artnet/calibrate"
	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/preprocess"
	"github.com/artnet/artnet/wikiart"
)

// TopK is the k of the top-k accuracy (top-5; a task with fewer classes uses its class count).
const TopK = 5

// maxExamples bounds the example file names kept for skipped images.
const maxExamples = 5

// Options configure Run.
type Options struct {
	// Images is the image root: sample files are Images/<Sample.Path>.
	Images string
	// Classes are the class names per task (keyed by task name, as wikiart.Load returns them).
	// Their counts must equal the model's; the names are the data's (the model's may be
	// placeholders). Nil uses the model's names.
	Classes map[string][]string
	// Batch is the number of images per forward pass (0 → 32).
	Batch int
	// Log receives progress lines (nil → slog.Default()).
	Log *slog.Logger
	// JPEGDraft decodes large JPEGs in libjpeg-turbo's draft mode, as `artnet serve
	// --jpeg-draft` does (preprocess.Options.Draft), to measure what that costs in accuracy.
	JPEGDraft bool
}

// TaskReport is one task's evaluation.
type TaskReport struct {
	Task     string  `json:"task"`
	Samples  int     `json:"samples"` // evaluated samples with this task's label
	Top1     float64 `json:"top1"`
	TopK     float64 `json:"topk"`
	K        int     `json:"k"`
	Averages         // macro and weighted averages over the classes present
	// Absent lists the classes with no labelled sample in the split (recall undefined).
	Absent    []string       `json:"absent_classes"`
	PerClass  []ClassMetrics `json:"per_class"`
	Confusion *Confusion     `json:"-"`
	// ECE is the expected calibration error of the top-1 confidences (calibrate.DefaultBins
	// equal-width bins): 0 when "87%" is right 87% of the time.
	ECE float64 `json:"ece"`
	// Rows are the labelled probability rows the report was computed from (for calibrate).
	Rows *calibrate.Set `json:"-"`
}

// Skipped is an image that could not be evaluated.
type Skipped struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// Summary is the whole evaluation, written as summary.json.
type Summary struct {
	Model   string `json:"model"`   // the ONNX file or checkpoint directory
	Runtime string `json:"runtime"` // "onnx" or "gomlx"
	Data    string `json:"data"`
	Split   string `json:"split"`
	// JPEGDraft records Options.JPEGDraft.
	JPEGDraft bool `json:"jpeg_draft,omitempty"`
	// Samples is how many samples of the split were given (after --limit); Evaluated those
	// whose image decoded; Undecodable the rest. MissingImages counts the split's CSV rows that
	// had no image file on disk (wikiart.Load skipped them before evaluation).
	Samples        int       `json:"samples"`
	Evaluated      int       `json:"evaluated"`
	Undecodable    int       `json:"undecodable"`
	UndecodableEx  []Skipped `json:"undecodable_examples,omitempty"`
	MissingImages  int       `json:"missing_images"`
	Limit          int       `json:"limit,omitempty"`
	ClassNamesFrom string    `json:"class_names_from"` // "data" or "model"
	// ClassNameMismatch lists the tasks whose model class names (not placeholders) differ
	// from the data's: their scores compare label indices that may mean different classes.
	ClassNameMismatch []string      `json:"class_name_mismatch,omitempty"`
	Tasks             []*TaskReport `json:"tasks"`
	Seconds           float64       `json:"seconds"`
}

// Task returns the report of the named task, or nil.
func (s *Summary) Task(name string) *TaskReport {
	for _, t := range s.Tasks {
		if t.Task == name {
			return t
		}
	}
	return nil
}

// accumulator gathers one task's counts.
type accumulator struct {
	rows      calibrate.Set
	conf      *Confusion
	n, top1   int
	topk, k   int
	nClasses  int
	className string
}

// Run evaluates p on samples: every image is decoded as the model's configuration says, run in
// batches, and each task is scored on the samples that carry its label. Images that do not
// decode are skipped and counted (the first few named in the summary). It returns an error
// only when the model fails, the context ends, or the class lists do not fit the model.
func Run(ctx context.Context, p predict.Predictor, samples []wikiart.Sample, o Options) (*Summary, error) {
	began := time.Now()
	pl, err := predict.NewPipeline(p, func(po *preprocess.Options) { po.Draft = o.JPEGDraft })
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	cfg := pl.Config()
	if o.Batch <= 0 {
		o.Batch = 32
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	sum := &Summary{Samples: len(samples), ClassNamesFrom: "data"}
	if o.Classes == nil {
		sum.ClassNamesFrom = "model"
	}
	acc := make([]*accumulator, len(spec.Tasks))
	for t, task := range spec.Tasks {
		names := cfg.Classes[task]
		if o.Classes != nil {
			d := o.Classes[task]
			if len(d) != len(names) {
				return nil, fmt.Errorf("evaluate: task %s: the model has %d classes, the data's %s lists %d", task, len(names), wikiart.ClassFileName(t), len(d))
			}
			if !slices.Equal(d, names) {
				if slices.Equal(names, spec.Numbered(task, len(names))) {
					log.Debug("the model has placeholder class names; reporting the data's", "task", task)
				} else {
					// Real names that differ: the class order may differ too, and scores would
					// compare unrelated classes. Say so; the summary records it.
					log.Warn("the model's class names differ from the data's; label indices are compared as they are",
						"task", task, "model_first", names[0], "data_first", d[0])
					sum.ClassNameMismatch = append(sum.ClassNameMismatch, task)
				}
			}
			names = d
		}
		k := min(TopK, len(names))
		acc[t] = &accumulator{conf: NewConfusion(names), k: k, nClasses: len(names), className: task}
	}

	sum.JPEGDraft = o.JPEGDraft
	per := pl.Options().Len()
	batches := make(chan batch, 1)
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { // decodes the next batch while the model runs this one; ends when samples or ctx end
		defer close(done)
		defer close(batches)
		for start := 0; start < len(samples); {
			b := batch{images: make([]float32, 0, o.Batch*per)}
			for ; start < len(samples) && len(b.samples) < o.Batch; start++ {
				s := samples[start]
				img, err := pl.DecodeFile(s.File(o.Images))
				if err == nil {
					b.images = append(b.images, make([]float32, per)...)
					if err = pl.Preprocess(b.images[len(b.images)-per:], img); err != nil {
						b.images = b.images[:len(b.images)-per]
					}
				}
				if err != nil {
					b.skipped = append(b.skipped, Skipped{Path: s.Path, Error: errtext.OneLine(err)})
					continue
				}
				b.samples = append(b.samples, s)
			}
			select {
			case batches <- b:
			case <-pctx.Done():
				return
			}
		}
	}()
	defer func() { cancel(); <-done }()

	lastLog := time.Now()
	for b := range batches {
		for _, s := range b.skipped {
			sum.Undecodable++
			if len(sum.UndecodableEx) < maxExamples {
				sum.UndecodableEx = append(sum.UndecodableEx, s)
			}
			log.Warn("image skipped", "path", s.Path, "err", s.Error)
		}
		if len(b.samples) == 0 {
			continue
		}
		res, err := pl.Run(ctx, b.images, len(b.samples))
		if err != nil {
			return nil, fmt.Errorf("evaluate: model run on %d images (first %s): %w", len(b.samples), b.samples[0].Path, err)
		}
		for i, s := range b.samples {
			for t, task := range spec.Tasks {
				truth := s.Labels[t]
				if truth == wikiart.Absent {
					continue
				}
				a := acc[t]
				row := res.Row(task, i) // nClasses long: pl.Run checked the shapes
				if truth < 0 || truth >= a.nClasses {
					return nil, fmt.Errorf("evaluate: %s: %s label %d out of range 0..%d", s.Path, task, truth, a.nClasses-1)
				}
				for _, v := range row {
					if math.IsNaN(float64(v)) {
						return nil, fmt.Errorf("evaluate: %s: the model's %s output is NaN", s.Path, task)
					}
				}
				pred := Argmax(row)
				_ = a.conf.Add(truth, pred)
				_ = a.rows.Add(row, truth) // length and label checked above
				a.n++
				if pred == truth {
					a.top1++
				}
				if Rank(row, truth) < a.k {
					a.topk++
				}
			}
		}
		sum.Evaluated += len(b.samples)
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			log.Info("evaluating", "done", sum.Evaluated+sum.Undecodable, "of", len(samples))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	for _, a := range acc {
		sum.Tasks = append(sum.Tasks, a.report())
	}
	sum.Seconds = time.Since(began).Seconds()
	return sum, nil
}

// Subsample returns n samples spread evenly over samples (indices ⌊i·len/n⌋, in order), or
// all of them when n ≤ 0 or n ≥ len. A split lists its images class by class, so the first n
// would cover few classes; an even spread covers them in proportion, deterministically.
func Subsample(samples []wikiart.Sample, n int) []wikiart.Sample {
	if n <= 0 || n >= len(samples) {
		return samples
	}
	out := make([]wikiart.Sample, n)
	for i := range out {
		out[i] = samples[i*len(samples)/n]
	}
	return out
}

type batch struct {
	images  []float32
	samples []wikiart.Sample
	skipped []Skipped
}

func (a *accumulator) report() *TaskReport {
	r := &TaskReport{Task: a.className, Samples: a.n, K: a.k, Confusion: a.conf, Absent: []string{}, Rows: &a.rows}
	r.ECE = a.rows.ECE(1, calibrate.DefaultBins)
	if a.n > 0 {
		r.Top1 = float64(a.top1) / float64(a.n)
		r.TopK = float64(a.topk) / float64(a.n)
	}
	r.PerClass = a.conf.PerClass()
	r.Averages = Average(r.PerClass)
	for _, m := range r.PerClass {
		if m.Support == 0 {
			r.Absent = append(r.Absent, m.Class)
		}
	}
	return r
}
