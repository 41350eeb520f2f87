package server

import (
	"net/http"
)

// The v2 model repository extension (Triton's and KServe's), for the one model: index, load
// (Reload: the model file again, or the newest version of a repository) and unload; and the
// versioned v2 routes (/v2/models/artnet/versions/{version}[/infer]), which answer 404 for a
// version other than the one served.

// RepositoryModel is one entry of POST|GET /v2/repository/index.
type RepositoryModel struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	State   string `json:"state"` // READY or UNAVAILABLE
	Reason  string `json:"reason,omitempty"`
}

func (s *Server) handleRepoIndex(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	m := RepositoryModel{Name: ModelName, Version: s.Version(), State: "READY"}
	if m.Version == "" {
		m.State, m.Reason = "UNAVAILABLE", "unloaded"
	}
	writeJSON(w, http.StatusOK, []RepositoryModel{m})
}

func (s *Server) repoModel(w http.ResponseWriter, r *http.Request) bool {
	if !allow(w, r, http.MethodPost) {
		return false
	}
	if name := r.PathValue("name"); name != ModelName {
		writeError(w, http.StatusNotFound, "model "+name+": this server serves "+ModelName)
		return false
	}
	return true
}

// handleRepoLoad reloads the model (Reload): 200 with the version now served, or 400 with the
// reason a replacement was refused (the old model keeps serving).
func (s *Server) handleRepoLoad(w http.ResponseWriter, r *http.Request) {
	if !s.repoModel(w, r) {
		return
	}
	v, err := s.Reload(r.Context())
	if err != nil {
		logger(r.Context(), s.log).Warn("reload refused", "err", err)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": ModelName, "version": v})
}

func (s *Server) handleRepoUnload(w http.ResponseWriter, r *http.Request) {
	if !s.repoModel(w, r) {
		return
	}
	s.Unload()
	writeJSON(w, http.StatusOK, map[string]string{"name": ModelName})
}

// versionServed answers 404 unless the path's version is the one served.
func (s *Server) versionServed(w http.ResponseWriter, r *http.Request) bool {
	if v, cur := r.PathValue("version"), s.Version(); v != cur {
		writeError(w, http.StatusNotFound, "model "+ModelName+" version "+v+": the version served is "+cur)
		return false
	}
	return true
}

func (s *Server) handleV2MetadataVersion(w http.ResponseWriter, r *http.Request) {
	if s.versionServed(w, r) {
		s.handleV2Metadata(w, r)
	}
}

func (s *Server) handleInferVersion(w http.ResponseWriter, r *http.Request) {
	if s.versionServed(w, r) {
		s.handleInfer(w, r)
	}
}

// setVersionMetric sets artnet_model_version_info to the version served ("" for none).
func (s *Server) setVersionMetric(version string) {
	s.met.version.Reset()
	if version != "" {
		s.met.version.WithLabelValues(version).Set(1)
	}
}

// releaseModel lets go of the model served when Serve returns: an owned one is closed now
// (the batcher has stopped, so no run holds it).
func (s *Server) releaseModel() {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.stopped = true
	if old := s.models.swap(nil); old != nil {
		<-old.closed
	}
}
