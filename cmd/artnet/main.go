// Command artnet trains DeepArtNet in GoMLX, exports it to ONNX and predicts the style, genre
// and artist of paintings with ONNX Runtime (or GoMLX, for parity checks).
//
//	artnet train --synthetic --out out/demo
//	artnet export --checkpoint out/demo --onnx model.onnx
//	artnet predict --model model.onnx painting.jpg
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/server"
)

// exitError carries an exit code without printing a stack of wrapped messages twice.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newApp().RunContext(ctx, os.Args)
	stop()
	if err != nil {
		var ee *exitError
		code := 1
		if errors.As(err, &ee) {
			code = ee.code
		}
		if msg := errtext.OneLine(err.Error()); msg != "" {
			fmt.Fprintln(os.Stderr, "artnet:", msg)
		}
		os.Exit(code)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "artnet",
		Usage:   "recognize the style, genre and artist of a painting (DeepArtNet: GoMLX training, ONNX Runtime serving)",
		Version: spec.Version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		},
		Before: func(c *cli.Context) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(c.String("log-level"))); err != nil {
				return fmt.Errorf("flag --log-level: %w", err)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
			return nil
		},
		Commands: []*cli.Command{
			trainCommand(),
			exportCommand(),
			predictCommand(),
			server.Command(),
			doctorCommand(),
			importCommand(),
			evaluateCommand(),
			plotCommand(),
			benchCommand(),
			dataCommand(),
			{Name: "model", Usage: "inspect model configurations", Subcommands: []*cli.Command{summaryCommand()}},
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main prints and exits
	}
}
