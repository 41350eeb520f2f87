package command

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/predict"
	"github.com/artnet/artnet/server"
)

// Model files for serve: --model FILE, or --model-repo DIR in Triton's layout
// (DIR/artnet/<version>/model.onnx, versions positive integers, the largest served), and the
// loader that Reload (SIGHUP, POST /v2/repository/models/artnet/load) calls.

// newestVersion finds the largest version folder of DIR/artnet that holds a model.onnx.
func newestVersion(repo string) (path, version string, err error) {
	dir := filepath.Join(repo, server.ModelName)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", "", fmt.Errorf("flag --model-repo: %v (want %s/<version>/model.onnx)", err, dir)
	}
	best := int64(-1)
	for _, e := range ents {
		n, perr := strconv.ParseInt(e.Name(), 10, 64)
		if perr != nil || n < 1 || !e.IsDir() || n <= best {
			continue
		}
		if _, serr := os.Stat(filepath.Join(dir, e.Name(), "model.onnx")); serr != nil {
			continue
		}
		best, version = n, e.Name()
	}
	if best < 0 {
		return "", "", fmt.Errorf("flag --model-repo: no version folder with a model.onnx in %s (want %s/<version>/model.onnx, version 1, 2, …)", dir, dir)
	}
	return filepath.Join(dir, version, "model.onnx"), version, nil
}

// serveLoader returns the loader of the serve command (nil when serving the built-in model)
// and the version of the first model.
func serveLoader(c *cli.Context) (server.Loader, error) {
	repo, file := c.String("model-repo"), c.String("model")
	if repo != "" && file != "" {
		return nil, fmt.Errorf("flags --model and --model-repo: give one, not both")
	}
	if repo == "" && file == "" {
		return nil, nil
	}
	o, err := ortOptions(c)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (predict.Predictor, string, error) {
		path, version := file, ""
		if repo != "" {
			if path, version, err = newestVersion(repo); err != nil {
				return nil, "", err
			}
		}
		m, err := onnxrt.Open(path, o)
		if err != nil {
			return nil, "", err
		}
		return m, version, nil
	}, nil
}

// reloadOnHUP reloads the credentials and the model on each SIGHUP until ctx ends; a failure
// is logged in one line and the server keeps what it had.
func reloadOnHUP(ctx context.Context, srv *server.Server, log *slog.Logger) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
			}
			log.Info("SIGHUP: reloading")
			if err := srv.ReloadCredentials(); err != nil {
				log.Error("reloading credentials refused", "err", errtext.OneLine(err))
			}
			if srv.Config().Loader == nil {
				log.Info("no --model or --model-repo: no model to reload")
				continue
			}
			if _, err := srv.Reload(ctx); err != nil {
				log.Error("model reload refused; the old model keeps serving", "err", errtext.OneLine(err))
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		<-done
	}
}
