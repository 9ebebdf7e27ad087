package integration

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/integration/servers"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
	"github.com/sealgate/sealgate/store/miniostore"
)

// BenchmarkSweepDueDay seeds SEALGATE_SWEEP_N (default 100,000) artifacts
// of one account created on one day two days ago, under a one-day
// retention and hard deletion, on one MinIO (region us, control store
// beside it), then times one sweeper pass over them and reports how many
// index objects it listed per artifact swept.
//
//	go test ./integration -run '^$' -bench SweepDueDay -benchtime 1x
func BenchmarkSweepDueDay(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("SEALGATE_SWEEP_N")); err == nil && v > 0 {
		n = v
	}
	srv := servers.StartMinIO(b)
	ctx := context.Background()
	open := func(bucket string) store.Bucket {
		bk, err := miniostore.Open(ctx, miniostore.Config{Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { bk.Close() })
		return bk
	}
	us, control := open("sealgate-us"), open("sealgate-control")
	topo, err := policy.NewTopology(map[string]store.Bucket{"us": us}, map[string]string{"us-west": "us"})
	if err != nil {
		b.Fatal(err)
	}
	settings := policy.NewSettingsStore(control)
	if err := settings.Put(ctx, "acme", &sealgatev1.AccountSettings{HomeRegion: "us", DeletionMode: sealgatev1.DeletionMode_DELETION_MODE_HARD,
		RetentionRules: []*sealgatev1.RetentionRule{{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES, RetentionDays: 1}}}); err != nil {
		b.Fatal(err)
	}
	ls := lifecycle.NewStore(control)
	day := time.Now().Add(-48 * time.Hour).Truncate(24 * time.Hour)
	seedStart := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan int)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				id, _ := layout.NewArtifactID(day.Add(time.Duration(i)*time.Second/2), "us", "us")
				ref := layout.Ref{Account: "acme", ID: id, Staging: "us", Storage: "us"}
				if err := us.Put(ctx, ref.StoredKey(), bytes.NewReader([]byte("ciphertext")), 10); err != nil {
					b.Error(err)
					return
				}
				if err := ls.Create(ctx, ref, &lifecycle.Record{Category: "INBOX_MESSAGES", Created: day}); err != nil {
					b.Error(err)
					return
				}
				if err := ls.IndexExpiry(ctx, ref, "INBOX_MESSAGES"); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	b.Logf("seeded %d artifacts in %v", n, time.Since(seedStart).Round(time.Second))
	b.ResetTimer()
	for range b.N {
		sw := lifecycle.NewSweeper(lifecycle.SweeperConfig{Store: ls, Settings: settings, Topology: topo, Batch: 1000, Workers: 16})
		start := time.Now()
		r, err := sw.Pass(ctx)
		elapsed := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if r.Expired != n {
			b.Fatalf("swept %d of %d", r.Expired, n)
		}
		b.ReportMetric(elapsed.Seconds(), "s/sweep")
		b.ReportMetric(float64(r.Expired)/elapsed.Seconds(), "artifacts/s")
		b.ReportMetric(float64(r.Listed)/float64(r.Expired), "listed/artifact")
		b.Logf("swept %d artifacts in %v (%.0f/s), listed %d index objects (%.3f per artifact)",
			r.Expired, elapsed.Round(time.Millisecond), float64(r.Expired)/elapsed.Seconds(), r.Listed, float64(r.Listed)/float64(r.Expired))
	}
}
