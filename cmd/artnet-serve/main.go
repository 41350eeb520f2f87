// Command artnet-serve is the lean serving binary of artnet: `serve` (HTTP, ONNX Runtime) and
// `predict` (ONNX Runtime), without the GoMLX training stack.
//
//	artnet-serve serve --model model.onnx --addr 127.0.0.1:8080
//	artnet-serve predict --model model.onnx painting.jpg
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/server"
)

func newApp() *cli.App {
	return &cli.App{
		Name:     "artnet-serve",
		Usage:    "serve or run an exported artnet ONNX model (ONNX Runtime only)",
		Version:  spec.Version,
		Commands: []*cli.Command{server.Command(), server.PredictCommand()},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp().RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "artnet-serve:", strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " "))
		os.Exit(1)
	}
}
