package train

// Checkpoints on disk: saving ckpt-<step>, pruning old ones atomically, finding the newest that
// loads, and the best checkpoint kept by validation score (best/, best.json).

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	gomlxcontext "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/artnet/artnet/internal/atomicfile"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/models/spec"
)

// save writes checkpoint ckpt-<step>, points "latest" at it and prunes old ones.
func (t *trainer) save(step int) error {
	name := CheckpointName(step)
	dir := filepath.Join(t.o.OutDir, name)
	began := time.Now()
	if err := models.SaveCheckpointWithOptions(t.mctx, t.cfg, dir, t.o.Record); err != nil {
		return fmt.Errorf("train: checkpoint at step %d: %w", step, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(t.o.OutDir, LatestFile), []byte(name+"\n"), 0o644); err != nil {
		return fmt.Errorf("train: checkpoint at step %d: %w", step, err)
	}
	t.res.CheckpointDir, t.lastSave = dir, step
	if t.o.EMADecay > 0 {
		if err := t.saveEMA(step); err != nil {
			return err
		}
	}
	t.log.Info("checkpoint", "step", step, "dir", dir, "seconds", round(time.Since(began).Seconds()))
	all, err := listCheckpoints(t.o.OutDir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	for i, c := range all {
		if i >= t.o.KeepCheckpoints && c.name != name {
			removeCheckpoint(t.o.OutDir, c.name, t.log)
		}
	}
	// Removals a kill interrupted.
	stale, _ := filepath.Glob(filepath.Join(t.o.OutDir, "."+checkpointPfx+"*"+removingSfx))
	for _, d := range stale {
		_ = os.RemoveAll(d)
	}
	return nil
}

const removingSfx = ".removing"

// removeCheckpoint deletes checkpoint name of outDir without ever leaving a half-deleted
// ckpt-* behind (a kill during os.RemoveAll would): it is first renamed out of the ckpt-*
// namespace (one atomic rename), then removed.
func removeCheckpoint(outDir, name string, log *slog.Logger) {
	doomed := filepath.Join(outDir, "."+name+removingSfx)
	if err := os.Rename(filepath.Join(outDir, name), doomed); err != nil {
		log.Warn("could not remove an old checkpoint", "dir", name, "err", err)
		return
	}
	if err := os.RemoveAll(doomed); err != nil {
		log.Warn("could not remove an old checkpoint", "dir", name, "err", err)
	}
}

type checkpointEntry struct {
	name string
	step int
}

// listCheckpoints returns OutDir's ckpt-<step> directories, newest first.
func listCheckpoints(outDir string) ([]checkpointEntry, error) {
	entries, err := os.ReadDir(outDir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []checkpointEntry
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), checkpointPfx) {
			continue
		}
		step, err := strconv.Atoi(strings.TrimPrefix(e.Name(), checkpointPfx))
		if err != nil || step < 0 {
			continue
		}
		out = append(out, checkpointEntry{e.Name(), step})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].step > out[j].step })
	return out, nil
}

// loadNewest loads the checkpoint named by "latest" if it loads, else the newest ckpt-<step>
// that does. Checkpoints newer than "latest" (a crash between the save and the pointer
// update) are tried too, newest first.
func loadNewest(outDir string, all []checkpointEntry, log *slog.Logger) (*gomlxcontext.Context, spec.Config, string, error) {
	var errs []error
	for _, c := range all {
		mctx, cfg, err := models.LoadCheckpoint(filepath.Join(outDir, c.name))
		if err != nil {
			log.Warn("checkpoint does not load: trying an older one", "dir", c.name, "err", err)
			errs = append(errs, err)
			continue
		}
		if v := mctx.GetVariableByScopeAndName(gomlxcontext.RootScope, optimizers.GlobalStepVariableName); v == nil {
			err := fmt.Errorf("checkpoint %s has no global step: not a training checkpoint", c.name)
			log.Warn("checkpoint unusable: trying an older one", "dir", c.name, "err", err)
			errs = append(errs, err)
			continue
		}
		if latest, err := os.ReadFile(filepath.Join(outDir, LatestFile)); err == nil && strings.TrimSpace(string(latest)) != c.name {
			log.Info("resuming from a checkpoint other than the latest pointer", "dir", c.name, "latest", strings.TrimSpace(string(latest)))
		}
		log.Info("resuming", "dir", c.name, "step", c.step)
		return mctx, cfg, c.name, nil
	}
	return nil, spec.Config{}, "", fmt.Errorf("no checkpoint in %s loads: %w", outDir, errors.Join(errs...))
}

// Score is the validation metric used to pick the best checkpoint: the mean top-1 accuracy over
// the tasks present (0 when none is).
func Score(acc map[string]float64) float64 {
	if len(acc) == 0 {
		return 0
	}
	var s float64
	for _, v := range acc {
		s += v
	}
	return s / float64(len(acc))
}

// Best-checkpoint files in OutDir (Options.KeepBest).
const (
	BestDir  = "best"
	BestFile = "best.json"
)

// BestInfo is the content of best.json.
type BestInfo struct {
	Step     int                `json:"step"`
	Score    float64            `json:"score"`
	Accuracy map[string]float64 `json:"accuracy"`
}

// ReadBest reads OutDir/best.json (nil, nil when there is none).
func ReadBest(outDir string) (*BestInfo, error) {
	b, err := os.ReadFile(filepath.Join(outDir, BestFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var bi BestInfo
	if err := json.Unmarshal(b, &bi); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(outDir, BestFile), err)
	}
	return &bi, nil
}

// keepBest saves the current state as OutDir/best when its score beats best.json's. The
// checkpoint is written first (atomically), then best.json; a crash in between leaves a best
// checkpoint newer than best.json says, which is only ever better.
func (t *trainer) keepBest(step int, acc map[string]float64) error {
	prev, err := ReadBest(t.o.OutDir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	score := Score(acc)
	if prev != nil && prev.Step != step && score <= prev.Score {
		return nil
	}
	if err := models.SaveCheckpointWithOptions(t.mctx, t.cfg, filepath.Join(t.o.OutDir, BestDir), t.o.Record); err != nil {
		return fmt.Errorf("train: best checkpoint at step %d: %w", step, err)
	}
	b, _ := json.MarshalIndent(BestInfo{Step: step, Score: score, Accuracy: acc}, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(t.o.OutDir, BestFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	t.log.Info("best checkpoint", "step", step, "score", round(score))
	return nil
}
