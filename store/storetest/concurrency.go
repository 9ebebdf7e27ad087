package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sealgate/sealgate/store"
)

func testConcurrentDifferentKeys(t *testing.T, b store.Bucket) {
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("conc/k%02d", i)
			data := payload(100<<10+i, uint64(i))
			if err := b.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Errorf("Put(%q) = %v, want nil", key, err)
			}
		})
	}
	wg.Wait()
	for i := range n {
		checkContent(t, b, fmt.Sprintf("conc/k%02d", i), payload(100<<10+i, uint64(i)))
	}
}

func testConcurrentSameKey(t *testing.T, b store.Bucket) {
	const (
		key     = "conc/same"
		writers = 6
		rounds  = 3
		readers = 2
	)
	values := make([][]byte, writers)
	for i := range values {
		values[i] = payload(600<<10, uint64(100+i))
	}
	// whole reports whether data is exactly one of the values, never a mix.
	whole := func(data []byte) bool {
		for _, v := range values {
			if bytes.Equal(data, v) {
				return true
			}
		}
		return false
	}

	var stored, done atomic.Bool
	var readersWG, writersWG sync.WaitGroup
	for range readers {
		readersWG.Go(func() {
			for !done.Load() {
				wasStored := stored.Load()
				data, err := readRange(t.Context(), b, key, 0, -1)
				switch {
				case errors.Is(err, store.ErrNotFound) && !wasStored:
				case err != nil:
					t.Errorf("Get(%q) during concurrent Puts = %v, want nil", key, err)
					return
				case !whole(data):
					t.Errorf("Get(%q) during concurrent Puts = %s, want one complete value", key, describe(data))
					return
				}
			}
		})
	}
	for i := range writers {
		writersWG.Go(func() {
			for range rounds {
				if err := b.Put(t.Context(), key, bytes.NewReader(values[i]), int64(len(values[i]))); err != nil {
					t.Errorf("Put(%q) = %v, want nil", key, err)
					return
				}
				stored.Store(true)
			}
		})
	}
	writersWG.Wait()
	done.Store(true)
	readersWG.Wait()

	if data := mustGet(t, b, key); !whole(data) {
		t.Errorf("Get(%q) after concurrent Puts = %s, want one complete value", key, describe(data))
	}
	checkList(t, b, "conc/", "", 0, []string{key})
}

func testConcurrentPutDelete(t *testing.T, b store.Bucket) {
	// Deleting the last object of a "directory" while another object is
	// being written into it must not make that write fail.
	keys := []string{"pd/a/b/x", "pd/a/b/y", "pd/a/c", "pd/a/b/z/deeper"}
	const rounds = 50
	var wg sync.WaitGroup
	for _, key := range keys {
		wg.Go(func() {
			for i := range rounds {
				data := []byte(fmt.Sprintf("%s #%d", key, i))
				if err := b.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
					t.Errorf("Put(%q) #%d = %v, want nil", key, i, err)
					return
				}
				if err := b.Delete(t.Context(), key); err != nil {
					t.Errorf("Delete(%q) #%d = %v, want nil", key, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkList(t, b, "", "", 0, nil)
	for _, key := range keys {
		mustPut(t, b, key, []byte(key))
	}
	for _, key := range keys {
		checkContent(t, b, key, []byte(key))
	}
}

// slowReader delivers head, closes started, then waits for release before it
// delivers tail.
type slowReader struct {
	head, tail []byte
	started    chan struct{}
	release    chan struct{}
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.head) > 0 {
		n := copy(p, r.head)
		r.head = r.head[n:]
		if len(r.head) == 0 {
			close(r.started)
		}
		return n, nil
	}
	<-r.release
	if len(r.tail) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.tail)
	r.tail = r.tail[n:]
	return n, nil
}

func testNoPartialObjects(t *testing.T, b store.Bucket) {
	for _, known := range []bool{true, false} {
		for _, existing := range []bool{false, true} {
			name := fmt.Sprintf("known=%t-existing=%t", known, existing)
			t.Run(name, func(t *testing.T) {
				key := "slow/" + name
				var previous []byte
				if existing {
					previous = payload(5000, 1)
					mustPut(t, b, key, previous)
				}
				data := payload(1<<20, 2)
				r := &slowReader{
					head: data[:100<<10], tail: data[100<<10:],
					started: make(chan struct{}), release: make(chan struct{}),
				}
				size := int64(-1)
				if known {
					size = int64(len(data))
				}
				var releaseOnce sync.Once
				release := func() { releaseOnce.Do(func() { close(r.release) }) }
				defer release()
				result := make(chan error, 1)
				go func() { result <- b.Put(t.Context(), key, r, size) }()

				select {
				case <-r.started:
				case err := <-result:
					t.Fatalf("Put(%q) = %v before its reader was drained, want it to wait", key, err)
				}
				// The Put is now blocked halfway through its object.
				if previous == nil {
					checkNotFound(t, b, key)
					checkList(t, b, key, "", 0, nil)
				} else {
					checkContent(t, b, key, previous)
					info, err := b.Stat(t.Context(), key)
					if err != nil || info.Size != int64(len(previous)) {
						t.Errorf("Stat(%q) during Put = size %d, %v, want size %d, nil", key, info.Size, err, len(previous))
					}
				}
				release()
				if err := <-result; err != nil {
					t.Fatalf("Put(%q) = %v, want nil", key, err)
				}
				checkContent(t, b, key, data)
				if existing {
					checkList(t, b, key, "", 0, []string{key})
				}
			})
		}
	}
}
