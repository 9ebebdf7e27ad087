package local_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/keystest"
	"github.com/sealgate/sealgate/keys/local"
)

func TestConformance(t *testing.T) {
	dir := t.TempDir()
	n := 0
	keystest.RunConformance(t, keystest.Harness{
		NewWrapper: func(t *testing.T) keys.Wrapper {
			n++
			w, err := local.Open(dir, fmt.Sprintf("key-%d", n))
			if err != nil {
				t.Fatal(err)
			}
			return w
		},
	})
}

func TestKeysetFileMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if _, err := local.Open(dir, "provider"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "provider.keyset.json"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s: got %o, want %o", path, got, want)
		}
	}
}

func TestReopenSameKey(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ec := keystest.Context("a", "b")
	w1, err := local.Open(dir, "k")
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := w1.Wrap(ctx, []byte("0123456789abcdef0123456789abcdef"), ec)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := local.Open(dir, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Unwrap(ctx, wrapped, ec); err != nil {
		t.Fatalf("Unwrap after reopen: got %v, want nil", err)
	}
}

func TestConcurrentCreateAgrees(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ec := keystest.Context("a", "b")
	ws := make([]*local.Wrapper, 8)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			w, err := local.Open(dir, "race")
			if err != nil {
				t.Error(err)
			}
			ws[i] = w
		}(i)
	}
	wg.Wait()
	wrapped, err := ws[0].Wrap(ctx, []byte("0123456789abcdef"), ec)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range ws {
		if _, err := w.Unwrap(ctx, wrapped, ec); err != nil {
			t.Errorf("wrapper %d cannot unwrap: %v; want all racers on one key", i, err)
		}
	}
}

func TestOpenerDoesNotCreate(t *testing.T) {
	o := local.Opener{Dir: t.TempDir()}
	_, err := o.OpenWrapper(context.Background(), "local://missing")
	if !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("open missing key: got %v, want ErrUnknownKey", err)
	}
	if _, err := o.OpenWrapper(context.Background(), "aws-kms://x"); !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("open foreign scheme: got %v, want ErrUnknownKey", err)
	}
	if _, err := local.Open(o.Dir, "../evil"); err == nil {
		t.Fatalf("Open(../evil): got nil error, want invalid name")
	}
}
