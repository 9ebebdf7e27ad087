package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/integration/servers"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// uploadChunk is the size of the gRPC messages of large uploads.
const uploadChunk = 1 * mib

// countingWriter counts the bytes written to it and discards them.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// throughputSetup is what one throughput scenario compares: a gateway
// whose region us is store, a direct client of store, and an SSE-S3 MinIO
// with its client; sseDefault, when set, is a second SSE-S3 baseline
// reported without a target.
type throughputSetup struct {
	scenario         string
	sizes            []int64
	gateway          *gatewayProc
	store            *servers.MinIO
	direct           *minio.Core
	sse              *servers.MinIO
	directSSE        *minio.Core
	sseDefault       *servers.MinIO
	directSSEDefault *minio.Core
	// relay, when set, is a relay in front of store, measured beside the
	// gateway as the floor of any process in its place (relay_test.go).
	relay *relayProc
}

// throughput measures upload and download MiB/s of large artifacts: the
// gateway against direct unencrypted PutObject/GetObject on MinIO A and
// against MinIO S's own SSE-S3 (scenario 1).
func (h *harness) throughput(t *testing.T, rep *report) {
	h.runThroughput(t, rep, throughputSetup{
		scenario: "1 throughput", sizes: h.plan.largeSizes,
		gateway: h.startGateway(t), store: h.a, direct: h.directA, sse: h.s, directSSE: h.directS,
	})
}

// throughputNoCompat is scenario 1 with every MinIO started with
// --no-compat (no MD5 of what it stores, as docs/operations.md suggests
// for a MinIO that serves sealgate), at the first size only; SSE-S3 on a
// default MinIO (MinIO S) is reported beside it, as what a user would run
// instead.
func (h *harness) throughputNoCompat(t *testing.T, rep *report) {
	h.runThroughput(t, rep, throughputSetup{
		scenario: "1b throughput, MinIO --no-compat", sizes: h.plan.largeSizes[:1],
		gateway: h.startGatewayOn(t, h.n, h.directN), store: h.n, direct: h.directN, sse: h.sn, directSSE: h.directSN,
		sseDefault: h.s, directSSEDefault: h.directS, relay: startRelay(t, h.n),
	})
}

func (h *harness) runThroughput(t *testing.T, rep *report, su throughputSetup) {
	g := su.gateway
	ctx := context.Background()
	for i, size := range su.sizes {
		data := h.payload[:size]
		key := fmt.Sprintf("large/%d", size)
		vs := []variant{
			{"gateway", func(int) (map[string]float64, error) {
				return h.gatewayRoundTrip(g, cpuMeter{"gateway": g.pid, "store": su.store.PID(), "client": 0}, data)
			}},
			{"direct", func(int) (map[string]float64, error) {
				return directRoundTrip(ctx, su.direct, cpuMeter{"store": su.store.PID(), "client": 0}, bucketDirect, key, data)
			}},
			{"sse", func(int) (map[string]float64, error) {
				return directRoundTrip(ctx, su.directSSE, cpuMeter{"store": su.sse.PID(), "client": 0}, bucketSSE, key, data)
			}},
		}
		if su.sseDefault != nil {
			vs = append(vs, variant{"sse, default MinIO", func(int) (map[string]float64, error) {
				return directRoundTrip(ctx, su.directSSEDefault, cpuMeter{"store": su.sseDefault.PID(), "client": 0}, bucketSSE, key, data)
			}})
		}
		for _, rv := range relayVariants(su.relay) {
			vs = append(vs, variant{rv.name, func(int) (map[string]float64, error) {
				return su.relay.roundTrip(cpuMeter{"gateway": su.relay.pid, "store": su.store.PID(), "client": 0}, "relay/"+key, data, rv.aes)
			}})
		}
		s, err := interleave(t, su.scenario+" "+sizeName(size), i == 0, h.plan.rounds, vs)
		if err != nil {
			t.Fatal(err)
		}
		if dir := os.Getenv("SEALGATE_BENCH_PROFILE"); dir != "" && su.sseDefault == nil && i == len(su.sizes)-1 {
			h.profileGateway(t, g, data, dir)
		}
		scenario := su.scenario + " " + sizeName(size)
		for _, dir := range []string{"upload", "download"} {
			// Wall clock: the gateway against what a user would pick
			// instead, MinIO encrypting by itself.
			wantWall := 1.0
			if dir == "download" {
				wantWall = 0.9
			}
			direct := rep.add(scenario, dir, "direct", "MiB/s", s.get("direct", dir)).baseline()
			sse := rep.add(scenario, dir, "sse", "MiB/s", s.get("sse", dir)).vs(direct, ">=", 0)
			gw := rep.add(scenario, dir, "gateway", "MiB/s", s.get("gateway", dir)).vs(direct, ">=", 0).vs(sse, ">=", wantWall)
			if su.sseDefault != nil {
				def := rep.add(scenario, dir, "sse, default MinIO", "MiB/s", s.get("sse, default MinIO", dir)).vs(direct, ">=", 0)
				gw.vs(def, ">=", 0)
			}
			for _, rv := range relayVariants(su.relay) {
				rep.add(scenario, dir, rv.name, "MiB/s", s.get(rv.name, dir)).vs(direct, ">=", 0).vs(sse, ">=", 0)
			}
			// CPU per GiB of each process: the servers' sum (gateway and
			// its store) against SSE-S3's store, the gateway alone against
			// an absolute bound, and the store's work for the gateway
			// against its work for a direct client moving the same bytes.
			m := dir + " server CPU"
			sseCPU := rep.add(scenario, m, "sse", "s/GiB", s.get("sse", m)).baseline()
			rep.add(scenario, m, "direct", "s/GiB", s.get("direct", m)).vs(sseCPU, "<=", 0)
			gwCPU := rep.add(scenario, m, "gateway", "s/GiB", s.get("gateway", m)).vs(sseCPU, "<=", 1.0)
			if su.sseDefault != nil {
				def := rep.add(scenario, m, "sse, default MinIO", "s/GiB", s.get("sse, default MinIO", m)).vs(sseCPU, "<=", 0)
				gwCPU.vs(def, "<=", 0)
			}
			for _, rv := range relayVariants(su.relay) {
				rep.add(scenario, m, rv.name, "s/GiB", s.get(rv.name, m)).vs(sseCPU, "<=", 0)
			}
			m = dir + " gateway CPU"
			rep.add(scenario, m, "gateway", "s/GiB", s.get("gateway", m)).limit("<=", 1.2, "1.2 s/GiB")
			for _, rv := range relayVariants(su.relay) {
				rep.add(scenario, m, rv.name, "s/GiB", s.get(rv.name, m))
			}
			m = dir + " store CPU"
			directStore := rep.add(scenario, m, "direct", "s/GiB", s.get("direct", m)).baseline()
			rep.add(scenario, m, "sse", "s/GiB", s.get("sse", m)).vs(directStore, "<=", 0)
			rep.add(scenario, m, "gateway", "s/GiB", s.get("gateway", m)).vs(directStore, "<=", 1.1)
			for _, rv := range relayVariants(su.relay) {
				rep.add(scenario, m, rv.name, "s/GiB", s.get(rv.name, m)).vs(directStore, "<=", 0)
			}
			m = dir + " client CPU"
			directClient := rep.add(scenario, m, "direct", "s/GiB", s.get("direct", m)).baseline()
			rep.add(scenario, m, "sse", "s/GiB", s.get("sse", m)).vs(directClient, "<=", 0)
			rep.add(scenario, m, "gateway", "s/GiB", s.get("gateway", m)).vs(directClient, "<=", 0)
		}
	}
}

