package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are a Server's Prometheus collectors, in a registry of its own (so that servers in
// one process, e.g. tests, do not collide).
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec   // route, code
	latency    *prometheus.HistogramVec // route
	batchSize  prometheus.Histogram
	runSeconds prometheus.Histogram
	dropped    prometheus.Counter

	grpcRequests *prometheus.CounterVec   // method, code
	grpcLatency  *prometheus.HistogramVec // method
	reloads      *prometheus.CounterVec   // result: ok, refused
	version      *prometheus.GaugeVec     // version: 1 for the one served
}

func newMetrics(queueDepth func() float64, extra []prometheus.Collector) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artnet_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "artnet_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "artnet_batch_size", Help: "Images per model run.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
		runSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "artnet_model_run_seconds", Help: "Duration of one model run (one batch).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "artnet_requests_dropped_total", Help: "Queued requests dropped before a model run because their client went away.",
		}),
		grpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artnet_grpc_requests_total", Help: "gRPC calls by method and status code.",
		}, []string{"method", "code"}),
		grpcLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "artnet_grpc_request_duration_seconds", Help: "gRPC call latency by method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "artnet_model_reloads_total", Help: "Model reloads by result (ok, refused).",
		}, []string{"result"}),
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "artnet_model_version_info", Help: "1 for the model version being served (none while unloaded).",
		}, []string{"version"}),
	}
	m.reg.MustRegister(m.grpcRequests, m.grpcLatency, m.reloads, m.version)
	m.reg.MustRegister(m.requests, m.latency, m.batchSize, m.runSeconds, m.dropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "artnet_queue_depth", Help: "Requests decoded and ready, not yet in a model run.",
		}, queueDepth),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.reg.MustRegister(extra...)
	return m
}
