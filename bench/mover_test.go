package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/mover"
	"github.com/sealgate/sealgate/gateway/policy"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
	"github.com/sealgate/sealgate/store/miniostore"
)

// templatePrefix holds, in MinIO A, a copy of every staged object of the
// mover scenario, from which each run restores the staging area.
const templatePrefix = "template/"

// moverThroughput measures the mover carrying staged ciphertext from MinIO
// A (us) to MinIO B (de) against a plain GET-then-PUT copy of the same
// objects with the same minio-go settings and as many workers (scenario 5).
func (h *harness) moverThroughput(t *testing.T, rep *report) {
	ctx := context.Background()
	g := h.startGateway(t)
	if err := g.updateSettings(&sealgatev1.AccountSettings{StorageRegion: "de"}, "storage_region"); err != nil {
		t.Fatalf("set demo's storage region: %v", err)
	}
	ms := &moverSet{h: h, us: g.bucketUS, de: g.bucketDE}
	ms.stage(t, g)
	topo := ms.topology(t)
	m := mover.New(mover.Config{Topology: topo, Logger: slog.New(slog.DiscardHandler), Workers: h.plan.moverWorkers})
	workers := h.plan.moverWorkers
	vs := []variant{
		{"mover", func(int) (map[string]float64, error) {
			if err := ms.restore(ctx); err != nil {
				return nil, err
			}
			start := time.Now()
			n, err := m.Pass(ctx)
			elapsed := time.Since(start)
			if err != nil {
				return nil, fmt.Errorf("mover pass: %w", err)
			}
			if n != len(ms.refs) {
				return nil, fmt.Errorf("mover moved %d objects, want %d", n, len(ms.refs))
			}
			return map[string]float64{"MiB/s": mibPerSec(ms.total, elapsed)}, nil
		}},
		{"plain copy", func(int) (map[string]float64, error) {
			if err := ms.restore(ctx); err != nil {
				return nil, err
			}
			start := time.Now()
			if err := ms.plainCopy(ctx, workers); err != nil {
				return nil, err
			}
			return map[string]float64{"MiB/s": mibPerSec(ms.total, time.Since(start))}, nil
		}},
	}
	s, err := interleave(t, "mover", true, h.plan.rounds, vs)
	if err != nil {
		t.Fatal(err)
	}
	scenario := fmt.Sprintf("5 mover, %d x %s staged, MinIO A to B, %d workers", len(ms.refs), sizeName(h.plan.moverSize), workers)
	plain := rep.add(scenario, "throughput", "plain copy", "MiB/s", s.get("plain copy", "MiB/s")).baseline()
	rep.add(scenario, "throughput", "mover", "MiB/s", s.get("mover", "MiB/s")).vs(plain, ">=", 0.95)
}

// moverSet is the staged objects of the mover scenario, in the buckets us
// (MinIO A) and de (MinIO B) of its gateway.
type moverSet struct {
	h      *harness
	us, de string
	refs   []layout.Ref
	sizes  []int64 // object (ciphertext) sizes
	total  int64
}

// stage uploads the scenario's artifacts through the gateway (staged in us
// for storage in de) and copies each staged object under templatePrefix.
func (ms *moverSet) stage(t *testing.T, g *gatewayProc) {
	t.Helper()
	h := ms.h
	ctx := context.Background()
	size := h.plan.moverSize
	for i := range h.plan.moverObjects {
		off := (int64(i) * size) % (int64(len(h.payload)) - size + 1)
		a, err := g.client.Upload(g.ctx, &sealgatev1.UploadHeader{
			Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west", SizeBytes: &size,
		}, bytes.NewReader(h.payload[off:off+size]), uploadChunk)
		if err != nil {
			t.Fatalf("stage %d: %v", i, err)
		}
		ref, ok := layout.ParseArtifactName(a.GetName())
		if !ok || ref.Staging != "us" || ref.Storage != "de" {
			t.Fatalf("staged %q, want staging us and storage de", a.GetName())
		}
		src := minio.CopySrcOptions{Bucket: g.bucketUS, Object: ref.StagingKey()}
		dst := minio.CopyDestOptions{Bucket: g.bucketUS, Object: templatePrefix + ref.ID}
		if _, err := h.directA.Client.CopyObject(ctx, dst, src); err != nil {
			t.Fatalf("template copy of %s: %v", ref.StagingKey(), err)
		}
		info, err := h.directA.Client.StatObject(ctx, ms.us, templatePrefix+ref.ID, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ms.refs, ms.sizes, ms.total = append(ms.refs, ref), append(ms.sizes, info.Size), ms.total+info.Size
	}
}

// topology opens the gateway's two region buckets in this process, as a
// mover process would.
func (ms *moverSet) topology(t *testing.T) *policy.Topology {
	t.Helper()
	h := ms.h
	ctx := context.Background()
	buckets := map[string]store.Bucket{}
	for region, s := range map[string]struct {
		endpoint, bucket, access, secret string
	}{
		"us": {h.a.Endpoint, ms.us, h.a.AccessKey, h.a.SecretKey},
		"de": {h.b.Endpoint, ms.de, h.b.AccessKey, h.b.SecretKey},
	} {
		b, err := miniostore.Open(ctx, miniostore.Config{Endpoint: s.endpoint, Bucket: s.bucket, AccessKey: s.access, SecretKey: s.secret})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		buckets[region] = b
	}
	topo, err := policy.NewTopology(buckets, map[string]string{"us-west": "us", "de-fra": "de"})
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// restore puts every object back in A's staging area from its template (a
// server-side copy) and removes its copy in B, so that each run moves the
// same objects into an empty destination. It is never timed.
func (ms *moverSet) restore(ctx context.Context) error {
	for _, ref := range ms.refs {
		if err := ms.h.directB.Client.RemoveObject(ctx, ms.de, ref.StoredKey(), minio.RemoveObjectOptions{}); err != nil {
			return fmt.Errorf("remove %s from B: %w", ref.StoredKey(), err)
		}
		src := minio.CopySrcOptions{Bucket: ms.us, Object: templatePrefix + ref.ID}
		dst := minio.CopyDestOptions{Bucket: ms.us, Object: ref.StagingKey()}
		if _, err := ms.h.directA.Client.CopyObject(ctx, dst, src); err != nil {
			return fmt.Errorf("restore %s: %w", ref.StagingKey(), err)
		}
	}
	return nil
}

// plainCopy copies every staged object from A to its storage key in B with
// workers goroutines: one GET (CRC32C checked, as miniostore reads) streamed
// into one PutObject of the known size with the gateway's options.
func (ms *moverSet) plainCopy(ctx context.Context, workers int) error {
	jobs := make(chan int)
	var mu sync.Mutex
	var errs error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := ms.copyOne(ctx, ms.refs[i], ms.sizes[i]); err != nil {
					mu.Lock()
					errs = errors.Join(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range ms.refs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return errs
}

// copyOne streams one staged object from A into B.
func (ms *moverSet) copyOne(ctx context.Context, ref layout.Ref, size int64) error {
	body, _, _, err := ms.h.directA.GetObject(ctx, ms.us, ref.StagingKey(), minio.GetObjectOptions{Checksum: true})
	if err != nil {
		return fmt.Errorf("get %s: %w", ref.StagingKey(), err)
	}
	defer body.Close()
	if err := putDirect(ctx, ms.h.directB, ms.de, ref.StoredKey(), body, size); err != nil {
		return fmt.Errorf("put %s: %w", ref.StoredKey(), err)
	}
	return nil
}
