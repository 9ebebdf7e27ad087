package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sealgate/sealgate/store"
)

// testLoadSwap: create-only, compare-and-swap, stale versions and limits.
func testLoadSwap(t *testing.T, b store.Bucket) {
	ctx := context.Background()
	const key = "control/settings.json"
	if _, _, err := b.Load(ctx, key, 1<<20); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of a missing key: got %v, want ErrNotFound", err)
	}
	if _, err := b.Swap(ctx, key, []byte("v0"), "some-version"); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("Swap of a missing key at a version: got %v, want ErrPrecondition", err)
	}
	v1, err := b.Swap(ctx, key, []byte("v1"), "")
	if err != nil || v1 == "" {
		t.Fatalf("create: got %q, %v; want a version", v1, err)
	}
	if _, err := b.Swap(ctx, key, []byte("again"), ""); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("create of an existing key: got %v, want ErrPrecondition", err)
	}
	data, got, err := b.Load(ctx, key, 1<<20)
	if err != nil || string(data) != "v1" || got != v1 {
		t.Fatalf("Load: got %q at %q, %v; want v1 at %q", data, got, err, v1)
	}
	v2, err := b.Swap(ctx, key, []byte("v2"), v1)
	if err != nil || v2 == v1 {
		t.Fatalf("swap at the current version: got %q, %v; want a new version", v2, err)
	}
	if _, err := b.Swap(ctx, key, []byte("lost update"), v1); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("swap at a stale version: got %v, want ErrPrecondition", err)
	}
	if data, _, _ := b.Load(ctx, key, 1<<20); string(data) != "v2" {
		t.Fatalf("after a refused swap: %q, want v2 kept", data)
	}
	// A plain Put is a new version too.
	if err := b.Put(ctx, key, bytes.NewReader([]byte("v3")), 2); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Swap(ctx, key, []byte("x"), v2); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("swap at a version a Put replaced: got %v, want ErrPrecondition", err)
	}
	if _, _, err := b.Load(ctx, key, 1); err == nil {
		t.Fatal("Load of 2 bytes with a limit of 1: got nil error")
	}
}

// testSwapRace: of 16 writers swapping from one version (or creating), exactly
// one wins.
func testSwapRace(t *testing.T, b store.Bucket) {
	ctx := context.Background()
	for _, from := range []string{"create", "swap"} {
		key := "race/" + from
		ver := ""
		if from == "swap" {
			v, err := b.Swap(ctx, key, []byte("base"), "")
			if err != nil {
				t.Fatal(err)
			}
			ver = v
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners, lost := 0, 0
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, err := b.Swap(ctx, key, []byte(fmt.Sprint("writer ", i)), ver)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners++
				case errors.Is(err, store.ErrPrecondition):
					lost++
				default:
					t.Errorf("writer %d: %v", i, err)
				}
			}(i)
		}
		wg.Wait()
		if winners != 1 || lost != 15 {
			t.Fatalf("%s race: %d winners, %d refused; want exactly one winner", from, winners, lost)
		}
	}
}

// testSwapCounter: 20 writers each add their mark by read-modify-write with
// Load and Swap, retrying when they lose: every mark is in the end result.
func testSwapCounter(t *testing.T, b store.Bucket) {
	ctx := context.Background()
	const key = "race/counter"
	if _, err := b.Swap(ctx, key, []byte("|"), ""); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for attempt := 0; attempt < 1000; attempt++ {
				data, ver, err := b.Load(ctx, key, 1<<20)
				if err != nil {
					t.Errorf("writer %d: load: %v", i, err)
					return
				}
				_, err = b.Swap(ctx, key, append(bytes.Clone(data), fmt.Sprintf("w%02d|", i)...), ver)
				if err == nil {
					return
				}
				if !errors.Is(err, store.ErrPrecondition) {
					t.Errorf("writer %d: swap: %v", i, err)
					return
				}
			}
			t.Errorf("writer %d never won", i)
		}(i)
	}
	wg.Wait()
	data, _, err := b.Load(ctx, key, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if !bytes.Contains(data, []byte(fmt.Sprintf("|w%02d|", i))) {
			t.Errorf("writer %d's mark is lost: %s", i, data)
		}
	}
}