// relayVariants names the variants of a relay: without and with AES-GCM;
// none without a relay.
func relayVariants(r *relayProc) []struct {
	name string
	aes  bool
} {
	if r == nil {
		return nil
	}
	return []struct {
		name string
		aes  bool
	}{{"relay", false}, {"relay + AES-GCM", true}}
}

// gatewayRoundTrip uploads data through the gateway with its size declared,
// reads it back, checks the length, and deletes the staged object directly
// from MinIO A (untimed) so that rounds do not fill the disk.
func (h *harness) gatewayRoundTrip(g *gatewayProc, cpu cpuMeter, data []byte) (map[string]float64, error) {
	size := int64(len(data))
	var name string
	out, err := roundTrip(cpu, size, func() error {
		a, err := g.client.Upload(g.ctx, &sealgatev1.UploadHeader{
			Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_VIDEO_RECORDING, SipZone: "us-west",
			ContentType: "video/mp4", SizeBytes: &size,
		}, bytes.NewReader(data), uploadChunk)
		name = a.GetName()
		return err
	}, func() (int64, error) {
		var w countingWriter
		_, err := g.client.Read(g.ctx, name, &w)
		return w.n, err
	})
	if err != nil {
		return nil, err
	}
	return out, h.removeStaged(g, name)
}

// roundTrip times put and then get of size bytes, reading the CPU of cpu's
// processes around each, and checks that get read size bytes. It returns
// MiB/s and CPU per GiB of each direction, as perGiB names them.
func roundTrip(cpu cpuMeter, size int64, put func() error, get func() (int64, error)) (map[string]float64, error) {
	c0, err := cpu.snap()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := put(); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	up := time.Since(start)
	c1, err := cpu.snap()
	if err != nil {
		return nil, err
	}
	start = time.Now()
	n, err := get()
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	down := time.Since(start)
	c2, err := cpu.snap()
	if err != nil {
		return nil, err
	}
	if n != size {
		return nil, fmt.Errorf("read %d bytes, want %d", n, size)
	}
	out := map[string]float64{"upload": mibPerSec(size, up), "download": mibPerSec(size, down)}
	c0.perGiB(c1, size, "upload", out)
	c1.perGiB(c2, size, "download", out)
	return out, nil
}

// removeStaged deletes an artifact's staged object directly from its store,
// so that rounds do not fill the disk.
func (h *harness) removeStaged(g *gatewayProc, name string) error {
	ref, ok := layout.ParseArtifactName(name)
	if !ok {
		return fmt.Errorf("artifact name %q does not parse", name)
	}
	if err := g.storeUS.Client.RemoveObject(context.Background(), g.bucketUS, ref.StagingKey(), minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("remove %s: %w", ref.StagingKey(), err)
	}
	return nil
}

// directRoundTrip puts data to bucket/key through c with the gateway's
// minio-go settings and reads it back into io.Discard, checking the length.
// Each round overwrites the same key.
func directRoundTrip(ctx context.Context, c *minio.Core, cpu cpuMeter, bucket, key string, data []byte) (map[string]float64, error) {
	return roundTrip(cpu, int64(len(data)), func() error {
		return putDirect(ctx, c, bucket, key, streamReader{bytes.NewReader(data)}, int64(len(data)))
	}, func() (int64, error) {
		return getDirect(ctx, c, bucket, key)
	})
}
