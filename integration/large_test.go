package integration

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// maxHeapGrowth is the acceptance bound for a 1 GiB upload; the design
// holds one chunk and one segment per stream, a few MiB.
const maxHeapGrowth = 64 << 20

// heapSampler records the peak heap in use while it runs.
type heapSampler struct {
	base, peak atomic.Uint64
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startHeapSampler() *heapSampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := &heapSampler{stop: make(chan struct{})}
	h.base.Store(ms.HeapAlloc)
	h.peak.Store(ms.HeapAlloc)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > h.peak.Load() {
					h.peak.Store(ms.HeapAlloc)
				}
			}
		}
	}()
	return h
}

// growth stops the sampler and returns the peak heap growth in bytes.
func (h *heapSampler) growth() uint64 {
	close(h.stop)
	h.wg.Wait()
	return h.peak.Load() - h.base.Load()
}

// stream returns a reader of n pseudo-random bytes and a function that
// returns their SHA-256 once read.
func stream(n int64, seed uint64) (io.Reader, func() [32]byte) {
	sum := sha256.New()
	r := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), n), sum)
	return r, func() (out [32]byte) { copy(out[:], sum.Sum(nil)); return }
}

func TestOneGiBUploadBoundedHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB")
	}
	env := gatewaytest.Start(t, func(c *config.Config) { c.LogLevel = "info" })
	ctx := env.Ctx(t, "demo")
	const size = 1 << 30
	src, srcSum := stream(size, 1)
	h := startHeapSampler()
	start := time.Now()
	a, err := env.Upload(ctx, &sealgatev1.UploadHeader{
		Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_VIDEO_RECORDING, SipZone: "us-west", ContentType: "video/mp4",
	}, src, 1<<20)
	upGrowth := h.growth()
	if err != nil {
		t.Fatal(err)
	}
	upTime := time.Since(start)
	if a.GetSizeBytes() != size {
		t.Fatalf("size_bytes = %d, want %d", a.GetSizeBytes(), size)
	}
	h = startHeapSampler()
	start = time.Now()
	sum := sha256.New()
	if _, err := env.Read(ctx, a.GetName(), sum); err != nil {
		t.Fatal(err)
	}
	readGrowth := h.growth()
	t.Logf("1 GiB: upload %v (%.0f MiB/s, heap growth %.1f MiB), read %v (heap growth %.1f MiB)",
		upTime.Round(time.Millisecond), float64(size>>20)/upTime.Seconds(), float64(upGrowth)/(1<<20),
		time.Since(start).Round(time.Millisecond), float64(readGrowth)/(1<<20))
	if got, want := [32]byte(sum.Sum(nil)), srcSum(); got != want {
		t.Fatalf("1 GiB read back with SHA-256 %x, want %x", got, want)
	}
	if upGrowth > maxHeapGrowth {
		t.Errorf("heap grew %d MiB during the 1 GiB upload, want under %d MiB", upGrowth>>20, maxHeapGrowth>>20)
	}
	if readGrowth > maxHeapGrowth {
		t.Errorf("heap grew %d MiB during the 1 GiB read, want under %d MiB", readGrowth>>20, maxHeapGrowth>>20)
	}
}
