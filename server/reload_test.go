package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt"
	"github.com/artnet/artnet/onnxrt/runtimetest"
	"github.com/artnet/artnet/predict"
)

// counted records its Close.
type counted struct {
	predict.Predictor
	closed atomic.Int32
}

func (c *counted) Close() error {
	c.closed.Add(1)
	return c.Predictor.Close()
}

func openTiny(t testing.TB, m runtimetest.Model) predict.Predictor {
	t.Helper()
	p, err := onnxrt.OpenBytes("tiny.onnx", m.Bytes(), onnxrt.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func inferVersion(t *testing.T, url string) (int, string) {
	t.Helper()
	size := spec.Tiny().ImageSize
	var r InferResponse
	resp, body := post(t, url+"/v2/models/artnet/infer", "application/json", inferBody(t, []int{1, 3, size, size}, runtimetest.Images(1, size, 5), ""), &r)
	if resp.StatusCode != 200 {
		return resp.StatusCode, string(body)
	}
	return 200, r.ModelVersion
}

// A reload swaps the model while a run is in flight: the run finishes on the old model (its
// answer says version 1), later requests get version 2, and the old model is closed only
// after its run. Refused replacements leave the served model alone; unload and load work.
func TestReloadNoDroppedRequest(t *testing.T) {
	base := openTiny(t, runtimetest.Model{Config: spec.Tiny()})
	t.Cleanup(func() { _ = base.Close() }) // gated's Close does not close it
	g := newGated(base, true)
	first := &counted{Predictor: g}
	var loads []*counted
	next := func(context.Context) (predict.Predictor, string, error) {
		c := &counted{Predictor: openTiny(t, runtimetest.Model{Config: spec.Tiny()})}
		loads = append(loads, c)
		return c, "", nil
	}
	var loader atomic.Value
	loader.Store(Loader(next))
	cfg := testConfig()
	cfg.Workers = 2 // one run blocks on the gate, the other serves the new model
	cfg.OwnModel = true
	cfg.Loader = func(ctx context.Context) (predict.Predictor, string, error) { return loader.Load().(Loader)(ctx) }
	r := serve(t, cfg, first, nil)

	type answer struct {
		code    int
		version string
	}
	inflight := make(chan answer, 1)
	size := spec.Tiny().ImageSize
	body := inferBody(t, []int{1, 3, size, size}, runtimetest.Images(1, size, 5), "")
	go func() { // no t.Fatal off the test's goroutine
		resp, err := http.Post(r.url+"/v2/models/artnet/infer", "application/json", bytes.NewReader(body))
		if err != nil {
			inflight <- answer{0, err.Error()}
			return
		}
		defer resp.Body.Close()
		var ir InferResponse
		err = json.NewDecoder(resp.Body).Decode(&ir)
		inflight <- answer{resp.StatusCode, fmt.Sprint(ir.ModelVersion, err)}
	}()
	<-g.entered // the run holds the old model
	v, err := r.s.Reload(context.Background())
	if err != nil || v != "2" {
		t.Fatalf("Reload: %q %v", v, err)
	}
	if first.closed.Load() != 0 {
		t.Fatal("the old model was closed while a run used it")
	}
	if c, v := inferVersion(t, r.url); c != 200 || v != "2" {
		t.Fatalf("after the reload: %d %s, want 200 from version 2", c, v)
	}
	close(g.release)
	if a := <-inflight; a.code != 200 || a.version != "1<nil>" {
		t.Fatalf("the request in flight during the reload: %d %s, want 200 from version 1", a.code, a.version)
	}
	waitFor(t, "old model closed", func() bool { return first.closed.Load() == 1 })

	// Refused: a loader error, and a model with another input size (closed by Reload).
	loader.Store(Loader(func(context.Context) (predict.Predictor, string, error) {
		return nil, "", errors.New("model.onnx: not an ONNX model")
	}))
	if _, err := r.s.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "not an ONNX model") {
		t.Errorf("broken file: %v", err)
	}
	other := spec.Tiny()
	other.ImageSize, other.ResizeSize = 32, 40
	wrong := &counted{Predictor: openTiny(t, runtimetest.Model{Config: other})}
	loader.Store(Loader(func(context.Context) (predict.Predictor, string, error) { return wrong, "", nil }))
	if _, err := r.s.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "model input") || strings.Contains(err.Error(), "\n") {
		t.Errorf("another input size: %v, want one line about the model input", err)
	}
	if wrong.closed.Load() != 1 {
		t.Errorf("a refused model was not closed")
	}
	if c, v := inferVersion(t, r.url); c != 200 || v != "2" {
		t.Fatalf("after refused reloads: %d %s, want 200 from version 2", c, v)
	}

	// The repository extension: unload (503, not ready), load (version 3).
	loader.Store(Loader(next))
	resp, body := post(t, r.url+"/v2/repository/models/artnet/unload", "", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("unload: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "unloaded model closed", func() bool { return loads[0].closed.Load() == 1 })
	if c, _ := inferVersion(t, r.url); c != http.StatusServiceUnavailable {
		t.Errorf("infer while unloaded: %d, want 503", c)
	}
	if resp, _ := get(t, r.url+"/v2/models/artnet/ready", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("ready while unloaded: %d, want 503", resp.StatusCode)
	}
	var idx []RepositoryModel
	if resp, body := post(t, r.url+"/v2/repository/index", "", nil, &idx); resp.StatusCode != 200 || len(idx) != 1 || idx[0].State != "UNAVAILABLE" {
		t.Errorf("index while unloaded: %d %s", resp.StatusCode, body)
	}
	if resp, body := post(t, r.url+"/v2/repository/models/artnet/load", "", nil, nil); resp.StatusCode != 200 || !strings.Contains(string(body), `"3"`) {
		t.Fatalf("load: %d %s", resp.StatusCode, body)
	}
	if c, v := inferVersion(t, r.url); c != 200 || v != "3" {
		t.Errorf("after load: %d %s, want version 3", c, v)
	}
	if resp, body := get(t, r.url+"/v2/repository/index", &idx); resp.StatusCode != 200 || idx[0].Version != "3" || idx[0].State != "READY" {
		t.Errorf("index: %s", body)
	}
	if resp, _ := get(t, r.url+"/v2/models/artnet/versions/3", nil); resp.StatusCode != 200 {
		t.Errorf("metadata of version 3: %d", resp.StatusCode)
	}
	if resp, _ := get(t, r.url+"/v2/models/artnet/versions/1", nil); resp.StatusCode != 404 {
		t.Errorf("metadata of version 1: %d, want 404", resp.StatusCode)
	}
	if resp, body := post(t, r.url+"/v2/repository/models/resnet/load", "", nil, nil); resp.StatusCode != 404 {
		t.Errorf("load of another model: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(r.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`artnet_model_version_info{version="3"} 1`, `artnet_model_reloads_total{result="ok"} 2`, `artnet_model_reloads_total{result="refused"} 2`} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if n := loads[1].closed.Load(); n != 1 {
		t.Errorf("the model served at the end was closed %d times by Serve's return, want 1", n)
	}
}
