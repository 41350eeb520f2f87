package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/artnet/artnet/internal/testenv"
	"github.com/artnet/artnet/internal/tfevents"
)

// tbEvent is one event as the independent reader (internal/tfevents/testdata/read_events.py,
// standard-library Python with its own CRC-32C and protobuf parser) prints it.
type tbEvent struct {
	Step         int                `json:"step"`
	Scalars      map[string]float64 `json:"scalars"`
	SessionStart bool               `json:"session_start"`
}

func readEventFiles(t *testing.T, dir string) [][]tbEvent {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		testenv.Missing(t, "/usr/bin/python3 (standard library only) for the independent event-file reader", "apt-get install python3")
	}
	files, _ := filepath.Glob(filepath.Join(dir, tfevents.FilePrefix+"*"))
	var out [][]tbEvent
	for _, f := range files {
		cmd := exec.Command("/usr/bin/python3", "../internal/tfevents/testdata/read_events.py", f)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("independent reader on %s: %v: %s", f, err, stderr.String())
		}
		var evs []tbEvent
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var e tbEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, e)
		}
		out = append(out, evs)
	}
	return out
}

// TestRunWritesTensorBoardScalars: a run and its resumption write event files whose scalars
// (read by the independent reader) equal metrics.jsonl's — losses, σ = exp(s/2), lr, val
// accuracy — and the resumed run's file starts with a SessionLog START at its step.
func TestRunWritesTensorBoardScalars(t *testing.T) {
	dir := t.TempDir()
	o := standInOptions(dir)
	o.Steps, o.EvalEvery = 4, 2
	ds := NewSynthetic(o.Config, 32, 1)
	if _, err := Run(context.Background(), o, ds, NewSynthetic(o.Config, 8, 2), nil); err != nil {
		t.Fatal(err)
	}
	o.Steps, o.Resume = 6, true
	if _, err := Run(context.Background(), o, ds, NewSynthetic(o.Config, 8, 2), nil); err != nil {
		t.Fatal(err)
	}
	files := readEventFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("%d event files, want 2 (one per run)", len(files))
	}
	byStep := map[int]map[string]float64{}
	for fi, evs := range files {
		if fi == 1 && (len(evs) < 2 || !evs[1].SessionStart || evs[1].Step != 4) {
			t.Errorf("resumed run's file: want file_version then SessionLog START at step 4, got %+v", evs[:min(2, len(evs))])
		}
		for _, e := range evs {
			if len(e.Scalars) == 0 {
				continue
			}
			if byStep[e.Step] == nil {
				byStep[e.Step] = map[string]float64{}
			}
			for k, v := range e.Scalars {
				byStep[e.Step][k] = v
			}
		}
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }
	var checked, evals int
	for _, m := range readMetrics(t, dir) {
		step := int(m["step"].(float64))
		got := byStep[step]
		switch m["kind"] {
		case "train":
			want := map[string]float64{"loss/total": m["loss"].(float64), "lr": m["lr"].(float64)}
			for task, v := range m["task_loss"].(map[string]any) {
				want["loss/"+task] = v.(float64)
			}
			for task, v := range m["log_var"].(map[string]any) {
				want["sigma/"+task] = math.Exp(v.(float64) / 2)
			}
			for k, v := range want {
				if !near(got[k], v) {
					t.Errorf("step %d %s: event file %g, metrics.jsonl %g", step, k, got[k], v)
				}
			}
			checked++
		case "eval":
			for task, v := range m["accuracy"].(map[string]any) {
				if !near(got["val/top1/"+task], v.(float64)) {
					t.Errorf("step %d val/top1/%s: event file %g, metrics.jsonl %g", step, task, got["val/top1/"+task], v)
				}
			}
			evals++
		}
	}
	if checked != 6 || evals < 3 {
		t.Fatalf("compared %d training steps and %d evaluations, want 6 and ≥ 3", checked, evals)
	}
}
