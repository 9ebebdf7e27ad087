package miniostore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/sealgate/sealgate/integration/servers"
	"github.com/sealgate/sealgate/store"
	"github.com/sealgate/sealgate/store/filestore"
)

// serverSideCopier is the interface the mover (gateway/mover) looks for.
var _ interface {
	CanCopyTo(dst store.Bucket) bool
	CopyTo(ctx context.Context, srcKey string, dst store.Bucket, dstKey string) error
} = (*Bucket)(nil)

func testCopyTo(t *testing.T, srv *servers.MinIO) {
	src, dst := newBucket(t, srv), newBucket(t, srv)
	// The same server under another name is another endpoint: the copy
	// then streams through this process, as it does into a file store.
	far := openBucket(t, srv, "localhost:"+strconv.Itoa(srv.Port), dst.Name())
	files, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatalf("filestore.Open() = %v, want nil", err)
	}
	if !src.SameEndpoint(dst) || src.SameEndpoint(far) || src.SameEndpoint(nil) {
		t.Errorf("SameEndpoint = %t (same server), %t (other endpoint), %t (nil), want true, false, false",
			src.SameEndpoint(dst), src.SameEndpoint(far), src.SameEndpoint(nil))
	}
	if !src.CanCopyTo(dst) || src.CanCopyTo(far) || src.CanCopyTo(files) || src.CanCopyTo(nil) {
		t.Errorf("CanCopyTo = %t (same server), %t (other endpoint), %t (file store), %t (nil), want true, false, false, false",
			src.CanCopyTo(dst), src.CanCopyTo(far), src.CanCopyTo(files), src.CanCopyTo(nil))
	}
	data := payload(3<<20+5, 4)
	if err := src.Put(t.Context(), "copy/src", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(copy/src) = %v, want nil", err)
	}
	ctx := t.Context()
	for _, c := range []struct {
		name string
		to   store.Bucket
		key  string
	}{
		{"server side", dst, "copy/server"},
		{"same bucket", src, "copy/again"},
		{"onto itself", src, "copy/src"},
		{"streamed", far, "copy/streamed"},
		{"into a file store", files, "copy/file"},
	} {
		if err := src.CopyTo(ctx, "copy/src", c.to, c.key); err != nil {
			t.Fatalf("CopyTo(%s) = %v, want nil", c.name, err)
		}
		if got := readAll(t, c.to, c.key); !bytes.Equal(got, data) {
			t.Errorf("after CopyTo(%s): Get(%q) = %d bytes, want the %d bytes put", c.name, c.key, len(got), len(data))
		}
	}
	for _, to := range []store.Bucket{dst, far, files} {
		if err := src.CopyTo(ctx, "copy/missing", to, "copy/x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CopyTo(missing) = %v, want ErrNotFound", err)
		}
		if err := src.CopyTo(ctx, "copy/src", to, "bad//key"); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("CopyTo(bad//key) = %v, want ErrInvalidKey", err)
		}
	}
	if got := readAll(t, src, "copy/src"); !bytes.Equal(got, data) {
		t.Errorf("source after copies = %d bytes, want the %d bytes put", len(got), len(data))
	}
}

func testOpen(t *testing.T, srv *servers.MinIO) {
	ctx := t.Context()
	b := newBucket(t, srv)
	// Opening an existing bucket again sees its objects.
	if err := b.Put(ctx, "open/x", bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatalf("Put(open/x) = %v, want nil", err)
	}
	again := openBucket(t, srv, "http://"+srv.Endpoint, b.Name())
	if got := readAll(t, again, "open/x"); string(got) != "x" {
		t.Errorf("Get(open/x) through a second Open = %q, want %q", got, "x")
	}
	bad := []Config{
		{Bucket: "b", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey},
		{Endpoint: srv.Endpoint, Bucket: "Not_Valid", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey},
		{Endpoint: srv.Endpoint, Bucket: "b", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: 1 << 20},
		{Endpoint: "ftp://" + srv.Endpoint, Bucket: "b", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey},
		{Endpoint: srv.Endpoint, Bucket: "b", AccessKey: srv.AccessKey, SecretKey: "wrong-secret"},
	}
	for _, cfg := range bad {
		if _, err := Open(ctx, cfg); err == nil {
			t.Errorf("Open(%+v) = nil error, want an error", Config{Endpoint: cfg.Endpoint, Bucket: cfg.Bucket, PartSize: cfg.PartSize})
		}
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if _, err := b.Stat(ctx, "open/x"); err == nil {
		t.Errorf("Stat after Close = nil error, want an error")
	}
}

// testOutage stops the server: every operation must then fail with
// store.ErrUnavailable, soon; after a restart the data is back.
func testOutage(t *testing.T, srv *servers.MinIO) {
	b := newBucket(t, srv)
	data := payload(100<<10, 5)
	if err := b.Put(t.Context(), "outage/kept", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(outage/kept) = %v, want nil", err)
	}
	big := payload(10<<20, 6)
	srv.Stop()
	ops := map[string]func(ctx context.Context) error{
		"Get": func(ctx context.Context) error {
			rc, err := b.Get(ctx, "outage/kept", 0, -1)
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			return err
		},
		"Put": func(ctx context.Context) error {
			return b.Put(ctx, "outage/new", bytes.NewReader(data), int64(len(data)))
		},
		"Put unknown size": func(ctx context.Context) error {
			return b.Put(ctx, "outage/new", hideLen{bytes.NewReader(data)}, -1)
		},
		"Put streamed": func(ctx context.Context) error {
			return b.Put(ctx, "outage/new", bytes.NewReader(big), int64(len(big)))
		},
		"Put multipart": func(ctx context.Context) error {
			return b.Put(ctx, "outage/new", hideLen{bytes.NewReader(big)}, -1)
		},
		"Stat": func(ctx context.Context) error {
			_, err := b.Stat(ctx, "outage/kept")
			return err
		},
		"List": func(ctx context.Context) error {
			_, err := b.List(ctx, "outage/", "", 0)
			return err
		},
		"Delete": func(ctx context.Context) error { return b.Delete(ctx, "outage/other") },
		"Open": func(ctx context.Context) error {
			_, err := Open(ctx, Config{Endpoint: srv.Endpoint, Bucket: b.Name(), AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
			return err
		},
	}
	for name, op := range ops {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		start := time.Now()
		err := op(ctx)
		elapsed := time.Since(start)
		cancel()
		if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s with the server stopped = %v, want ErrUnavailable (and not ErrNotFound)", name, err)
		}
		if elapsed > 10*time.Second {
			t.Errorf("%s with the server stopped took %v, want under 10s", name, elapsed)
		}
		t.Logf("%s with the server stopped failed after %v: %v", name, elapsed.Round(time.Millisecond), err)
	}

	srv.Restart(t)
	if got := readAll(t, b, "outage/kept"); !bytes.Equal(got, data) {
		t.Errorf("Get(outage/kept) after restart = %d bytes, want the %d bytes put", len(got), len(data))
	}
	if err := b.Put(t.Context(), "outage/after", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Errorf("Put after restart = %v, want nil", err)
	}
	infos, err := b.List(t.Context(), "outage/", "", 0)
	if err != nil || len(infos) != 2 {
		t.Errorf("List(outage/) after restart = %d objects, %v, want 2, nil", len(infos), err)
	}
}
