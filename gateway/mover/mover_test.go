package mover_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/mover"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/store"
	"github.com/sealgate/sealgate/store/filestore"
)

// regions builds a topology of file stores for us, de and jp.
func regions(t *testing.T) (*policy.Topology, map[string]store.Bucket) {
	t.Helper()
	buckets := map[string]store.Bucket{}
	for _, r := range []string{"us", "de", "jp"} {
		b, err := filestore.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		buckets[r] = b
	}
	topo, err := policy.NewTopology(buckets, map[string]string{"us-west": "us", "de-fra": "de", "jp-tyo": "jp"})
	if err != nil {
		t.Fatal(err)
	}
	return topo, buckets
}

// stage puts a fake object in staging and returns its ref and bytes.
func stage(t *testing.T, buckets map[string]store.Bucket, staging, storage string, n int) (layout.Ref, []byte) {
	t.Helper()
	id, err := layout.NewArtifactID(time.Now(), staging, storage)
	if err != nil {
		t.Fatal(err)
	}
	ref := layout.Ref{Account: "acme", ID: id, Staging: staging, Storage: storage}
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	if err := buckets[staging].Put(context.Background(), ref.StagingKey(), bytes.NewReader(data), int64(n)); err != nil {
		t.Fatal(err)
	}
	return ref, data
}

func get(b store.Bucket, key string) ([]byte, error) {
	rc, err := b.Get(context.Background(), key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// assertMoved checks exactly one copy, in the storage region, byte-exact.
func assertMoved(t *testing.T, buckets map[string]store.Bucket, ref layout.Ref, data []byte) {
	t.Helper()
	got, err := get(buckets[ref.Storage], ref.StoredKey())
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%s in %s: %d bytes, %v; want the %d staged bytes", ref.Name(), ref.Storage, len(got), err, len(data))
	}
	for region, b := range buckets {
		if _, err := b.Stat(context.Background(), ref.StagingKey()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s still staged in %s (err %v)", ref.Name(), region, err)
		}
		if region != ref.Storage {
			if _, err := b.Stat(context.Background(), ref.StoredKey()); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s has a copy in %s too", ref.Name(), region)
			}
		}
	}
}

func TestPassMovesEverythingToItsRegion(t *testing.T) {
	topo, buckets := regions(t)
	m := mover.New(mover.Config{Topology: topo, Batch: 3})
	type item struct {
		ref  layout.Ref
		data []byte
	}
	var items []item
	for i, pair := range [][2]string{{"us", "de"}, {"de", "de"}, {"jp", "us"}, {"us", "us"}, {"de", "jp"}, {"jp", "jp"}, {"us", "jp"}} {
		ref, data := stage(t, buckets, pair[0], pair[1], 1000+i*70000)
		items = append(items, item{ref, data})
	}
	moved, err := m.Pass(context.Background())
	if err != nil || moved != len(items) {
		t.Fatalf("Pass = %d, %v; want %d moved", moved, err, len(items))
	}
	for _, it := range items {
		assertMoved(t, buckets, it.ref, it.data)
	}
	if moved, err := m.Pass(context.Background()); moved != 0 || err != nil {
		t.Fatalf("second Pass = %d, %v; want nothing left", moved, err)
	}
}

func TestAbortAtEveryStepThenResume(t *testing.T) {
	// What a crash at each step must leave: whether the staged and the
	// stored copies exist.
	for _, c := range []struct {
		step           string
		staged, stored bool
	}{
		{mover.StepStart, true, false},
		{mover.StepMidCopy, true, false},
		{mover.StepCopied, true, true},
		{mover.StepVerified, true, true},
		{mover.StepDeleted, false, true},
	} {
		t.Run(c.step, func(t *testing.T) {
			topo, buckets := regions(t)
			ref, data := stage(t, buckets, "us", "de", 300000)
			crash := errors.New("crash")
			fired := 0
			m := mover.New(mover.Config{Topology: topo, Hook: func(s string, _ layout.Ref) error {
				if s == c.step {
					fired++
					return crash
				}
				return nil
			}})
			moved, err := m.Pass(context.Background())
			if fired != 1 || !errors.Is(err, crash) || moved != 0 {
				t.Fatalf("crash at %s: fired %d times, Pass = %d, %v; want it fired once and the pass failed with it", c.step, fired, moved, err)
			}
			_, serr := buckets["us"].Stat(context.Background(), ref.StagingKey())
			_, derr := buckets["de"].Stat(context.Background(), ref.StoredKey())
			if (serr == nil) != c.staged || (derr == nil) != c.stored {
				t.Fatalf("after a crash at %s: staged %v, stored %v; want staged %v, stored %v", c.step, serr == nil, derr == nil, c.staged, c.stored)
			}
			// After the "crash", a fresh mover finishes the job.
			if _, err := mover.New(mover.Config{Topology: topo}).Pass(context.Background()); err != nil {
				t.Fatal(err)
			}
			assertMoved(t, buckets, ref, data)
		})
	}
}

