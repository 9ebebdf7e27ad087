package miniostore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sealgate/sealgate/integration/servers"
	"github.com/sealgate/sealgate/store"
	"github.com/sealgate/sealgate/store/storetest"
)

// TestMinIO starts one MinIO server for the whole test binary and runs every
// test that needs a server as its subtests; the outage test runs last since
// it stops and restarts the server.
func TestMinIO(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a MinIO server; skipped with -short")
	}
	srv := servers.StartMinIO(t)
	t.Run("Conformance", func(t *testing.T) {
		storetest.RunConformance(t, func(t *testing.T) store.Bucket { return newBucket(t, srv) })
	})
	t.Run("UnknownSizeMultipart", func(t *testing.T) { testUnknownSizeMultipart(t, srv) })
	t.Run("FailedMultipartAborted", func(t *testing.T) { testFailedMultipartAborted(t, srv) })
	t.Run("LargeKnownSizeChecksum", func(t *testing.T) { testLargeKnownSizeChecksum(t, srv) })
	t.Run("ListAfterSiblings", func(t *testing.T) { testListAfterSiblings(t, srv) })
	t.Run("CopyTo", func(t *testing.T) { testCopyTo(t, srv) })
	t.Run("Open", func(t *testing.T) { testOpen(t, srv) })
	t.Run("Outage", func(t *testing.T) { testOutage(t, srv) })
}

var bucketSeq atomic.Int64

// newBucket opens a bucket with a new name on srv, which Open creates, and
// checks when the test ends that no multipart upload was left behind in it.
func newBucket(t *testing.T, srv *servers.MinIO) *Bucket {
	t.Helper()
	name := fmt.Sprintf("sg-test-%03d", bucketSeq.Add(1))
	b := openBucket(t, srv, srv.Endpoint, name)
	t.Cleanup(func() { checkNoUploads(t, srv, name) })
	return b
}

