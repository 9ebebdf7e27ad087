package bench

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// memory measures a fresh gateway process during concurrent large uploads:
// peak RSS growth per stream and bytes allocated per byte uploaded
// (scenario 3). The streams share one payload in memory, each through its
// own reader: generating 8 GiB on the fly would cost the gateway's cores
// several CPU-seconds for nothing, and every stream's ciphertext differs
// anyway (one data key per artifact).
func (h *harness) memory(t *testing.T, rep *report) {
	g := h.startGateway(t)
	// One small upload first, so that what every first call initialises
	// (connections to MinIO, the key cache) counts as idle, not per stream.
	if err := smallUpload(g, h.payload[:4*kib]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	idle, err := g.procStatus("VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	allocBefore, err := g.metric("go_memstats_alloc_bytes_total", "")
	if err != nil {
		t.Fatal(err)
	}
	n, size := h.plan.memStreams, h.plan.memSize
	start := time.Now()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = g.client.Upload(g.ctx, &sealgatev1.UploadHeader{
				Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_VIDEO_RECORDING, SipZone: "us-west",
				ContentType: "video/mp4", SizeBytes: &size,
			}, bytes.NewReader(h.payload[:size]), uploadChunk)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
	}
	hwm, err := g.procStatus("VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	allocAfter, err := g.metric("go_memstats_alloc_bytes_total", "")
	if err != nil {
		t.Fatal(err)
	}
	total := float64(n) * float64(size)
	perStream := float64(hwm-idle) / float64(n) / mib
	allocPerByte := (allocAfter - allocBefore) / total
	t.Logf("memory: idle RSS %.1f MiB, peak RSS %.1f MiB, %.1f MiB per stream, %.0f MiB allocated (%.4f B/B), %d x %s in %v",
		float64(idle)/mib, float64(hwm)/mib, perStream, (allocAfter-allocBefore)/mib, allocPerByte, n, sizeName(size), elapsed.Round(time.Millisecond))
	scenario := fmt.Sprintf("3 memory, %d concurrent %s uploads", n, sizeName(size))
	rep.add(scenario, "peak RSS (VmHWM)", "gateway", "MiB", []float64{float64(hwm) / mib})
	rep.add(scenario, "idle RSS before", "gateway", "MiB", []float64{float64(idle) / mib})
	rep.add(scenario, "peak RSS growth per stream", "gateway", "MiB", []float64{perStream}).limit("<", 32, "32 MiB")
	rep.add(scenario, "allocated per byte uploaded", "gateway", "B/B", []float64{allocPerByte}).limit("<", 0.1, "0.1 B/B")
	rep.add(scenario, "aggregate upload", "gateway", "MiB/s", []float64{mibPerSec(int64(total), elapsed)})
}

// kmsCalls counts the customer-key KMS calls of many small uploads against
// the bound of one per revocation bound elapsed, plus one (scenario 4).
func (h *harness) kmsCalls(t *testing.T, rep *report) {
	g := h.startGateway(t)
	arn := h.kms.CreateKey(t)
	err := g.updateSettings(&sealgatev1.AccountSettings{KeyPolicy: &sealgatev1.KeyPolicy{
		Mode: sealgatev1.KeyMode_KEY_MODE_CUSTOMER, CustomerKeyUri: "aws-kms://" + arn,
	}}, "key_policy")
	if err != nil {
		t.Fatalf("switch demo to the customer key: %v", err)
	}
	const label = `scheme="aws-kms"`
	// No aws-kms call yet: the gateway has no series for it. That, and
	// only that, counts as zero; the count after the uploads must exist.
	before, err := g.metric("sealgate_key_calls_total", label)
	if errors.Is(err, errNoSeries) {
		before, err = 0, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	n, conc := h.plan.kmsUploads, h.plan.kmsConcurrency
	data := h.payload[:4*kib]
	start := time.Now()
	res, err := runOps(n, conc, func() error { return smallUpload(g, data) })
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	after, err := g.metric("sealgate_key_calls_total", label)
	if err != nil {
		t.Fatal(err)
	}
	calls := after - before
	if calls < 1 {
		t.Fatalf("kms: %v calls for %d uploads under a customer key: the first upload must wrap an intermediate key", calls, n)
	}
	bound := math.Floor(elapsed.Seconds()/revocationBound.Seconds()) + 1
	t.Logf("kms: %.0f calls for %d uploads in %v (bound %.0f)", calls, n, elapsed.Round(time.Millisecond), bound)
	scenario := fmt.Sprintf("4 KMS calls, %d uploads of 4 KiB, concurrency %d, customer key", n, conc)
	rep.add(scenario, "KMS calls", "gateway", "calls", []float64{calls}).
		limit("<=", bound, fmt.Sprintf("%.0f (1 per %v of %.0f s elapsed, +1)", bound, revocationBound, elapsed.Seconds()))
	rep.add(scenario, "upload rate", "gateway", "ops/s", []float64{res["ops/s"]})
}
