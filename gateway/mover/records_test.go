package mover_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/mover"
	"github.com/sealgate/sealgate/store"
)

// fakeRecords holds which artifacts have a record and which objects need
// one (by artifact id).
type fakeRecords struct {
	mu       sync.Mutex
	recorded map[string]bool
	needs    map[string]bool
}

func newFakeRecords() *fakeRecords {
	return &fakeRecords{recorded: map[string]bool{}, needs: map[string]bool{}}
}

func (f *fakeRecords) Exists(_ context.Context, ref layout.Ref) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recorded[ref.ID], nil
}

func (f *fakeRecords) Needs(ctx context.Context, b store.Bucket, key string, ref layout.Ref) (bool, error) {
	if _, err := b.Stat(ctx, key); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.needs[ref.ID], nil
}

func (f *fakeRecords) set(ref layout.Ref, recorded, needs bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recorded[ref.ID], f.needs[ref.ID] = recorded, needs
}

func gone(t *testing.T, b store.Bucket, key, what string) {
	t.Helper()
	if _, err := b.Stat(context.Background(), key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s: %s is still there (err %v)", what, key, err)
	}
}

func TestStagedObjectWithoutItsRecordIsNeverMovedNorDeleted(t *testing.T) {
	topo, buckets := regions(t)
	recs := newFakeRecords()
	ref, _ := stage(t, buckets, "us", "de", 3000)
	recs.set(ref, false, true)
	now := time.Now()
	reg := prometheus.NewRegistry()
	m := mover.New(mover.Config{Topology: topo, Records: recs, OrphanAge: time.Minute, Registerer: reg,
		Now: func() time.Time { return now }})
	// Young: its upload may still be writing the record. Old: the remains
	// of a failed upload, or a mover pointed at the wrong control store,
	// which finds no record for anything. Either way it stays where it is;
	// only an old one is reported.
	for _, c := range []struct {
		after    time.Duration
		reported float64
	}{{0, 0}, {time.Minute + time.Second, 1}} {
		now = now.Add(c.after)
		if moved, err := m.Pass(context.Background()); moved != 0 || err != nil {
			t.Fatalf("Pass %v later = %d, %v; want nothing moved and no error", c.after, moved, err)
		}
		if _, err := buckets["us"].Stat(context.Background(), ref.StagingKey()); err != nil {
			t.Fatalf("staged object without its record, %v later: %v; want it left in place", c.after, err)
		}
		gone(t, buckets["de"], ref.StoredKey(), "object moved without its record")
		if got := metricValue(t, reg, "sealgate_mover_orphans_staged"); got != c.reported {
			t.Fatalf("orphans reported %v later: %v, want %v", c.after, got, c.reported)
		}
	}
	// Its record appears (a slow control store): it moves.
	recs.set(ref, true, true)
	if moved, err := m.Pass(context.Background()); moved != 1 || err != nil {
		t.Fatalf("Pass once the record exists = %d, %v; want it moved", moved, err)
	}
}

func TestObjectsWithRecordsOrNeedingNoneAreMoved(t *testing.T) {
	topo, buckets := regions(t)
	recs := newFakeRecords()
	recorded, data1 := stage(t, buckets, "us", "de", 3000)
	recs.set(recorded, true, true)
	old, data2 := stage(t, buckets, "us", "jp", 4000) // written before records existed
	recs.set(old, false, false)
	m := mover.New(mover.Config{Topology: topo, Records: recs, OrphanAge: time.Minute,
		Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if moved, err := m.Pass(context.Background()); moved != 2 || err != nil {
		t.Fatalf("Pass = %d, %v; want both moved", moved, err)
	}
	assertMoved(t, buckets, recorded, data1)
	assertMoved(t, buckets, old, data2)
}

// A purge that runs while a copy is in flight, record first and then its
// deletes, finishes before the copy lands: the mover must remove the copy
// it made, or an artifact no one can read stays stored forever.
func TestCopyLandingAfterAPurgeIsRemoved(t *testing.T) {
	for _, step := range []string{mover.StepMidCopy, mover.StepCopied} {
		t.Run(step, func(t *testing.T) {
			topo, buckets := regions(t)
			recs := newFakeRecords()
			ref, data := stage(t, buckets, "us", "de", 200000)
			recs.set(ref, true, true)
			m := mover.New(mover.Config{Topology: topo, Records: recs, Hook: func(s string, r layout.Ref) error {
				if s != step {
					return nil
				}
				// The purge: record, stored, staged, stored.
				recs.set(r, false, true)
				ctx := context.Background()
				for _, d := range []struct {
					b   store.Bucket
					key string
				}{{buckets["de"], r.StoredKey()}, {buckets["us"], r.StagingKey()}, {buckets["de"], r.StoredKey()}} {
					if err := d.b.Delete(ctx, d.key); err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
				}
				if step == mover.StepCopied {
					// The copy lands after the purge's last delete.
					return buckets["de"].Put(ctx, r.StoredKey(), bytes.NewReader(data), int64(len(data)))
				}
				return nil
			}})
			m.Pass(context.Background())
			gone(t, buckets["de"], ref.StoredKey(), "copy landed after the purge")
			gone(t, buckets["us"], ref.StagingKey(), "purged staged object")
		})
	}
}

// The default orphan age is 15 minutes: far longer than an upload takes to
// write its record.
func TestDefaultOrphanAgeIsFifteenMinutes(t *testing.T) {
	for _, c := range []struct {
		age      time.Duration
		reported float64
	}{{14 * time.Minute, 0}, {16 * time.Minute, 1}} {
		topo, buckets := regions(t)
		recs := newFakeRecords()
		ref, _ := stage(t, buckets, "us", "de", 1000)
		recs.set(ref, false, true)
		now := time.Now().Add(c.age)
		reg := prometheus.NewRegistry()
		m := mover.New(mover.Config{Topology: topo, Records: recs, Registerer: reg, Now: func() time.Time { return now }})
		if _, err := m.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := metricValue(t, reg, "sealgate_mover_orphans_staged"); got != c.reported {
			t.Fatalf("staged %v without its record: reported %v, want %v", c.age, got, c.reported)
		}
	}
}
