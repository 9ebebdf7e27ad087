package bench

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"flag"
	"fmt"
	"io"
	"testing"

	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/local"
)

// sealSize and sealWrite are the plaintext per operation and the size of
// each write, as in keys/bench_test.go.
const (
	sealSize  = 32 * mib
	sealWrite = 64 * kib
)

// envelope measures envelope encryption alone (keys.Seal at the default
// segment size with a local provider key) against raw AES-256-GCM Seal of
// the same bytes, each on one goroutine, with testing.Benchmark
// (scenario 6). The functions are those of keys/bench_test.go, repeated
// here because a test package cannot import another's benchmarks.
func (h *harness) envelope(t *testing.T, rep *report) {
	kek, err := local.Open(t.TempDir(), "provider")
	if err != nil {
		t.Fatal(err)
	}
	plain := h.payload[:sealSize]
	if bt := flag.Lookup("test.benchtime"); bt != nil {
		old := bt.Value.String()
		if err := bt.Value.Set(h.plan.sealBenchtime); err != nil {
			t.Fatal(err)
		}
		defer bt.Value.Set(old)
	}
	bench := func(f func(b *testing.B)) func(int) (map[string]float64, error) {
		return func(int) (map[string]float64, error) {
			r := testing.Benchmark(f)
			if r.N == 0 {
				return nil, fmt.Errorf("benchmark failed")
			}
			return map[string]float64{"MiB/s": float64(r.Bytes) * float64(r.N) / mib / r.T.Seconds()}, nil
		}
	}
	vs := []variant{
		{"keys.Seal", bench(func(b *testing.B) { sealEnvelope(b, kek, plain) })},
		{"raw AES-GCM", bench(func(b *testing.B) { sealRaw(b, plain) })},
	}
	s, err := interleave(t, "envelope", true, h.plan.rounds, vs)
	if err != nil {
		t.Fatal(err)
	}
	scenario := fmt.Sprintf("6 encryption, %s in %s writes, one goroutine", sizeName(sealSize), sizeName(sealWrite))
	raw := rep.add(scenario, "seal", "raw AES-GCM", "MiB/s", s.get("raw AES-GCM", "MiB/s")).baseline()
	rep.add(scenario, "seal", fmt.Sprintf("keys.Seal (segment %s)", sizeName(keys.DefaultSegmentSize)), "MiB/s",
		s.get("keys.Seal", "MiB/s")).vs(raw, ">=", 0.85)
}

// sealEnvelope is BenchmarkSealSegmentSize at the default segment size: a
// fresh data key wrapped by kek, then the plaintext streamed through the
// sealer into io.Discard.
func sealEnvelope(b *testing.B, kek keys.Wrapper, plain []byte) {
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	ec := keys.EncryptionContext{
		keys.ContextAccount: "bench", keys.ContextArtifact: "envelope",
		keys.ContextType: "CALL_RECORDING", keys.ContextRegion: "us",
	}
	for b.Loop() {
		w, _, err := keys.Seal(context.Background(), io.Discard, keys.SealParams{
			Context: ec, Mode: keys.ModeProvider, KEKs: []keys.Wrapper{kek}, SegmentSize: keys.DefaultSegmentSize,
		})
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(plain); off += sealWrite {
			if _, err := w.Write(plain[off : off+sealWrite]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// sealRaw is BenchmarkRawAESGCM: AES-256-GCM Seal of the plaintext in
// sealWrite chunks, with no framing and no key work.
func sealRaw(b *testing.B, plain []byte) {
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	nonce := make([]byte, g.NonceSize())
	dst := make([]byte, 0, sealWrite+g.Overhead())
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		for off := 0; off < len(plain); off += sealWrite {
			nonce[0]++
			dst = g.Seal(dst[:0], nonce, plain[off:off+sealWrite], nil)
		}
	}
}
