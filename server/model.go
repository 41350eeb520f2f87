package server

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/preprocess"
)

// Model reload and versions.
//
// The served model sits in a modelSlot: each model run takes a reference on the current
// model (servedModel.acquire) and gives it back after the run, so a swap (Reload) never
// interrupts a run — runs already started finish on the old model, later ones take the new
// one, and the old model is closed once its last run ends. A replacement is checked
// completely before the swap (the loader's own validation, the same input and output contract
// as the served model, a warm-up run of one image) and refused otherwise, with the old model
// still serving.

// ErrModelUnloaded is returned (wrapped) while the model is unloaded (POST
// /v2/repository/models/artnet/unload); the server answers 503.
var ErrModelUnloaded = errors.New("model unloaded")

// Loader loads the model to serve (again): for Reload. It returns the model and its version
// (e.g. the folder name in a Triton-style repository; "" lets the server count versions).
type Loader func(ctx context.Context) (predict.Predictor, string, error)

// servedModel is one loaded model and the runs using it.
type servedModel struct {
	p       predict.Predictor
	version string
	owned   bool         // the Server closes it once replaced and idle
	refs    atomic.Int64 // the slot's reference (1 while current) + runs in flight
	closed  chan struct{}
	onClose func(error)
}

func newServed(p predict.Predictor, version string, owned bool, onClose func(error)) *servedModel {
	m := &servedModel{p: p, version: version, owned: owned, closed: make(chan struct{}), onClose: onClose}
	m.refs.Store(1)
	return m
}

// acquire takes a reference for a run; false once the model has been released for good.
func (m *servedModel) acquire() bool {
	for {
		n := m.refs.Load()
		if n <= 0 {
			return false
		}
		if m.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release gives a reference back; the last one closes an owned model.
func (m *servedModel) release() {
	if m.refs.Add(-1) != 0 {
		return
	}
	var err error
	if m.owned {
		err = m.p.Close()
	}
	close(m.closed)
	if m.onClose != nil {
		m.onClose(err)
	}
}

// modelSlot holds the current model (nil while unloaded).
type modelSlot struct {
	cur atomic.Pointer[servedModel]
}

// acquire returns the current model with a reference taken, or ErrModelUnloaded.
func (s *modelSlot) acquire() (*servedModel, error) {
	for {
		m := s.cur.Load()
		if m == nil {
			return nil, fmt.Errorf("%w: load it again (POST /v2/repository/models/%s/load or SIGHUP)", ErrModelUnloaded, ModelName)
		}
		if m.acquire() {
			return m, nil
		}
		// Swapped out and released between Load and acquire: look again.
	}
}

// swap installs m (nil: unload) and releases the previous model's slot reference.
func (s *modelSlot) swap(m *servedModel) *servedModel {
	old := s.cur.Swap(m)
	if old != nil {
		old.release()
	}
	return old
}

// Version is the version of the model being served now ("" while unloaded).
func (s *Server) Version() string {
	if m := s.models.cur.Load(); m != nil {
		return m.version
	}
	return ""
}

// Reload loads the model again through Config.Loader, validates it (the same input and output
// contract as the served model, one warm-up run), and swaps it in: requests in flight finish
// on the old model, which is closed after their runs. A model that fails is refused with the
// reason and the old one keeps serving. Reloads are serialized.
func (s *Server) Reload(ctx context.Context) (string, error) {
	if s.cfg.Loader == nil {
		return "", errors.New("reload: this server has no model loader (serve a model file or repository to reload it)")
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.stopped {
		return "", errors.New("reload: the server has stopped")
	}
	p, version, err := s.cfg.Loader(ctx)
	if err != nil {
		s.met.reloads.WithLabelValues("refused").Inc()
		return "", fmt.Errorf("reload: %w", err)
	}
	if err := s.checkReplacement(ctx, p); err != nil {
		s.met.reloads.WithLabelValues("refused").Inc()
		return "", errors.Join(fmt.Errorf("reload: %w", err), p.Close())
	}
	if version == "" {
		s.versionSeq++
		version = fmt.Sprint(s.versionSeq)
	}
	old := s.models.swap(newServed(p, version, true, s.closedLog(version)))
	s.met.reloads.WithLabelValues("ok").Inc()
	s.setVersionMetric(version)
	prev := ""
	if old != nil {
		prev = old.version
	}
	s.log.Info("model reloaded", "version", version, "previous", prev)
	return version, nil
}

// Unload stops serving the model (requests get 503) and closes it after its runs end.
func (s *Server) Unload() {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if old := s.models.swap(nil); old != nil {
		s.log.Info("model unloaded", "version", old.version)
	}
	s.setVersionMetric("")
}

func (s *Server) closedLog(version string) func(error) {
	return func(err error) {
		if err != nil {
			s.log.Error("closing a replaced model", "version", version, "err", err)
		} else {
			s.log.Debug("replaced model closed", "version", version)
		}
	}
}

// checkReplacement refuses a model whose contract differs from the served one's (its input,
// preprocessing, classes and attention grid: what requests in flight, clients and the
// metadata rely on), then runs it once on a blank image.
func (s *Server) checkReplacement(ctx context.Context, p predict.Predictor) error {
	c := p.Config()
	if err := c.Validate(); err != nil {
		return fmt.Errorf("model config: %w", err)
	}
	if po := preprocess.FromConfig(c); po.ImageSize != s.popt.ImageSize || po.ResizeSize != s.popt.ResizeSize || po.Mean != s.popt.Mean || po.Std != s.popt.Std {
		return fmt.Errorf("model input: %d px (resize %d, mean %v, std %v) differs from the served model's %d px (resize %d, mean %v, std %v); restart the server to change it",
			po.ImageSize, po.ResizeSize, po.Mean, po.Std, s.popt.ImageSize, s.popt.ResizeSize, s.popt.Mean, s.popt.Std)
	}
	if !reflect.DeepEqual(c.Classes, s.mcfg.Classes) {
		return errors.New("model classes differ from the served model's; restart the server to change them")
	}
	if c.Tokens() != s.mcfg.Tokens() {
		return fmt.Errorf("model attention grid has %d tokens, the served model's %d; restart the server to change it", c.Tokens(), s.mcfg.Tokens())
	}
	res, err := p.Run(ctx, make([]float32, s.popt.Len()), 1)
	if err == nil {
		err = predict.CheckResult(c, res, 1)
	}
	if err == nil {
		for _, t := range spec.Tasks {
			if len(res.Probs[t]) != s.mcfg.NumClasses(t) {
				err = fmt.Errorf("model run: output %s has %d values, want %d", t, len(res.Probs[t]), s.mcfg.NumClasses(t))
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("warm-up run: %w", err)
	}
	return nil
}

// reloadState is the part of Server that Reload serializes.
type reloadState struct {
	reloadMu   sync.Mutex
	versionSeq int
	stopped    bool // Serve has returned: no more reloads
}