// corrupting flips a byte of every object written through it, as a faulty
// disk or network would.
type corrupting struct {
	store.Bucket
	on atomic.Bool
}

func (c *corrupting) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if !c.on.Load() {
		return c.Bucket.Put(ctx, key, r, size)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(b) > 0 {
		b[len(b)/2] ^= 0x40
	}
	return c.Bucket.Put(ctx, key, bytes.NewReader(b), int64(len(b)))
}

// TestCorruptCopyIsCaughtAndStagedCopyKept: a copy that differs from the
// staged object is caught, whether the storage store keeps no CRC-32C (the
// copy is read back and its SHA-256 compared) or says it keeps one and
// then reports none (the staged object's SHA-256 is computed after all).
func TestCorruptCopyIsCaughtAndStagedCopyKept(t *testing.T) {
	t.Run("no CRC", func(t *testing.T) {
		_, raw := regions(t)
		testCorruptCopyIsCaught(t, &corrupting{Bucket: raw["de"]}, raw)
	})
	t.Run("CRC promised, none kept", func(t *testing.T) {
		_, raw := regions(t)
		testCorruptCopyIsCaught(t, &crcPromising{corrupting{Bucket: raw["de"]}}, raw)
	})
}

func (c *corrupting) corrupt(on bool) { c.on.Store(on) }

// crcPromising says it keeps a CRC-32C of what it stores, and (a file
// store) keeps none.
type crcPromising struct{ corrupting }

func (*crcPromising) KeepsCRC32C() bool { return true }

func testCorruptCopyIsCaught(t *testing.T, de interface {
	store.Bucket
	corrupt(bool)
}, raw map[string]store.Bucket) {
	topo, err := policy.NewTopology(map[string]store.Bucket{"us": raw["us"], "de": de, "jp": raw["jp"]}, map[string]string{"us-west": "us"})
	if err != nil {
		t.Fatal(err)
	}
	ref, data := stage(t, raw, "us", "de", 200000)
	de.corrupt(true)
	// The staged copy must exist at every step up to the verified one.
	m := mover.New(mover.Config{Topology: topo, Hook: func(step string, r layout.Ref) error {
		if step == mover.StepCopied || step == mover.StepVerified {
			if _, err := raw["us"].Stat(context.Background(), r.StagingKey()); err != nil {
				t.Errorf("at step %s the staged copy is gone: %v", step, err)
			}
		}
		return nil
	}})
	if moved, err := m.Pass(context.Background()); moved != 0 || err == nil {
		t.Fatalf("Pass over a corrupting store = %d, %v; want nothing moved and an error", moved, err)
	}
	if got, err := get(raw["us"], ref.StagingKey()); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("staged copy after a corrupt storage copy: %v; want it kept byte-exact", err)
	}
	de.corrupt(false)
	if _, err := m.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertMoved(t, raw, ref, data)
}

func TestStaleStorageCopyIsReplaced(t *testing.T) {
	topo, buckets := regions(t)
	ref, data := stage(t, buckets, "us", "de", 5000)
	// A copy of the same size but other bytes (say, an older header).
	bad := bytes.Clone(data)
	bad[100] ^= 1
	buckets["de"].Put(context.Background(), ref.StoredKey(), bytes.NewReader(bad), int64(len(bad)))
	if _, err := mover.New(mover.Config{Topology: topo}).Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertMoved(t, buckets, ref, data)
}

