package server

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/proto"

	"github.com/artnet/artnet/internal/errtext"
	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/server/kservepb"
)

// KServe v2 over gRPC (inference.GRPCInferenceService, server/kservepb).
//
// ModelInfer goes through the same stages as the HTTP routes: the tap (run by grpc-go when a
// stream opens, before its message is read) checks the token and takes one of the
// Config.BodyReads slots without waiting (RESOURCE_EXHAUSTED when none is free), and starts
// the message's deadline — the whole message must arrive within Config.ReadTimeout, else the
// stream is cancelled; a message over Config.MaxBodyBytes is refused by grpc-go
// (RESOURCE_EXHAUSTED). Once the message is in, the slot is given back, the message and what
// is decoded from it are charged to the memory budget (waiting up to AdmitWait), and the
// tensor goes to the same batcher, with the same queue admission and metrics.
//
// One difference from HTTP, written down: grpc-go reads a message whole before the handler
// runs, so a message is charged to the budget once it has arrived, not byte by byte; what
// arrives unaccounted at once is bounded by BodyReads × MaxBodyBytes.

const grpcService = "/inference.GRPCInferenceService/"

// grpcOpen are the methods served without a token (probes).
var grpcOpen = map[string]bool{grpcService + "ServerLive": true, grpcService + "ServerReady": true}

type grpcSlotKey struct{}

// grpcServer builds the gRPC server of s.
func (s *Server) grpcServer() *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(min(s.cfg.MaxBodyBytes, math.MaxInt32))),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxHeaderListSize(64 << 10),
		grpc.MaxConcurrentStreams(256), // per connection; ModelInfer streams also need a body-read slot
		grpc.InTapHandle(s.grpcTap),
		grpc.ChainUnaryInterceptor(s.grpcIntercept),
		grpc.ConnectionTimeout(s.cfg.ReadHeaderTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: s.cfg.IdleTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
	if tc := s.tlsConfig(); tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	gs := grpc.NewServer(opts...)
	kservepb.RegisterGRPCInferenceServiceServer(gs, &inferenceService{s: s})
	return gs
}

// grpcTap runs as a stream opens, before its message is read: token, body slot, deadline.
func (s *Server) grpcTap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if !grpcOpen[info.FullMethodName] {
		auth := ""
		if v := info.Header.Get("authorization"); len(v) > 0 {
			auth = v[0]
		}
		if !s.authorized(auth) {
			s.met.grpcRequests.WithLabelValues(info.FullMethodName, codes.Unauthenticated.String()).Inc()
			s.log.Info("grpc request", "method", info.FullMethodName, "code", codes.Unauthenticated.String())
			return nil, status.Error(codes.Unauthenticated, errUnauthenticated.Error())
		}
	}
	if info.FullMethodName != grpcService+"ModelInfer" {
		return ctx, nil
	}
	select {
	case s.bodySlots <- struct{}{}:
	default:
		s.met.grpcRequests.WithLabelValues(info.FullMethodName, codes.ResourceExhausted.String()).Inc()
		return nil, status.Errorf(codes.ResourceExhausted, "%v: all %d body-read slots taken", ErrBusy, cap(s.bodySlots))
	}
	ctx, cancel := context.WithCancelCause(ctx)
	var timer *time.Timer
	if s.cfg.ReadTimeout > 0 {
		timer = time.AfterFunc(s.cfg.ReadTimeout, func() { cancel(errSlowBody) })
	}
	end := sync.OnceFunc(func() {
		if timer != nil {
			timer.Stop()
		}
		<-s.bodySlots
	})
	context.AfterFunc(ctx, func() { end(); cancel(nil) }) // the stream ended (maybe before its handler ran)
	return context.WithValue(context.WithValue(ctx, grpcSlotKey{}, end), grpcOpenedKey{}, time.Now()), nil
}

type grpcOpenedKey struct{}

// endGRPCRead gives back the body slot of a ModelInfer whose message has arrived, and stops
// its read deadline.
func endGRPCRead(ctx context.Context) {
	if end, ok := ctx.Value(grpcSlotKey{}).(func()); ok {
		end()
	}
}

