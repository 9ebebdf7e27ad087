package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// smallConcurrency are the worker counts of the small-artifact scenario.
var smallConcurrency = []int{1, 64}

// smallArtifacts measures ops/s and per-run p50 and p99 latency of small
// uploads, the gateway against direct PutObject to MinIO A (scenario 2).
func (h *harness) smallArtifacts(t *testing.T, rep *report) {
	g := h.startGateway(t)
	ctx := context.Background()
	var seq atomic.Int64
	for _, size := range h.plan.smallSizes {
		data := h.payload[:size]
		for _, conc := range smallConcurrency {
			n := h.plan.smallOps[conc]
			vs := []variant{
				{"gateway", func(int) (map[string]float64, error) {
					return runOps(n, conc, func() error { return smallUpload(g, data) })
				}},
				{"direct", func(int) (map[string]float64, error) {
					return runOps(n, conc, func() error {
						// One flat prefix, like the gateway's staging/demo/.
						key := fmt.Sprintf("small/%09d", seq.Add(1))
						return putDirect(ctx, h.directA, bucketDirect, key, bytes.NewReader(data), int64(len(data)))
					})
				}},
			}
			label := fmt.Sprintf("small %s c=%d", sizeName(int64(size)), conc)
			s, err := interleave(t, label, true, h.plan.rounds, vs)
			if err != nil {
				t.Fatal(err)
			}
			scenario := fmt.Sprintf("2 small %s, concurrency %d, %d ops/run", sizeName(int64(size)), conc, n)
			direct := rep.add(scenario, "throughput", "direct", "ops/s", s.get("direct", "ops/s")).baseline()
			rep.add(scenario, "throughput", "gateway", "ops/s", s.get("gateway", "ops/s")).vs(direct, ">=", 0)
			direct = rep.add(scenario, "p50 latency", "direct", "ms", s.get("direct", "p50 ms")).baseline()
			rep.add(scenario, "p50 latency", "gateway", "ms", s.get("gateway", "p50 ms")).vs(direct, "<=", 1.25)
			direct = rep.add(scenario, "p99 latency", "direct", "ms", s.get("direct", "p99 ms")).baseline()
			rep.add(scenario, "p99 latency", "gateway", "ms", s.get("gateway", "p99 ms")).vs(direct, "<=", 1.5)
		}
	}
}

// smallUpload uploads data through the gateway in one chunk with its size
// declared.
func smallUpload(g *gatewayProc, data []byte) error {
	size := int64(len(data))
	_, err := g.client.Upload(g.ctx, &sealgatev1.UploadHeader{
		Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT, SipZone: "us-west",
		ContentType: "text/plain", SizeBytes: &size,
	}, bytes.NewReader(data), max(len(data), 1))
	return err
}

// runOps runs op n times on conc workers and returns the run's ops/s and
// its p50 and p99 latency in milliseconds. It stops at the first error.
func runOps(n, conc int, op func() error) (map[string]float64, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Bool
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				t0 := time.Now()
				if err := op(); err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					failed.Store(true)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return nil, firstErr
	}
	return map[string]float64{
		"ops/s":  float64(n) / elapsed.Seconds(),
		"p50 ms": percentile(lat, 50),
		"p99 ms": percentile(lat, 99),
	}, nil
}
