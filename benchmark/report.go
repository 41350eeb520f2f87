package benchmark

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/artnet/artnet/models/spec"
)

// Report is the result of one benchmark run.
type Report struct {
	Mode      string `json:"mode"`    // "train" or "infer"
	Runtime   string `json:"runtime"` // "gomlx" or "onnx"
	Backend   string `json:"backend"` // GoMLX backend config, or the ORT providers in effect
	Variant   string `json:"variant"`
	ImageSize int    `json:"image_size"`
	Batch     int    `json:"batch"`

	FirstSeconds float64   `json:"first_seconds"` // the first step or run, compilation included (excluded below)
	Warmup       int       `json:"warmup"`        // further steps excluded
	StepSeconds  []float64 `json:"step_seconds"`  // each measured step
	Median       float64   `json:"median_seconds"`
	Mean         float64   `json:"mean_seconds"`
	ImagesPerSec float64   `json:"images_per_sec"` // Batch / Median
	// StepCPUSeconds is the process's CPU time (all threads) during each measured step: on a
	// shared machine it depends much less on the load than the wall time does.
	StepCPUSeconds []float64 `json:"step_cpu_seconds"`
	MedianCPU      float64   `json:"median_cpu_seconds"`

	ForwardMACsPerImage int64   `json:"forward_macs_per_image"`
	MACsPerStep         int64   `json:"macs_per_step"`  // training: 3 × forward (see TrainingMACs)
	MACsPerSec          float64 `json:"macs_per_sec"`   // MACsPerStep / Median
	Loss                float64 `json:"loss,omitempty"` // training: the last step's total loss

	MaxAbsDiff float64 `json:"max_abs_diff,omitempty"` // inference with a reference: largest output difference
	Reference  string  `json:"reference,omitempty"`    // what MaxAbsDiff compares against

	Machine Machine `json:"machine"`
	// Config is the model measured (for a reference run of the same model elsewhere, e.g.
	// tools/torchref/bench_train.py).
	Config spec.Config `json:"config"`
}

// Machine describes where a report was measured.
type Machine struct {
	CPU        string     `json:"cpu"`
	NumCPU     int        `json:"num_cpu"`
	GOMAXPROCS int        `json:"gomaxprocs"`
	LoadBefore [3]float64 `json:"load_before"` // 1, 5, 15-minute load averages when the run started
	LoadAfter  [3]float64 `json:"load_after"`
}

// ThisMachine returns the CPU model and load averages now (Linux /proc; zero elsewhere).
func ThisMachine() Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), LoadBefore: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func loadAvg() (l [3]float64) {
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscanf(string(b), "%f %f %f", &l[0], &l[1], &l[2])
	}
	return l
}

// finish fills the statistics from StepSeconds and the MAC counts.
func (r *Report) finish() {
	r.Machine.LoadAfter = loadAvg()
	if len(r.StepSeconds) == 0 {
		return
	}
	r.Median = median(r.StepSeconds)
	if len(r.StepCPUSeconds) > 0 {
		r.MedianCPU = median(r.StepCPUSeconds)
	}
	for _, v := range r.StepSeconds {
		r.Mean += v
	}
	r.Mean /= float64(len(r.StepSeconds))
	if r.Median > 0 {
		r.ImagesPerSec = float64(r.Batch) / r.Median
		r.MACsPerSec = float64(r.MACsPerStep) / r.Median
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer) error {
	what := "training step (forward + backward + AdamW)"
	if r.Mode == "infer" {
		what = "inference (forward)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s %s, DeepArtNet %s at %d px, batch %d\n", what, r.Runtime, r.Backend, r.Variant, r.ImageSize, r.Batch)
	unit := "step"
	if r.Mode == "infer" {
		unit = "run"
	}
	fmt.Fprintf(&b, "  first %s %.3f s (compilation included; excluded), %d warm-up %s(s) excluded, %d measured\n",
		unit, r.FirstSeconds, r.Warmup, unit, len(r.StepSeconds))
	fmt.Fprintf(&b, "  %s time: median %.4f s, mean %.4f s (min %.4f, max %.4f)\n", unit, r.Median, r.Mean, slices.Min(r.StepSeconds), slices.Max(r.StepSeconds))
	fmt.Fprintf(&b, "  images/s: %.2f\n", r.ImagesPerSec)
	if r.MedianCPU > 0 {
		fmt.Fprintf(&b, "  CPU time per %s: median %.4f s (all threads; %.2f cores busy on average)\n", unit, r.MedianCPU, r.MedianCPU/r.Median)
	}
	fmt.Fprintf(&b, "  multiply-adds: %.4g G per image forward, %.4g G per %s; achieved %.3f G MAC/s\n",
		float64(r.ForwardMACsPerImage)/1e9, float64(r.MACsPerStep)/1e9, unit, r.MACsPerSec/1e9)
	if r.Mode == "train" {
		fmt.Fprintf(&b, "  last loss: %.5f\n", r.Loss)
	}
	if r.Reference != "" {
		fmt.Fprintf(&b, "  outputs vs %s: max abs diff %.3g\n", r.Reference, r.MaxAbsDiff)
	}
	m := r.Machine
	fmt.Fprintf(&b, "  machine: %s, %d CPUs (GOMAXPROCS %d), load average %.2f %.2f %.2f before, %.2f %.2f %.2f after\n",
		m.CPU, m.NumCPU, m.GOMAXPROCS, m.LoadBefore[0], m.LoadBefore[1], m.LoadBefore[2], m.LoadAfter[0], m.LoadAfter[1], m.LoadAfter[2])
	_, err := io.WriteString(w, b.String())
	return err
}