// grpcIntercept gives each call a request id (x-request-id metadata, else a new one, sent back
// in the header), a logger, metrics and a log line, and turns a panic into INTERNAL.
func (s *Server) grpcIntercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-request-id"); len(v) > 0 && validID.MatchString(v[0]) {
			id = v[0]
		}
	}
	ctx, span := s.startGRPCSpan(ctx, info.FullMethod)
	defer span.End()
	if tid := traceID(span); id == "" && tid != "" && metadataCarrier(mdOf(ctx)).Get("traceparent") != "" {
		id = tid
	}
	if id == "" {
		id = s.idPrefix + "-" + strconv.FormatUint(s.idSeq.Add(1), 10)
	}
	if opened, ok := ctx.Value(grpcOpenedKey{}).(time.Time); ok {
		stageAt(s.tracer, ctx, "receive body", opened, start)
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", id))
	log := s.log.With("request_id", id)
	ctx = context.WithValue(ctx, ctxKey{}, log)
	defer func() {
		if p := recover(); p != nil {
			log.Error("handler panicked", "panic", fmt.Sprint(p))
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
		code := status.Code(err)
		dur := time.Since(start)
		span.SetAttributes(attribute.String("rpc.grpc.status_code", code.String()), attribute.String("request_id", id))
		if code == codes.Internal || code == codes.Unknown {
			span.SetStatus(otelcodes.Error, code.String())
		}
		s.met.grpcRequests.WithLabelValues(info.FullMethod, code.String()).Inc()
		s.met.grpcLatency.WithLabelValues(info.FullMethod).Observe(dur.Seconds())
		lvl := slog.LevelInfo
		if code == codes.Internal || code == codes.Unknown {
			lvl = slog.LevelError
		}
		log.Log(ctx, lvl, "grpc request", "method", info.FullMethod, "code", code.String(), "ms", float64(dur.Microseconds())/1000)
	}()
	return h(ctx, req)
}

// grpcStatus turns an error into its gRPC status, by its HTTP status (statusOf).
func grpcStatus(ctx context.Context, err error) error {
	code := codes.Internal
	switch c := statusOf(err); c {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		code = codes.InvalidArgument
	case http.StatusNotFound:
		code = codes.NotFound
	case http.StatusUnauthorized:
		code = codes.Unauthenticated
	case http.StatusRequestTimeout:
		code = codes.DeadlineExceeded
	case http.StatusRequestEntityTooLarge:
		code = codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		code = codes.Unavailable
	case clientClosed:
		code = codes.Canceled
		if ctx.Err() == nil {
			code = codes.Internal // a context error that is not the client's
		}
	}
	msg := errtext.Fold(err.Error())
	if code == codes.Internal {
		logger(ctx, slog.Default()).Error("request failed", "err", err)
		msg = "internal error: " + msg
	}
	return status.Error(code, msg)
}

// inferenceService implements GRPCInferenceService.
type inferenceService struct {
	kservepb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

func (g *inferenceService) ServerLive(context.Context, *kservepb.ServerLiveRequest) (*kservepb.ServerLiveResponse, error) {
	return &kservepb.ServerLiveResponse{Live: true}, nil
}

func (g *inferenceService) ServerReady(context.Context, *kservepb.ServerReadyRequest) (*kservepb.ServerReadyResponse, error) {
	return &kservepb.ServerReadyResponse{Ready: g.s.notReady() == ""}, nil
}

func (g *inferenceService) checkModel(name, version string) error {
	if name != ModelName {
		return status.Errorf(codes.NotFound, "model %q: this server serves %q", name, ModelName)
	}
	if v := g.s.Version(); version != "" && version != v {
		return status.Errorf(codes.NotFound, "model %q version %q: the version served is %q", name, version, v)
	}
	return nil
}

func (g *inferenceService) ModelReady(_ context.Context, r *kservepb.ModelReadyRequest) (*kservepb.ModelReadyResponse, error) {
	if err := g.checkModel(r.GetName(), r.GetVersion()); err != nil {
		return nil, err
	}
	return &kservepb.ModelReadyResponse{Ready: g.s.notReady() == ""}, nil
}

func (g *inferenceService) ServerMetadata(context.Context, *kservepb.ServerMetadataRequest) (*kservepb.ServerMetadataResponse, error) {
	return &kservepb.ServerMetadataResponse{Name: "artnet", Version: spec.Version, Extensions: serverExtensions}, nil
}

func (g *inferenceService) ModelMetadata(_ context.Context, r *kservepb.ModelMetadataRequest) (*kservepb.ModelMetadataResponse, error) {
	if err := g.checkModel(r.GetName(), r.GetVersion()); err != nil {
		return nil, err
	}
	md := g.s.Metadata()
	tm := func(ts []TensorMetadata) []*kservepb.ModelMetadataResponse_TensorMetadata {
		var out []*kservepb.ModelMetadataResponse_TensorMetadata
		for _, t := range ts {
			shape := make([]int64, len(t.Shape))
			for i, d := range t.Shape {
				shape[i] = int64(d)
			}
			out = append(out, &kservepb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.Datatype, Shape: shape})
		}
		return out
	}
	return &kservepb.ModelMetadataResponse{Name: md.Name, Versions: md.Versions, Platform: md.Platform, Inputs: tm(md.Inputs), Outputs: tm(md.Outputs)}, nil
}

func (g *inferenceService) ModelInfer(ctx context.Context, req *kservepb.ModelInferRequest) (*kservepb.ModelInferResponse, error) {
	resp, err := g.s.inferGRPC(ctx, req)
	if err != nil {
		return nil, grpcStatus(ctx, err)
	}
	return resp, nil
}

// inferGRPC runs one ModelInfer request.
func (s *Server) inferGRPC(ctx context.Context, req *kservepb.ModelInferRequest) (*kservepb.ModelInferResponse, error) {
	endGRPCRead(ctx)
	arr := s.b.arriving()
	defer arr.cancel()
	res := &reservation{m: s.mem, wait: s.cfg.AdmitWait}
	defer res.release()
	// The message as received, and a converted copy of raw FP32 contents.
	msg := int64(proto.Size(req))
	if err := res.grow(ctx, 2*msg); err != nil {
		return nil, err
	}
	in, err := parseGRPCInfer(req, s.mcfg.ImageSize, s.cfg.MaxInferBatch, s.Version())
	if err != nil {
		return nil, err
	}
	outs, err := s.selectOutputs(in.outputs)
	if err != nil {
		return nil, err
	}
	data := in.data
	if in.files != nil {
		if data, err = s.decodeImages(ctx, res, in.files); err != nil {
			return nil, err
		}
	}
	r, version, err := s.b.doVersion(ctx, data, in.n, arr)
	if err != nil {
		return nil, err
	}
	_, sp := s.stage(ctx, "respond")
	defer sp.End()
	out := &kservepb.ModelInferResponse{ModelName: ModelName, ModelVersion: version, Id: req.GetId()}
	for _, name := range outs {
		v := r.Output(name)
		t := &kservepb.ModelInferResponse_InferOutputTensor{Name: name, Datatype: "FP32", Shape: []int64{int64(in.n), int64(len(v) / in.n)}}
		if in.raw {
			out.RawOutputContents = append(out.RawOutputContents, rawFloats(v))
		} else {
			t.Contents = &kservepb.InferTensorContents{Fp32Contents: v}
		}
		out.Outputs = append(out.Outputs, t)
	}
	return out, nil
}

// serverExtensions are the v2 protocol extensions served (both protocols).
var serverExtensions = []string{"model_repository", "binary_tensor_data"}

// grpcRunning is a gRPC server being served (a nil one stands for none).
type grpcRunning struct {
	gs   *grpc.Server
	done chan error
}

func (s *Server) startGRPC(ln net.Listener) *grpcRunning {
	g := &grpcRunning{gs: s.grpcServer(), done: make(chan error, 1)}
	go func() { g.done <- g.gs.Serve(ln) }()
	return g
}

// errc is where Serve's error arrives (never, for none).
func (g *grpcRunning) errc() <-chan error {
	if g == nil {
		return nil
	}
	return g.done
}

// stop stops serving: gracefully (calls in flight finish) until ctx ends, then at once; now
// skips the graceful part. It waits for Serve to return.
func (g *grpcRunning) stop(ctx context.Context, now bool) {
	if g == nil {
		return
	}
	if !now {
		graceful := make(chan struct{})
		go func() { defer close(graceful); g.gs.GracefulStop() }()
		select {
		case <-graceful:
		case <-ctx.Done():
		}
	}
	g.gs.Stop()
	<-g.done
}

func listenAddr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

func mdOf(ctx context.Context) metadata.MD {
	md, _ := metadata.FromIncomingContext(ctx)
	return md
}
