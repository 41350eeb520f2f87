package server

import (
	"encoding/json"
	"mime"
	"net/http"

	"github.com/artnet/artnet/models/spec"
)

// The KServe/Triton "v2" inference protocol (REST), for the one model "artnet".

// TensorMetadata describes an input or output in the v2 model metadata; -1 is a variable
// dimension.
type TensorMetadata struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Shape    []int  `json:"shape"`
}

// ModelMetadata is GET /v2/models/artnet.
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// InferInput is one input tensor of an infer request. Data is row-major, flat or nested.
type InferInput struct {
	Name     string          `json:"name"`
	Shape    []int           `json:"shape"`
	Datatype string          `json:"datatype"`
	Data     json.RawMessage `json:"data"`
}

// InferRequest is the body of POST /v2/models/artnet/infer. Outputs, when given, selects the
// outputs returned (default: all).
type InferRequest struct {
	ID      string       `json:"id,omitempty"`
	Inputs  []InferInput `json:"inputs"`
	Outputs []struct {
		Name string `json:"name"`
	} `json:"outputs,omitempty"`
}

// InferOutput is one output tensor of an infer response.
type InferOutput struct {
	Name     string    `json:"name"`
	Datatype string    `json:"datatype"`
	Shape    []int     `json:"shape"`
	Data     []float32 `json:"data"`
}

// InferResponse is the answer of POST /v2/models/artnet/infer.
type InferResponse struct {
	ModelName    string        `json:"model_name"`
	ModelVersion string        `json:"model_version"`
	ID           string        `json:"id,omitempty"`
	Outputs      []InferOutput `json:"outputs"`
}

// Metadata returns the v2 metadata of the served model.
func (s *Server) Metadata() ModelMetadata {
	md := ModelMetadata{
		Name: ModelName, Versions: []string{}, Platform: "onnxruntime_onnx",
		Inputs: []TensorMetadata{
			{Name: spec.InputName, Datatype: "FP32", Shape: []int{-1, 3, s.mcfg.ImageSize, s.mcfg.ImageSize}},
			{Name: InputBytesName, Datatype: "BYTES", Shape: []int{-1}},
		},
	}
	if v := s.Version(); v != "" {
		md.Versions = []string{v}
	}
	for _, t := range spec.Tasks {
		md.Outputs = append(md.Outputs, TensorMetadata{Name: t, Datatype: "FP32", Shape: []int{-1, s.mcfg.NumClasses(t)}})
	}
	md.Outputs = append(md.Outputs, TensorMetadata{Name: spec.OutputAttention, Datatype: "FP32", Shape: []int{-1, s.mcfg.Tokens()}})
	return md
}

func (s *Server) handleV2Server(w http.ResponseWriter, r *http.Request) {
	if allow(w, r, http.MethodGet, http.MethodHead) {
		writeJSON(w, http.StatusOK, map[string]any{"name": "artnet", "version": spec.Version, "extensions": serverExtensions})
	}
}

func (s *Server) handleV2Metadata(w http.ResponseWriter, r *http.Request) {
	if allow(w, r, http.MethodGet, http.MethodHead) {
		writeJSON(w, http.StatusOK, s.Metadata())
	}
}

func (s *Server) handleInfer(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	resp, err := s.infer(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	_, sp := s.stage(r.Context(), "respond")
	writeJSON(w, http.StatusOK, resp)
	sp.End()
}

// infer parses the body as it arrives (parseV2: the memory of its data reserved first, the
// shape checked before any data is read), then runs it: the request takes a model-queue slot
// only once its tensor is complete.
func (s *Server) infer(w http.ResponseWriter, r *http.Request) (*InferResponse, error) {
	if h := r.Header.Get("Inference-Header-Content-Length"); h != "" {
		return s.inferBinary(w, r, h) // the binary data extension (v2binary.go)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, clientErr(http.StatusUnsupportedMediaType, "content type %q: want application/json", ct)
		}
	}
	ctx := r.Context()
	body, err := s.startBody(w, r)
	if err != nil {
		return nil, err
	}
	defer body.done()
	arr := s.b.arriving()
	defer arr.cancel()
	if err := body.mem.grow(ctx, maxPendingJSON+64<<10); err != nil { // the decoder's buffer
		return nil, err
	}
	_, sp := s.stage(ctx, "receive body")
	req, err := parseV2(body.body, s.mcfg.ImageSize, s.cfg.MaxInferBatch,
		func(n int64) error { return body.mem.grow(ctx, n) }, s.bodyErr)
	body.endRead()
	endStage(sp, err)
	if err != nil {
		return nil, err
	}
	outs, err := s.selectOutputs(req.Outputs)
	if err != nil {
		return nil, err
	}
	n := req.Shape[0]
	res, version, err := s.b.doVersion(ctx, req.Data, n, arr)
	if err != nil {
		return nil, err
	}
	resp := &InferResponse{ModelName: ModelName, ModelVersion: version, ID: req.ID}
	for _, name := range outs {
		v := res.Output(name)
		resp.Outputs = append(resp.Outputs, InferOutput{Name: name, Datatype: "FP32", Shape: []int{n, len(v) / n}, Data: v})
	}
	return resp, nil
}

func (s *Server) selectOutputs(names []string) ([]string, error) {
	all := spec.OutputNames()
	if len(names) == 0 {
		return all, nil
	}
	for _, o := range names {
		known := false
		for _, a := range all {
			known = known || a == o
		}
		if !known {
			return nil, clientErr(http.StatusBadRequest, "requested output %q: the model's outputs are style, genre, artist, attention", o)
		}
	}
	return names, nil
}
