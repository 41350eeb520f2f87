package train

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/artnet/artnet/wikiart"
)

// DefaultConfigFile is the training configuration `artnet train` reads without --config.
const DefaultConfigFile = "configs/train.yaml"

// Request is what a command asks of a WikiArt training run, as its flags say it; Plan turns it
// into PhasesOptions. Everything that decides (which configuration, which phases, where a
// resumed run continues, how the overrides apply) is Plan's: the command only parses flags.
type Request struct {
	// ConfigFile is the training configuration (--config); "" → the run's own run.json when
	// resuming, else DefaultConfigFile.
	ConfigFile string
	// Out is the output folder (--out); "" → the run folder of ResumeFrom, else DefaultOut.
	Out        string
	DefaultOut string
	// Phase is the phase to train ("" or "all": every phase, or from a resumed checkpoint's on).
	Phase string
	// Resume continues an earlier run; ResumeFrom is the checkpoint or run folder given after
	// --resume ("" → the run in Out).
	Resume     bool
	ResumeFrom string
	// From is the checkpoint the first selected phase starts from (--from).
	From string
	// Data are data roots (--data, repeatable): the first replaces data.root (and data.images),
	// the others data.extra. None: $ARTNET_DATA, else the configuration's.
	Data []string
	// Overrides are typed flags, applied first; Set are path=value overrides applied after them
	// (FileConfig.Set).
	Overrides Overrides
	Set       []string

	MaxTime  time.Duration
	Prefetch int
	Log      *slog.Logger
	Progress func(ph PhaseConfig, steps int) (func(StepMetrics), func(EvalMetrics), func(), *slog.Logger)
}

// Overrides are the configuration fields `artnet train` has flags for; nil or false: not given.
// Epochs, LR and Batch apply to the selected phases.
type Overrides struct {
	Seed         *int64
	Backend      *string
	Pretrained   *string
	AllowPartial bool
	Workers      *int
	Strict       bool
	CacheMem     *string
	Epochs, LR   *float64
	Batch        *int
}

// sets returns the overrides as FileConfig.Set paths, phase fields for each phase in phases.
func (o Overrides) sets(phases []string) []string {
	var s []string
	add := func(path string, v any) { s = append(s, fmt.Sprintf("%s=%v", path, v)) }
	str := func(path string, v string) { s = append(s, path+"="+strconv.Quote(v)) }
	if o.Seed != nil {
		add("train.seed", *o.Seed)
	}
	if o.Backend != nil {
		str("train.backend", *o.Backend)
	}
	if o.Pretrained != nil {
		str("train.pretrained", *o.Pretrained)
	}
	if o.AllowPartial {
		add("train.allow_partial", true)
	}
	if o.Workers != nil {
		add("data.workers", *o.Workers)
	}
	if o.Strict {
		add("data.strict", true)
	}
	if o.CacheMem != nil {
		str("data.cache_mem", *o.CacheMem)
	}
	for _, p := range phases {
		if o.Epochs != nil {
			add("phases."+p+".epochs", strconv.FormatFloat(*o.Epochs, 'g', -1, 64))
		}
		if o.LR != nil {
			add("phases."+p+".lr", strconv.FormatFloat(*o.LR, 'g', -1, 64))
		}
		if o.Batch != nil {
			add("phases."+p+".batch", *o.Batch)
		}
	}
	return s
}

// Plan resolves a Request: the configuration (ConfigFile, else a resumed run's run.json), the
// phases to train (Phase, else from a resumed checkpoint's phase on), where the first starts,
// the overrides, the data roots and the cache budget. Errors are one line naming the flag or
// field.
func Plan(r Request) (PhasesOptions, error) {
	o := PhasesOptions{Out: r.Out, Resume: r.Resume, MaxTime: r.MaxTime, From: r.From, Prefetch: r.Prefetch,
		Log: r.Log, Progress: r.Progress}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	resumeFrom := r.ResumeFrom
	if resumeFrom != "" && !r.Resume {
		return o, fmt.Errorf("train: a checkpoint (%s) is read only after --resume", resumeFrom)
	}
	if resumeFrom != "" && o.From != "" {
		return o, fmt.Errorf("flags --resume %s and --from %s: give one", resumeFrom, o.From)
	}

	// The configuration: --config, else (resuming) the run's own run.json, else the default file.
	var runOut, ckPhase string
	if resumeFrom != "" {
		var ok bool
		if runOut, ckPhase, ok = LocateRun(resumeFrom); !ok && r.ConfigFile == "" {
			return o, fmt.Errorf("flag --resume %s: not inside a training output folder (no %s above it): pass --config and --phase, or use --from", resumeFrom, RunConfigFile)
		}
		if o.Out == "" && runOut != "" {
			o.Out = runOut
		}
		if abs, _ := filepath.Abs(resumeFrom); runOut != "" && abs == runOut {
			resumeFrom = "" // --resume RUN_FOLDER: continue that run
		}
	}
	if o.Out == "" {
		o.Out = r.DefaultOut
	}
	var fc *FileConfig
	o.ConfigFile = r.ConfigFile
	if o.ConfigFile == "" {
		o.ConfigFile = DefaultConfigFile
		if o.Resume {
			src := o.Out
			if runOut != "" {
				src = runOut
			}
			if rc, err := ReadRunConfig(src); err == nil {
				fc, o.ConfigFile = &rc.Config, rc.File
				o.Log.Info("training options from the earlier run", "file", src+"/"+RunConfigFile)
			} else if !os.IsNotExist(err) {
				return o, err
			}
		}
	}
	if fc == nil {
		var err error
		if fc, err = LoadFileConfig(o.ConfigFile); err != nil {
			return o, err
		}
	}

	// Which phases, and where the first starts from.
	phase := r.Phase
	switch {
	case phase != "" && phase != "all":
		o.Phases = []string{phase}
		if resumeFrom != "" && phase != ckPhase {
			o.From = resumeFrom // a new phase from another phase's checkpoint
		}
	case ckPhase != "":
		for i, p := range fc.Phases { // continue the run from the checkpoint's phase on
			if p.Name == ckPhase {
				for _, q := range fc.Phases[i:] {
					o.Phases = append(o.Phases, q.Name)
				}
			}
		}
	case resumeFrom != "":
		return o, fmt.Errorf("flag --resume %s: not inside a phase folder of a run: say which --phase starts from it", resumeFrom)
	}
	sel, err := selectPhases(fc, o.Phases, o.ConfigFile)
	if err != nil {
		return o, err
	}
	selected := make([]string, len(sel))
	for i, p := range sel {
		selected[i] = p.Name
	}

	// Overrides: the typed flags, then --set.
	if err := fc.Set(append(r.Overrides.sets(selected), r.Set...)...); err != nil {
		return o, fmt.Errorf("%s: %w", o.ConfigFile, err)
	}
	if p := fc.Train.Pretrained; p != "" {
		if _, err := os.Stat(p); err != nil {
			return o, fmt.Errorf("pretrained weights (--pretrained / train.pretrained): %w", err)
		}
	}
	first := ""
	if len(r.Data) > 0 {
		first = r.Data[0]
	}
	if root, from := wikiart.ResolveRoot(first, fc.Data.Root); from != "config" {
		fc.Data.Root, fc.Data.Images = root, ""
	}
	if len(r.Data) > 1 {
		fc.Data.Extra = slices.Clone(r.Data[1:])
	}
	if o.CacheMem, err = ParseBytes("--cache-mem / data.cache_mem", fc.Data.CacheMem); err != nil {
		return o, fmt.Errorf("training config %s: %w", o.ConfigFile, err)
	}
	o.Config = fc
	return o, nil
}
