package keys_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"io"
	"testing"

	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/keystest"
)

const benchSize = 32 << 20

// BenchmarkSealSegmentSize measures sealing throughput per segment size; it
// is how DefaultSegmentSize was chosen (docs/format.md).
func BenchmarkSealSegmentSize(b *testing.B) {
	f := newFixture(b)
	plain := pattern(benchSize)
	for _, s := range []int{64 << 10, 256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("seg=%dKiB", s>>10), func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				w, _, err := keys.Seal(context.Background(), io.Discard, keys.SealParams{
					Context: keystest.Context("a", "b"), Mode: keys.ModeProvider,
					KEKs: []keys.Wrapper{f.kek}, SegmentSize: s,
				})
				if err != nil {
					b.Fatal(err)
				}
				for off := 0; off < len(plain); off += 64 << 10 {
					w.Write(plain[off : off+64<<10])
				}
				w.Close()
			}
		})
	}
}

// BenchmarkOpenSegmentSize measures verified decryption per segment size.
func BenchmarkOpenSegmentSize(b *testing.B) {
	f := newFixture(b)
	plain := pattern(benchSize)
	for _, s := range []int{64 << 10, 256 << 10, 1 << 20} {
		var buf bytes.Buffer
		w, _, err := keys.Seal(context.Background(), &buf, keys.SealParams{
			Context: keystest.Context("a", "b"), Mode: keys.ModeProvider,
			KEKs: []keys.Wrapper{f.kek}, SegmentSize: s,
		})
		if err != nil {
			b.Fatal(err)
		}
		w.Write(plain)
		w.Close()
		obj := buf.Bytes()
		b.Run(fmt.Sprintf("seg=%dKiB", s>>10), func(b *testing.B) {
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				r := bytes.NewReader(obj)
				h, err := keys.ReadHeader(r)
				if err != nil {
					b.Fatal(err)
				}
				pr, err := h.Open(context.Background(), r, f.kr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, pr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRawAESGCM is the baseline: AES-256-GCM Seal of the same bytes in
// 64 KiB chunks on one core, with no framing.
func BenchmarkRawAESGCM(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	g, _ := cipher.NewGCM(block)
	plain := pattern(benchSize)
	nonce := make([]byte, 12)
	dst := make([]byte, 0, 64<<10+16)
	b.SetBytes(benchSize)
	for i := 0; i < b.N; i++ {
		for off := 0; off < len(plain); off += 64 << 10 {
			nonce[0]++
			dst = g.Seal(dst[:0], nonce, plain[off:off+64<<10], nil)
		}
	}
}
