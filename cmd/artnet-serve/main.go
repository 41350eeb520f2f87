// Command artnet-serve is the lean serving binary of artnet: `serve` (HTTP, ONNX Runtime) and
// `predict` (ONNX Runtime), without the GoMLX training stack. Both commands are the ones of the
// full artnet binary (cmd/internal/command): same flags, exit codes and error lines.
//
//	artnet-serve serve --model model.onnx --addr 127.0.0.1:8080
//	artnet-serve predict --model model.onnx painting.jpg
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

func newApp() *cli.App {
	return &cli.App{
		Name:     "artnet-serve",
		Usage:    "serve or run an exported artnet ONNX model (ONNX Runtime only)",
		Version:  spec.Version,
		Flags:    []cli.Flag{command.LogLevelFlag()},
		Before:   command.SetLogLevel,
		Commands: []*cli.Command{command.Serve(), command.Predict(command.PredictOptions{})},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := command.Main(ctx, newApp(), os.Args, os.Stderr)
	stop()
	os.Exit(code)
}
