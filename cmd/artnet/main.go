// Command artnet trains DeepArtNet in GoMLX, exports it to ONNX and predicts the style, genre
// and artist of paintings with ONNX Runtime (or GoMLX, for parity checks).
//
//	artnet train --synthetic --out out/demo
//	artnet export --checkpoint out/demo --onnx model.onnx
//	artnet predict --model model.onnx painting.jpg
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/cmd/internal/command"
	"github.com/artnet/artnet/models/spec"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := command.Main(ctx, newApp(), os.Args, os.Stderr)
	stop()
	os.Exit(code)
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "artnet",
		Usage:   "recognize the style, genre and artist of a painting (DeepArtNet: GoMLX training, ONNX Runtime serving)",
		Version: spec.Version,
		Flags:   []cli.Flag{command.LogLevelFlag()},
		Before:  command.SetLogLevel,
		Commands: []*cli.Command{
			trainCommand(),
			exportCommand(),
			quantizeCommand(),
			predictCommand(),
			command.Serve(),
			doctorCommand(),
			importCommand(),
			evaluateCommand(),
			calibrateCommand(),
			plotCommand(),
			benchCommand(),
			dataCommand(),
			{Name: "model", Usage: "inspect model configurations", Subcommands: []*cli.Command{summaryCommand()}},
		},
	}
}
