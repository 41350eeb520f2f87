package main

import (
	artgraph "github.com/artnet/artnet/graph"
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/train"
)

// openGoMLX opens a checkpoint (or the newest loadable one of a training folder) as a
// GoMLX predictor.
func openGoMLX(dir string) (*train.Predictor, error) {
	dir, err := train.ResolveCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	mctx, cfg, err := models.LoadCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	backend, err := artgraph.NewBackend("")
	if err != nil {
		return nil, err
	}
	p, err := train.NewPredictor(backend, mctx, cfg)
	if err != nil {
		backend.Finalize()
		return nil, err
	}
	return p, nil
}
