package bench

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sealgate/sealgate/gateway/layout"
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

// throughput measures upload and download MiB/s of large artifacts: the
// gateway against direct unencrypted PutObject/GetObject on MinIO A and
// against MinIO S's own SSE-S3 (scenario 1).
func (h *harness) throughput(t *testing.T, rep *report) {
	g := h.startGateway(t)
	ctx := context.Background()
	for i, size := range h.plan.largeSizes {
		data := h.payload[:size]
		key := fmt.Sprintf("large/%d", size)
		vs := []variant{
			{"gateway", func(int) (map[string]float64, error) { return h.gatewayRoundTrip(g, data) }},
			{"direct", func(int) (map[string]float64, error) {
				return directRoundTrip(ctx, h.directA, bucketDirect, key, data)
			}},
			{"sse", func(int) (map[string]float64, error) { return directRoundTrip(ctx, h.directS, bucketSSE, key, data) }},
		}
		s, err := interleave(t, "throughput "+sizeName(size), i == 0, h.plan.rounds, vs)
		if err != nil {
			t.Fatal(err)
		}
		scenario := "1 throughput " + sizeName(size)
		for _, dir := range []string{"upload", "download"} {
			direct := rep.add(scenario, dir, "direct", "MiB/s", s.get("direct", dir)).baseline()
			sse := rep.add(scenario, dir, "sse", "MiB/s", s.get("sse", dir)).vs(direct, ">=", 0)
			rep.add(scenario, dir, "gateway", "MiB/s", s.get("gateway", dir)).
				vs(direct, ">=", 0.9).vs(sse, ">=", 1.0)
		}
	}
}

// gatewayRoundTrip uploads data through the gateway with its size declared,
// reads it back, checks the length, and deletes the staged object directly
// from MinIO A (untimed) so that rounds do not fill the disk.
func (h *harness) gatewayRoundTrip(g *gatewayProc, data []byte) (map[string]float64, error) {
	size := int64(len(data))
	start := time.Now()
	a, err := g.client.Upload(g.ctx, &sealgatev1.UploadHeader{
		Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_VIDEO_RECORDING, SipZone: "us-west",
		ContentType: "video/mp4", SizeBytes: &size,
	}, bytes.NewReader(data), uploadChunk)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	up := time.Since(start)
	start = time.Now()
	var w countingWriter
	if _, err := g.client.Read(g.ctx, a.GetName(), &w); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	down := time.Since(start)
	if w.n != size {
		return nil, fmt.Errorf("read %d bytes, want %d", w.n, size)
	}
	ref, ok := layout.ParseArtifactName(a.GetName())
	if !ok {
		return nil, fmt.Errorf("artifact name %q does not parse", a.GetName())
	}
	if err := h.directA.Client.RemoveObject(context.Background(), g.bucketUS, ref.StagingKey(), minio.RemoveObjectOptions{}); err != nil {
		return nil, fmt.Errorf("remove %s: %w", ref.StagingKey(), err)
	}
	return map[string]float64{"upload": mibPerSec(size, up), "download": mibPerSec(size, down)}, nil
}

// directRoundTrip puts data to bucket/key through c with the gateway's
// minio-go settings and reads it back into io.Discard, checking the length.
// Each round overwrites the same key.
func directRoundTrip(ctx context.Context, c *minio.Core, bucket, key string, data []byte) (map[string]float64, error) {
	size := int64(len(data))
	start := time.Now()
	if err := putDirect(ctx, c, bucket, key, streamReader{bytes.NewReader(data)}, size); err != nil {
		return nil, fmt.Errorf("put: %w", err)
	}
	up := time.Since(start)
	start = time.Now()
	n, err := getDirect(ctx, c, bucket, key)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	down := time.Since(start)
	if n != size {
		return nil, fmt.Errorf("read %d bytes, want %d", n, size)
	}
	return map[string]float64{"upload": mibPerSec(size, up), "download": mibPerSec(size, down)}, nil
}
