package tfevents

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/artnet/artnet/internal/testenv"
)

// event is one line of testdata/read_events.py's output.
type event struct {
	WallTime     *float64           `json:"wall_time"`
	Step         int64              `json:"step"`
	FileVersion  *string            `json:"file_version"`
	Scalars      map[string]float64 `json:"scalars"`
	SessionStart bool               `json:"session_start"`
}

// readIndependently runs the standard-library Python reader (its own CRC-32C and protobuf
// wire parser) on path.
func readIndependently(t *testing.T, path string) ([]event, error) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		testenv.Missing(t, "/usr/bin/python3 (standard library only) for the independent event-file reader", "apt-get install python3")
	}
	var stderr bytes.Buffer
	cmd := exec.Command("/usr/bin/python3", "testdata/read_events.py", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &readErr{strings.TrimSpace(stderr.String())}
	}
	var evs []event
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("reader output %q: %v", sc.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs, nil
}

type readErr struct{ msg string }

func (e *readErr) Error() string { return e.msg }

func TestScalarsReadByIndependentReader(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	fixed := time.Unix(1_700_000_000, 250_000_000)
	w.now = func() time.Time { return fixed }
	tags := []string{"loss/total", "loss/style", "sigma/style", "lr"}
	for step := int64(1); step <= 3; step++ {
		vals := []float64{1.5 / float64(step), 0.25 * float64(step), math.Exp(-0.1 * float64(step)), 1e-3}
		if err := w.Scalars(step, tags, vals); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.SessionStart(2, "resumed from ckpt-00000002"); err != nil {
		t.Fatal(err)
	}
	if err := w.Scalars(300_000_000_000, []string{"val/top1/style"}, []float64{0.75}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(w.Path()), FilePrefix) {
		t.Errorf("file name %s lacks %s", w.Path(), FilePrefix)
	}
	evs, err := readIndependently(t, w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 6 {
		t.Fatalf("read %d events, want 6: %+v", len(evs), evs)
	}
	if evs[0].FileVersion == nil || *evs[0].FileVersion != "brain.Event:2" {
		t.Errorf("first event: want file_version brain.Event:2, got %+v", evs[0])
	}
	for i, e := range evs[1:] { // the file_version event was written by Create, at the real time
		i++
		if e.WallTime == nil || math.Abs(*e.WallTime-1_700_000_000.25) > 1e-6 {
			t.Errorf("event %d: wall time %v, want 1700000000.25", i, e.WallTime)
		}
	}
	for step := int64(1); step <= 3; step++ {
		e := evs[step]
		want := map[string]float64{"loss/total": 1.5 / float64(step), "loss/style": 0.25 * float64(step),
			"sigma/style": math.Exp(-0.1 * float64(step)), "lr": 1e-3}
		if e.Step != step || len(e.Scalars) != len(want) {
			t.Fatalf("event %d: %+v, want step %d with %v", step, e, step, want)
		}
		for k, v := range want {
			if got := e.Scalars[k]; math.Abs(got-v) > 1e-6*math.Max(1, math.Abs(v)) {
				t.Errorf("step %d %s: %g, want %g", step, k, got, v)
			}
		}
	}
	if !evs[4].SessionStart || evs[4].Step != 2 {
		t.Errorf("event 4: want SessionLog START at step 2, got %+v", evs[4])
	}
	if evs[5].Step != 300_000_000_000 || evs[5].Scalars["val/top1/style"] != 0.75 {
		t.Errorf("event 5: %+v", evs[5])
	}
}

// TestIndependentReaderCatchesCorruption makes sure the reader does check the CRCs (so that
// the test above can fail): one flipped byte in a record's data or length is reported.
func TestIndependentReaderCatchesCorruption(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Scalars(7, []string{"x"}, []float64{2}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	first := 12 + int(good[0]) + 4 // the file_version record (length < 256)
	for name, off := range map[string]int{"data": first + 14, "length": first + 2} {
		b := bytes.Clone(good)
		b[off] ^= 0x10
		p := filepath.Join(dir, name+".tfevents")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := readIndependently(t, p)
		if err == nil || !strings.Contains(err.Error(), "CRC mismatch") {
			t.Errorf("%s byte flipped: got %v, want a CRC mismatch", name, err)
		}
	}
}

func TestMaskedCRCKnownValue(t *testing.T) {
	// CRC-32C("123456789") = 0xE3069283; masked: rotate right by 15, add 0xa282ead8.
	c := uint32(0xE3069283)
	want := ((c >> 15) | (c << 17)) + 0xa282ead8
	if got := MaskedCRC([]byte("123456789")); got != want {
		t.Fatalf("MaskedCRC: %#x, want %#x", got, want)
	}
}
