package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/train"
)

// TestTrainKilledDuringCheckpointResumes SIGKILLs `artnet train` (the built binary) several
// times — as soon as a checkpoint write is seen in progress, and at random moments — with a
// checkpoint every step and SaveCheckpoint slowed mid-write. After every kill each ckpt-* that
// exists loads, "latest" names one that loads, and `--resume` continues from the newest one.
func TestTrainKilledDuringCheckpointResumes(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "artnet")
	// SaveCheckpoint pauses 150 ms at each stage in this binary only (models.testSaveDelay).
	buildArtnet(t, bin, "-ldflags", "-X github.com/artnet/artnet/models.testSaveDelay=150ms")
	cfg := train.SyntheticConfig(4, 3, 3)
	cfg.ImageSize, cfg.ResizeSize, cfg.Stages, cfg.LSTMLayers = 32, 36, 2, 1
	cfgFile := filepath.Join(dir, "model.json")
	if err := os.WriteFile(cfgFile, cfg.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	args := func(steps int) []string {
		return []string{"train", "--synthetic", "--out", out, "--model-config", cfgFile, "--classes", "4,3,3",
			"--steps", strconv.Itoa(steps), "--batch", "2", "--checkpoint-every", "1", "--train-size", "8",
			"--val-size", "2", "--samples", "0", "--warmup", "1", "--resume"}
	}
	rng := rand.New(rand.NewPCG(7, 11))
	resumedRe := regexp.MustCompile(`msg=resuming dir=(ckpt-\d+)`)
	duringSave := 0
	prevNewest := ""
	for round := range 5 {
		cmd := exec.Command(bin, args(100000)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitDone := make(chan error, 1)
		go func() { waitDone <- cmd.Wait() }()
		// Wait until this process has saved at least one checkpoint of its own.
		start := newestStep(t, out)
		deadline := time.Now().Add(3 * time.Minute)
		for newestStep(t, out) <= start && time.Now().Before(deadline) {
			select {
			case err := <-waitDone:
				t.Fatalf("round %d: train exited early: %v\n%s", round, err, stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		if round%2 == 0 { // kill while a checkpoint is being written
			for !saveInProgress(out) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
		} else {
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		}
		if saveInProgress(out) {
			duringSave++
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-waitDone
		if m := resumedRe.FindStringSubmatch(stderr.String()); round > 0 {
			if m == nil || m[1] != prevNewest {
				t.Fatalf("round %d: resumed from %v, want the newest good checkpoint %s\n%s", round, m, prevNewest, stderr.String())
			}
		}
		prevNewest = checkAllCheckpointsLoad(t, out, round)
	}
	t.Logf("%d of 5 kills landed while a checkpoint was being written", duringSave)
	if duringSave < 3 {
		t.Fatalf("only %d of 5 kills landed during a checkpoint write", duringSave)
	}
	// A final, uninterrupted resume reaches its target.
	final := newestStep(t, out) + 2
	cmd := exec.Command(bin, args(final)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("final resume: %v\n%s", err, stderr.String())
	}
	if got := newestStep(t, out); got != final {
		t.Fatalf("final resume: newest checkpoint at step %d, want %d", got, final)
	}
}

// saveInProgress reports a SaveCheckpoint temporary directory in out.
func saveInProgress(out string) bool {
	m, _ := filepath.Glob(filepath.Join(out, ".ckpt-*.tmp-*"))
	return len(m) > 0
}

func newestStep(t *testing.T, out string) int {
	m, _ := filepath.Glob(filepath.Join(out, "ckpt-*"))
	best := 0
	for _, p := range m {
		if n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(p), "ckpt-")); err == nil && n > best {
			best = n
		}
	}
	return best
}

// checkAllCheckpointsLoad loads every ckpt-* of out and the one "latest" names, and returns the
// newest one's name.
func checkAllCheckpointsLoad(t *testing.T, out string, round int) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(out, "ckpt-*"))
	if len(m) == 0 {
		t.Fatalf("round %d: no checkpoint in %s", round, out)
	}
	newest := ""
	for _, p := range m {
		if _, _, err := models.LoadCheckpoint(p); err != nil {
			t.Fatalf("round %d: checkpoint %s does not load after SIGKILL: %v", round, p, err)
		}
		if filepath.Base(p) > newest {
			newest = filepath.Base(p)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, train.LatestFile))
	if err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	latest := strings.TrimSpace(string(b))
	if _, _, err := models.LoadCheckpoint(filepath.Join(out, latest)); err != nil {
		t.Fatalf("round %d: latest names %s, which does not load: %v", round, latest, err)
	}
	return newest
}
