package server

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/artnet/artnet/models/spec"
	"github.com/artnet/artnet/onnxrt/runtimetest"
	"github.com/artnet/artnet/server/kservepb"
)

// slowGRPC opens a ModelInfer stream by hand (HTTP/2 frames), declares a message of
// declared bytes, sends a few and stalls. It reports on ended how long the server took to
// end the stream (trailers, RST_STREAM or closing the connection).
func slowGRPC(t *testing.T, addr string, declared uint32, ended chan<- time.Duration) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, h := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", grpcService + "ModelInfer"},
		{":authority", addr}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
	}
	prefix := []byte{0, byte(declared >> 24), byte(declared >> 16), byte(declared >> 8), byte(declared), 1, 2, 3}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteData(1, false, prefix); err != nil {
		t.Fatal(err)
	}
	go func() { // the only reader and, from here on, the only writer of fr
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				ended <- time.Since(start)
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					_ = fr.WritePing(true, f.Data)
				}
			case *http2.RSTStreamFrame:
				ended <- time.Since(start)
				return
			case *http2.HeadersFrame:
				if f.StreamEnded() {
					ended <- time.Since(start)
					return
				}
			}
		}
	}()
	return conn
}

// Slow gRPC uploads hold a body-read slot only until Config.ReadTimeout, then their streams
// end; while they hold every slot a further ModelInfer is refused RESOURCE_EXHAUSTED at once
// (before its message is read) and probes still answer; afterwards good requests are served.
func TestGRPCSlowUploads(t *testing.T) {
	cfg := testConfig()
	cfg.ReadTimeout = 1500 * time.Millisecond
	cfg.BodyReads = 4
	b := serveBoth(t, cfg, tinyModel(t), nil, nil)
	addr := b.conn.Target()
	ended := make(chan time.Duration, cfg.BodyReads)
	for i := 0; i < cfg.BodyReads; i++ {
		c := slowGRPC(t, addr, 200<<10, ended)
		defer c.Close()
	}
	waitFor(t, "slow streams holding every slot", func() bool { return len(b.s.bodySlots) == cfg.BodyReads })
	size := spec.Tiny().ImageSize
	good := tensorRequest(runtimetest.Images(1, size, 2), 1, size, true)
	ctx := context.Background()
	if _, err := b.client.ModelInfer(ctx, good); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("ModelInfer while slow uploads hold every slot: %v, want ResourceExhausted", err)
	}
	if r, err := b.client.ServerLive(ctx, &kservepb.ServerLiveRequest{}); err != nil || !r.GetLive() {
		t.Errorf("ServerLive during slow uploads: %v %v", r, err)
	}
	for i := 0; i < cfg.BodyReads; i++ {
		select {
		case d := <-ended:
			if d < cfg.ReadTimeout {
				t.Errorf("a slow stream ended after %v, before ReadTimeout %v", d, cfg.ReadTimeout)
			}
			t.Logf("slow stream %d ended after %v", i, d.Round(time.Millisecond))
		case <-time.After(cfg.ReadTimeout + 10*time.Second):
			t.Fatalf("slow stream %d still open %v after ReadTimeout", i, 10*time.Second)
		}
	}
	waitFor(t, "body slots given back", func() bool { return len(b.s.bodySlots) == 0 })
	if _, err := b.client.ModelInfer(ctx, good); err != nil {
		t.Errorf("ModelInfer after the slow uploads: %v", err)
	}
	if u := b.s.mem.inUse(); u != 0 {
		t.Errorf("memory still reserved: %d bytes", u)
	}
}