func TestTwoMoversAtOnce(t *testing.T) {
	topo, buckets := regions(t)
	want := map[layout.Ref][]byte{}
	for i := 0; i < 40; i++ {
		ref, data := stage(t, buckets, []string{"us", "de", "jp"}[i%3], []string{"de", "jp", "us"}[i%3], 20000+i)
		want[ref] = data
	}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := mover.New(mover.Config{Topology: topo, Batch: 7, Workers: 3})
			for j := 0; j < 3; j++ {
				m.Pass(context.Background())
			}
		}()
	}
	wg.Wait()
	for ref, data := range want {
		assertMoved(t, buckets, ref, data)
	}
}

// flaky fails every call with ErrUnavailable while down is set.
type flaky struct {
	store.Bucket
	down  atomic.Bool
	calls atomic.Int64
}

func (f *flaky) err() error {
	f.calls.Add(1)
	if f.down.Load() {
		return fmt.Errorf("%w: connection refused", store.ErrUnavailable)
	}
	return nil
}

func (f *flaky) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Bucket.Put(ctx, key, r, size)
}

func (f *flaky) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	if err := f.err(); err != nil {
		return store.ObjectInfo{}, err
	}
	return f.Bucket.Stat(ctx, key)
}

func (f *flaky) List(ctx context.Context, prefix, after string, limit int) ([]store.ObjectInfo, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Bucket.List(ctx, prefix, after, limit)
}

func TestRegionDownBacksOffAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, raw := regions(t)
		de := &flaky{Bucket: raw["de"]}
		buckets := map[string]store.Bucket{"us": raw["us"], "de": de, "jp": raw["jp"]}
		topo, err := policy.NewTopology(buckets, map[string]string{"us-west": "us"})
		if err != nil {
			t.Fatal(err)
		}
		ref, data := stage(t, buckets, "us", "de", 4000)
		other, otherData := stage(t, buckets, "us", "jp", 4000)
		de.down.Store(true)
		m := mover.New(mover.Config{Topology: topo})
		if _, err := m.Pass(context.Background()); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Pass with de down: %v, want ErrUnavailable", err)
		}
		assertMoved(t, raw, other, otherData) // other regions are not held up
		if _, err := buckets["us"].Stat(context.Background(), ref.StagingKey()); err != nil {
			t.Fatalf("staged copy lost while its region was down: %v", err)
		}
		de.down.Store(false)
		// Within the first backoff (one second) the region is left alone.
		calls := de.calls.Load()
		time.Sleep(999 * time.Millisecond)
		if moved, _ := m.Pass(context.Background()); moved != 0 || de.calls.Load() != calls {
			t.Fatalf("mover called the region during its backoff (moved %d)", moved)
		}
		time.Sleep(2 * time.Millisecond)
		if moved, err := m.Pass(context.Background()); moved != 1 || err != nil {
			t.Fatalf("Pass at the end of the backoff = %d, %v; want the held artifact moved", moved, err)
		}
		assertMoved(t, raw, ref, data)
	})
}

func TestStagedCopyChangedAfterVerifyIsKept(t *testing.T) {
	topo, buckets := regions(t)
	ref, _ := stage(t, buckets, "us", "de", 5000)
	rewritten := bytes.Repeat([]byte{7}, 6000) // a rewrap rewrote the staged copy meanwhile
	m := mover.New(mover.Config{Topology: topo, Hook: func(step string, r layout.Ref) error {
		if step == mover.StepVerified {
			return buckets["us"].Put(context.Background(), r.StagingKey(), bytes.NewReader(rewritten), int64(len(rewritten)))
		}
		return nil
	}})
	m.Pass(context.Background())
	if got, err := get(buckets["us"], ref.StagingKey()); err != nil || !bytes.Equal(got, rewritten) {
		t.Fatalf("staged copy rewritten after verification: %d bytes, %v; want it kept, not deleted", len(got), err)
	}
	// The next pass carries the new version over the old copy.
	if _, err := mover.New(mover.Config{Topology: topo}).Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertMoved(t, buckets, ref, rewritten)
}

// countingPuts counts the objects written through it.
type countingPuts struct {
	store.Bucket
	puts atomic.Int64
}

func (c *countingPuts) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	c.puts.Add(1)
	return c.Bucket.Put(ctx, key, r, size)
}

