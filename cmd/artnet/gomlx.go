package main

import (
	"github.com/artnet/artnet/models"
	"github.com/artnet/artnet/train"
)

// openGoMLX opens a checkpoint (or the newest loadable one of a training folder) as a
// GoMLX predictor.
func openGoMLX(dir string) (*models.Predictor, error) {
	dir, err := train.ResolveCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	return models.OpenPredictor(dir, "")
}
