package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// grpcCollector is an OTLP/gRPC trace collector: the real
// opentelemetry.proto.collector.trace.v1.TraceService over a real gRPC
// server, decoding into the same receiver as the OTLP/HTTP tests.
type grpcCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	recv *otlpReceiver
}

func (g *grpcCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	raw, err := proto.Marshal(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(raw))
	r.Header.Set("Content-Type", "application/x-protobuf")
	w := httptest.NewRecorder()
	g.recv.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		return nil, status.Error(codes.InvalidArgument, w.Body.String())
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// TestTracesExportOverOTLPGRPC: with OTEL_EXPORTER_OTLP_PROTOCOL=grpc, a
// real herald serve exports the submit → deliver trace to a gRPC collector:
// the request, the decision and the worker's delivery arrive as one trace,
// and the action's events name it.
func TestTracesExportOverOTLPGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	recv := &otlpReceiver{}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, &grpcCollector{recv: recv})
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()

	p := &proc{addr: freeAddr(t), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	p.cmd = exec.Command(binary, "serve", "--listen", p.addr, "--data-dir", t.TempDir())
	p.cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+ln.Addr().String(), "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_RESOURCE_ATTRIBUTES=service.instance.id=grpc-herald", "OTEL_BSP_SCHEDULE_DELAY=100", "OTEL_TRACES_SAMPLER=always_on")
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _, _ = p.cmd.Process.Wait() })
	waitFor(t, 60*time.Second, "ready", func() (bool, string) {
		r, err := http.Get("http://" + p.addr + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		r.Body.Close()
		return r.StatusCode == 200, p.stderr.String()
	})
	key := keyPattern.FindString(p.stdout.String())
	m := accountPattern.FindStringSubmatch(p.stdout.String())
	if key == "" || m == nil {
		t.Fatalf("no bootstrap key or account printed: %q", p.stdout.String())
	}
	res := p.call(t, "POST", "/v1/actions", key, map[string]any{"kind": "send_message", "account": m[1], "target": "-100515151",
		"purpose": "transactional", "text": "over grpc"})
	a, _ := res["action"].(map[string]any)
	if a == nil || a["status"] != "scheduled" {
		t.Fatalf("submit: %v", res)
	}
	id := a["id"].(string)
	var got map[string]any
	waitFor(t, 60*time.Second, "delivered", func() (bool, string) {
		got = p.call(t, "GET", "/v1/actions/"+id, key, nil)
		a, _ := got["action"].(map[string]any)
		return a["status"] == "delivered", fmt.Sprint(a["status"])
	})
	_ = p.cmd.Process.Signal(os.Interrupt) // a graceful stop flushes the last spans
	_, _ = p.cmd.Process.Wait()

	spans, _ := recv.snapshot()
	traceID := ""
	for _, s := range spans {
		if s.name == "worker.deliver" && s.attrs["herald.action.id"] == id {
			traceID = s.traceID
		}
	}
	if traceID == "" {
		t.Fatalf("no worker.deliver of %s arrived over gRPC; spans: %v", id, names(spans))
	}
	var trace []string
	for _, s := range spans {
		if s.traceID == traceID {
			if s.process != "grpc-herald" {
				t.Errorf("span %s from %q, want the resource's service.instance.id", s.name, s.process)
			}
			trace = append(trace, s.name)
		}
	}
	for _, want := range []string{"HTTP POST", "pipeline.commit", "policy.decide", "worker.deliver", "telegram.call", "delivery.record"} {
		if !slices.Contains(trace, want) {
			t.Errorf("the trace lacks %s: %v", want, trace)
		}
	}
	events, _ := got["events"].([]any)
	if len(events) < 4 {
		t.Fatalf("events %v", events)
	}
	for _, e := range events {
		if ev := e.(map[string]any); ev["trace_id"] != traceID {
			t.Errorf("event %v carries trace %v, want %s", ev["to"], ev["trace_id"], traceID)
		}
	}
}