func TestVerifiedCopyFromAnEarlierPassIsNotCopiedAgain(t *testing.T) {
	_, raw := regions(t)
	de := &countingPuts{Bucket: raw["de"]}
	topo, err := policy.NewTopology(map[string]store.Bucket{"us": raw["us"], "de": de, "jp": raw["jp"]}, map[string]string{"us-west": "us"})
	if err != nil {
		t.Fatal(err)
	}
	ref, data := stage(t, raw, "us", "de", 70000)
	// An earlier pass copied it and died before deleting the staged copy.
	if err := raw["de"].Put(context.Background(), ref.StoredKey(), bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if moved, err := mover.New(mover.Config{Topology: topo}).Pass(context.Background()); moved != 1 || err != nil {
		t.Fatalf("Pass = %d, %v", moved, err)
	}
	if n := de.puts.Load(); n != 0 {
		t.Fatalf("the storage region got %d writes, want none: the verified copy was there", n)
	}
	assertMoved(t, raw, ref, data)
}

func TestPassPagesThroughFullBatchesAndCountsStaged(t *testing.T) {
	topo, buckets := regions(t)
	reg := prometheus.NewRegistry()
	var refs []layout.Ref
	var datas [][]byte
	for i := 0; i < 4; i++ {
		ref, data := stage(t, buckets, "us", "jp", 1000+i)
		refs, datas = append(refs, ref), append(datas, data)
	}
	if err := buckets["de"].Put(context.Background(), layout.StagingPrefix+"acme/notes.txt", bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	m := mover.New(mover.Config{Topology: topo, Batch: 2, Registerer: reg})
	if moved, err := m.Pass(context.Background()); moved != 4 || err != nil {
		t.Fatalf("Pass over two full pages = %d, %v; want all 4 moved in one pass", moved, err)
	}
	for i, ref := range refs {
		assertMoved(t, buckets, ref, datas[i])
	}
	if got := testutil.ToFloat64(gauge(t, reg, "sealgate_mover_staged_objects")); got != 4 {
		t.Fatalf("staged objects gauge = %v, want the 4 this pass found (not the unknown key)", got)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name})
	g.Set(metricValue(t, reg, name))
	return g
}

// metricValue returns the value of the first series of the gauge or
// counter name in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// crcStaging keeps the CRC-32C of what it stores, as MinIO and S3 do, and
// can damage what it serves, as a faulty network between the stores would.
type crcStaging struct {
	store.Bucket
	crcs    sync.Map // key -> uint32
	corrupt atomic.Bool
}

func (c *crcStaging) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	c.crcs.Store(key, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	return c.Bucket.Put(ctx, key, bytes.NewReader(b), int64(len(b)))
}

func (c *crcStaging) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	info, err := c.Bucket.Stat(ctx, key)
	if v, ok := c.crcs.Load(key); ok && err == nil {
		info.CRC32C, info.HasCRC32C = v.(uint32), true
	}
	return info, err
}

func (c *crcStaging) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := c.Bucket.Get(ctx, key, off, n)
	if err != nil || !c.corrupt.Load() {
		return rc, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	b[len(b)/2] ^= 0x01
	return io.NopCloser(bytes.NewReader(b)), nil
}

// A staged object damaged on its way to the mover would be copied and
// verified against itself (its digests are the mover's own), and the good
// staged copy deleted: the CRC the staging store kept when it was written
// catches it (review).
func TestStagedObjectReadDamagedIsNotMoved(t *testing.T) {
	_, raw := regions(t)
	us := &crcStaging{Bucket: raw["us"]}
	topo, err := policy.NewTopology(map[string]store.Bucket{"us": us, "de": raw["de"], "jp": raw["jp"]}, map[string]string{"us-west": "us"})
	if err != nil {
		t.Fatal(err)
	}
	ref, data := stage(t, map[string]store.Bucket{"us": us}, "us", "de", 200000)
	us.corrupt.Store(true)
	m := mover.New(mover.Config{Topology: topo})
	if moved, err := m.Pass(context.Background()); moved != 0 || err == nil {
		t.Fatalf("Pass reading damaged bytes = %d, %v; want nothing moved and an error", moved, err)
	}
	if got, err := get(raw["us"], ref.StagingKey()); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("staged copy after a damaged read: %v; want it kept byte-exact", err)
	}
	us.corrupt.Store(false)
	if _, err := m.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertMoved(t, raw, ref, data)
}
