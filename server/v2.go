package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

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

const modelVersion = "1"

// Metadata returns the v2 metadata of the served model.
func (s *Server) Metadata() ModelMetadata {
	md := ModelMetadata{
		Name: ModelName, Versions: []string{modelVersion}, Platform: "onnxruntime_onnx",
		Inputs: []TensorMetadata{{Name: spec.InputName, Datatype: "FP32", Shape: []int{-1, 3, s.mcfg.ImageSize, s.mcfg.ImageSize}}},
	}
	for _, t := range spec.Tasks {
		md.Outputs = append(md.Outputs, TensorMetadata{Name: t, Datatype: "FP32", Shape: []int{-1, s.mcfg.NumClasses(t)}})
	}
	md.Outputs = append(md.Outputs, TensorMetadata{Name: spec.OutputAttention, Datatype: "FP32", Shape: []int{-1, s.mcfg.Tokens()}})
	return md
}

func (s *Server) handleV2Server(w http.ResponseWriter, r *http.Request) {
	if allow(w, r, http.MethodGet, http.MethodHead) {
		writeJSON(w, http.StatusOK, map[string]any{"name": "artnet", "version": spec.Version, "extensions": []string{}})
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
	if err := s.b.admit(); err != nil {
		s.fail(w, r, err)
		return
	}
	resp, err := s.infer(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// infer parses, checks and runs a v2 request; the caller has admitted it.
func (s *Server) infer(w http.ResponseWriter, r *http.Request) (*InferResponse, error) {
	submitted := false
	defer func() {
		if !submitted {
			s.b.cancelAdmit()
		}
	}()
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, clientErr(http.StatusUnsupportedMediaType, "content type %q: want application/json", ct)
		}
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, clientErr(http.StatusRequestEntityTooLarge, "request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, s.cfg.MaxBodyBytes)
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), r.ContentLength)
	if err != nil {
		return nil, s.bodyErr(err)
	}
	var req InferRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, clientErr(http.StatusBadRequest, "request JSON: %v", err)
	}
	body = nil
	images, n, err := s.checkInfer(&req)
	if err != nil {
		return nil, err
	}
	outs, err := s.selectOutputs(&req)
	if err != nil {
		return nil, err
	}
	submitted = true
	res, err := s.b.do(r.Context(), images, n)
	if err != nil {
		return nil, err
	}
	resp := &InferResponse{ModelName: ModelName, ModelVersion: modelVersion, ID: req.ID}
	for _, name := range outs {
		v := res.Attention
		if name != spec.OutputAttention {
			v = res.Probs[name]
		}
		resp.Outputs = append(resp.Outputs, InferOutput{Name: name, Datatype: "FP32", Shape: []int{n, len(v) / n}, Data: v})
	}
	return resp, nil
}

func (s *Server) checkInfer(req *InferRequest) ([]float32, int, error) {
	if len(req.Inputs) != 1 {
		return nil, 0, clientErr(http.StatusBadRequest, "want exactly one input (%q), got %d", spec.InputName, len(req.Inputs))
	}
	in := req.Inputs[0]
	size := s.mcfg.ImageSize
	switch {
	case in.Name != spec.InputName:
		return nil, 0, clientErr(http.StatusBadRequest, "input %q: the model's input is %q", in.Name, spec.InputName)
	case in.Datatype != "FP32":
		return nil, 0, clientErr(http.StatusBadRequest, `input %q: datatype %q, want "FP32"`, spec.InputName, in.Datatype)
	case len(in.Shape) != 4 || in.Shape[1] != 3 || in.Shape[2] != size || in.Shape[3] != size:
		return nil, 0, clientErr(http.StatusBadRequest, "input %q: shape %v, want [B,3,%d,%d]", spec.InputName, in.Shape, size, size)
	case in.Shape[0] < 1 || in.Shape[0] > s.cfg.MaxInferBatch:
		return nil, 0, clientErr(http.StatusBadRequest, "input %q: batch %d, want 1..%d", spec.InputName, in.Shape[0], s.cfg.MaxInferBatch)
	}
	n := in.Shape[0]
	want := n * 3 * size * size
	data, err := flatFloats(in.Data, want)
	if err != nil {
		return nil, 0, clientErr(http.StatusBadRequest, "input %q: data: %v", spec.InputName, err)
	}
	if len(data) != want {
		return nil, 0, clientErr(http.StatusBadRequest, "input %q: data has %d values, shape %v needs %d", spec.InputName, len(data), in.Shape, want)
	}
	return data, n, nil
}

func (s *Server) selectOutputs(req *InferRequest) ([]string, error) {
	all := spec.OutputNames()
	if len(req.Outputs) == 0 {
		return all, nil
	}
	var outs []string
	for _, o := range req.Outputs {
		known := false
		for _, a := range all {
			known = known || a == o.Name
		}
		if !known {
			return nil, clientErr(http.StatusBadRequest, "requested output %q: the model's outputs are style, genre, artist, attention", o.Name)
		}
		outs = append(outs, o.Name)
	}
	return outs, nil
}

// flatFloats reads a JSON array of numbers, flat or nested (row-major), as float32; it stops
// with an error past limit values.
func flatFloats(raw json.RawMessage, limit int) ([]float32, error) {
	if len(raw) == 0 {
		return nil, errors.New("missing")
	}
	var flat []float32
	if err := json.Unmarshal(raw, &flat); err == nil {
		return flat, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	out := make([]float32, 0, limit)
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '[':
				depth++
			case ']':
				depth--
			default:
				return nil, fmt.Errorf("want an array of numbers, found %q", v.String())
			}
		case json.Number:
			if depth == 0 {
				return nil, errors.New("want an array of numbers")
			}
			f, err := strconv.ParseFloat(string(v), 32)
			if err != nil {
				return nil, fmt.Errorf("value %s is not a float32", v)
			}
			if len(out) == limit {
				return nil, fmt.Errorf("more than the %d values the shape needs", limit)
			}
			out = append(out, float32(f))
		default:
			return nil, fmt.Errorf("want numbers, found %v", tok)
		}
	}
	if depth != 0 {
		return nil, errors.New("unbalanced brackets")
	}
	return out, nil
}