// openBucket opens the bucket name on srv through endpoint and closes it
// when the test ends.
func openBucket(t *testing.T, srv *servers.MinIO, endpoint, name string) *Bucket {
	t.Helper()
	b, err := Open(t.Context(), Config{
		Endpoint:  endpoint,
		Bucket:    name,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		Region:    srv.Region,
	})
	if err != nil {
		t.Fatalf("Open(%s) = %v, want nil", name, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// checkNoUploads reports an error when bucket holds incomplete multipart
// uploads.
func checkNoUploads(t *testing.T, srv *servers.MinIO, bucket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for u := range srv.Client(t).ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			t.Errorf("ListIncompleteUploads(%s) = %v, want nil", bucket, u.Err)
			return
		}
		t.Errorf("incomplete upload of %q left in bucket %s, want none", u.Key, bucket)
	}
}

// payload returns n deterministic pseudo-random bytes.
func payload(n int, seed uint64) []byte {
	p := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(p)
	return p
}

// hideLen hides every interface but io.Reader of its reader.
type hideLen struct{ io.Reader }

func readAll(t *testing.T, b store.Bucket, key string) []byte {
	t.Helper()
	rc, err := b.Get(t.Context(), key, 0, -1)
	if err != nil {
		t.Fatalf("Get(%q) = %v, want nil", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return data
}

func testUnknownSizeMultipart(t *testing.T, srv *servers.MinIO) {
	b := newBucket(t, srv)
	const key = "multipart/unknown"
	data := payload(20<<20, 1)
	if err := b.Put(t.Context(), key, hideLen{bytes.NewReader(data)}, -1); err != nil {
		t.Fatalf("Put(%q, 20 MiB, size -1) = %v, want nil", key, err)
	}
	info, err := srv.Client(t).StatObject(t.Context(), b.Name(), key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("StatObject(%q) = %v, want nil", key, err)
	}
	if info.Size != int64(len(data)) {
		t.Errorf("StatObject(%q).Size = %d, want %d", key, info.Size, len(data))
	}
	// A multipart object's ETag ends in "-PARTS": 20 MiB in 8 MiB parts.
	if want := "-3"; !strings.HasSuffix(info.ETag, want) {
		t.Errorf("StatObject(%q).ETag = %q, want a multipart ETag ending in %q", key, info.ETag, want)
	}
	if got := readAll(t, b, key); !bytes.Equal(got, data) {
		t.Errorf("Get(%q) = %d bytes, want the %d bytes put", key, len(got), len(data))
	}
	// A small object of unknown size goes up in one request.
	small := payload(1000, 2)
	if err := b.Put(t.Context(), "multipart/small", hideLen{bytes.NewReader(small)}, -1); err != nil {
		t.Fatalf("Put(small, size -1) = %v, want nil", err)
	}
	info, err = srv.Client(t).StatObject(t.Context(), b.Name(), "multipart/small", minio.StatObjectOptions{})
	if err != nil || strings.Contains(info.ETag, "-") || info.Size != int64(len(small)) {
		t.Errorf("StatObject(small) = ETag %q, size %d, %v, want a single-part ETag, size %d", info.ETag, info.Size, err, len(small))
	}
}

// cancelAfter calls cancel once n bytes have been read through it.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// testLargeKnownSizeChecksum: objects larger than a part, of known size,
// sent in one PUT (the default) or in parts, are stored whole and carry a
// full-object CRC32C that Stat reports (the mover verifies copies by it).
func testLargeKnownSizeChecksum(t *testing.T, srv *servers.MinIO) {
	big := payload(20<<20, 5)
	want := crc32.Checksum(big, crc32.MakeTable(crc32.Castagnoli))
	for _, single := range []int64{0, -1} {
		b := newBucket(t, srv)
		b.singleMax = cmp.Or(single, int64(MaxSinglePutSize))
		if err := b.Put(t.Context(), "big", hideLen{bytes.NewReader(big)}, int64(len(big))); err != nil {
			t.Fatalf("Put (single PUT limit %d): %v", b.singleMax, err)
		}
		info, err := b.Stat(t.Context(), "big")
		if err != nil || info.Size != int64(len(big)) || !info.HasCRC32C || info.CRC32C != want {
			t.Fatalf("Stat (single PUT limit %d) = %+v, %v; want size %d and CRC32C %08x", b.singleMax, info, err, len(big), want)
		}
		rc, err := b.Get(t.Context(), "big", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("Get: %d bytes, %v", len(got), err)
		}
	}
	if _, err := Open(t.Context(), Config{Endpoint: srv.Endpoint, Bucket: "x", SinglePutMax: MaxSinglePutSize + 1}); err == nil {
		t.Fatal("Open with a single PUT limit above S3's succeeded")
	}
}

func testFailedMultipartAborted(t *testing.T, srv *servers.MinIO) {
	b := newBucket(t, srv)
	errRead := errors.New("read failed on purpose")
	big := payload(20<<20, 3)
	cases := []struct {
		name string
		want error
		put  func(key string) error
	}{
		{"reader error, unknown size", errRead, func(key string) error {
			r := io.MultiReader(bytes.NewReader(big[:10<<20]), iotest.ErrReader(errRead))
			return b.Put(t.Context(), key, r, -1)
		}},
		{"reader error, known size", errRead, func(key string) error {
			r := io.MultiReader(bytes.NewReader(big[:10<<20]), iotest.ErrReader(errRead))
			return b.Put(t.Context(), key, r, int64(len(big)))
		}},
		{"short, known size", store.ErrSizeMismatch, func(key string) error {
			return b.Put(t.Context(), key, hideLen{bytes.NewReader(big[:12<<20])}, int64(len(big)))
		}},
		{"long, known size", store.ErrSizeMismatch, func(key string) error {
			return b.Put(t.Context(), key, hideLen{bytes.NewReader(big)}, 18<<20)
		}},
		{"cancelled, unknown size", context.Canceled, func(key string) error {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			return b.Put(ctx, key, &cancelAfter{r: bytes.NewReader(big), n: 10 << 20, cancel: cancel}, -1)
		}},
	}
	for i, c := range cases {
		key := fmt.Sprintf("failed/%d", i)
		if err := c.put(key); !errors.Is(err, c.want) {
			t.Errorf("Put with %s = %v, want an error wrapping %v", c.name, err, c.want)
		}
		if _, err := b.Stat(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after Put with %s: Stat(%q) = %v, want ErrNotFound", c.name, key, err)
		}
		checkNoUploads(t, srv, b.Name())
	}
}

// testListAfterSiblings lists after a key whose directory has many siblings
// that sort before it ("acme-eu/..." before "acme/..."), which makes a
// plain MinIO listing with start-after end early.
func testListAfterSiblings(t *testing.T, srv *servers.MinIO) {
	b := newBucket(t, srv)
	keys := []string{"sib/acme/1", "sib/acme/2", "sib/acme/3", "sib/acme0", "sib/b/1"}
	for i := range 200 {
		keys = append(keys, fmt.Sprintf("sib/acme-eu/%03d", i))
	}
	var wg sync.WaitGroup
	work := make(chan string)
	for range 8 {
		wg.Go(func() {
			for key := range work {
				if err := b.Put(t.Context(), key, strings.NewReader(key), int64(len(key))); err != nil {
					t.Errorf("Put(%q) = %v, want nil", key, err)
				}
			}
		})
	}
	for _, key := range keys {
		work <- key
	}
	close(work)
	wg.Wait()
	slices.Sort(keys)

	list := func(prefix, after string, limit int) []string {
		infos, err := b.List(t.Context(), prefix, after, limit)
		if err != nil {
			t.Fatalf("List(%q, %q, %d) = %v, want nil", prefix, after, limit, err)
		}
		var got []string
		for _, info := range infos {
			got = append(got, info.Key)
		}
		return got
	}
	cases := []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"sib/", "sib/acme/1", 1, []string{"sib/acme/2"}},
		{"sib/", "sib/acme/3", 2, []string{"sib/acme0", "sib/b/1"}},
		{"sib/", "sib/acme/2", 0, []string{"sib/acme/3", "sib/acme0", "sib/b/1"}},
		{"", "sib/acme/1", 3, []string{"sib/acme/2", "sib/acme/3", "sib/acme0"}},
		{"sib/a", "sib/acme/", 5, []string{"sib/acme/1", "sib/acme/2", "sib/acme/3", "sib/acme0"}},
	}
	for _, c := range cases {
		if got := list(c.prefix, c.after, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("List(%q, %q, %d) = %q, want %q", c.prefix, c.after, c.limit, got, c.want)
		}
	}
	for _, page := range []int{1, 7, 50} {
		var got []string
		after := ""
		for range len(keys) + 1 {
			p := list("sib/", after, page)
			if len(p) == 0 {
				break
			}
			got = append(got, p...)
			after = p[len(p)-1]
		}
		if !slices.Equal(got, keys) {
			t.Errorf("paging List(sib/) by %d = %d keys, want all %d in order", page, len(got), len(keys))
		}
	}
}
