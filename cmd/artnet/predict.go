package main

import (
	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/cmd/internal/command"
	"github.com/artnet/artnet/predict"
)

// predictCommand is the shared `predict` (cmd/internal/command) with the GoMLX runtime
// (--runtime gomlx), which only this binary links.
func predictCommand() *cli.Command {
	return command.Predict(command.PredictOptions{
		OpenGoMLX: func(dir string) (predict.Predictor, error) { return openGoMLX(dir) },
	})
}
