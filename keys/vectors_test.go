package keys_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/local"
)

// The format v1 test vectors in testdata/vectors pin the object format: any
// change that makes old objects unreadable, or re-encodes a header
// differently, fails here. Regenerate only for a new format version:
//
//	go test ./keys -run TestVectors -update-vectors
var updateVectors = flag.Bool("update-vectors", false, "rewrite the format test vectors")

const vectorDir = "testdata/vectors"

// vector describes one sealed object in testdata/vectors.
type vector struct {
	Description  string            `json:"description"`
	Object       string            `json:"object"` // file name of the object bytes
	Context      map[string]string `json:"context"`
	ContextHex   string            `json:"context_encoding_hex"`
	Metadata     map[string]string `json:"metadata"`
	Mode         string            `json:"mode"`
	SegmentSize  int               `json:"segment_size"`
	KeyURIs      []string          `json:"key_uris"`
	HeaderLen    int               `json:"header_len"`
	PlainLen     int               `json:"plaintext_len"`
	PlainSHA256  string            `json:"plaintext_sha256"`
	PlainPattern string            `json:"plaintext_pattern"`
}

var vectorSpecs = []struct {
	name  string
	desc  string
	n     int
	seg   int
	mode  keys.Mode
	keks  []string
	extra map[string]string
	// cached makes SlotKindIntermediate slots through a KeyCache.
	cached bool
}{
	{"v1-empty", "empty plaintext, provider key", 0, keys.MinSegmentSize, keys.ModeProvider, []string{"vector-provider"}, nil, false},
	{"v1-small", "11 bytes, provider key, with labels", 11, keys.DefaultSegmentSize, keys.ModeProvider, []string{"vector-provider"},
		map[string]string{"content_type": "text/plain", "label.lang": "en"}, false},
	{"v1-segments", "3.5 segments of 64 KiB", keys.MinSegmentSize*3 + keys.MinSegmentSize/2, keys.MinSegmentSize, keys.ModeProvider, []string{"vector-provider"}, nil, false},
	{"v1-both-keys", "customer and provider keys: XOR of two wrapped shares", 1000, keys.MinSegmentSize, keys.ModeCustomerAndProvider,
		[]string{"vector-customer", "vector-provider"}, nil, false},
	{"v1-intermediate", "customer key through an intermediate key (SlotKindIntermediate)", 1000, keys.MinSegmentSize, keys.ModeCustomer,
		[]string{"vector-customer"}, nil, true},
}

func vectorKeyring(t *testing.T) *keys.Keyring {
	kr := keys.NewKeyring()
	kr.Register(local.Scheme, local.Opener{Dir: vectorDir, Create: *updateVectors})
	return kr
}

func TestVectors(t *testing.T) {
	if *updateVectors {
		writeVectors(t)
	}
	kr := keys.NewKeyCache(vectorKeyring(t), time.Minute)
	for _, spec := range vectorSpecs {
		t.Run(spec.name, func(t *testing.T) {
			var v vector
			b, err := os.ReadFile(filepath.Join(vectorDir, spec.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			obj, err := os.ReadFile(filepath.Join(vectorDir, v.Object))
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(keys.EncryptionContext(v.Context).Encode()); got != v.ContextHex {
				t.Errorf("context encoding = %s, want %s", got, v.ContextHex)
			}
			r := bytes.NewReader(obj)
			h, err := keys.ReadHeader(r)
			if err != nil {
				t.Fatal(err)
			}
			if !keys.EncryptionContext(v.Context).Equal(h.Context) || !reflect.DeepEqual(h.Metadata, v.Metadata) ||
				h.Mode.String() != v.Mode || h.SegmentSize != v.SegmentSize || !reflect.DeepEqual(h.KeyURIs(), v.KeyURIs) || h.Len() != v.HeaderLen {
				t.Errorf("header = %+v, want the vector's %+v", h, v)
			}
			enc, err := h.Encode()
			if err != nil || !bytes.Equal(enc, obj[:h.Len()]) {
				t.Errorf("re-encoded header differs from the stored one")
			}
			pr, err := h.Open(context.Background(), r, kr)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(pr)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(plain)
			if len(plain) != v.PlainLen || hex.EncodeToString(sum[:]) != v.PlainSHA256 || !bytes.Equal(plain, pattern(v.PlainLen)) {
				t.Errorf("plaintext: %d bytes, sha256 %x; want %d bytes, %s", len(plain), sum, v.PlainLen, v.PlainSHA256)
			}
		})
	}
}

func writeVectors(t *testing.T) {
	ctx := context.Background()
	kr := vectorKeyring(t)
	cache := keys.NewKeyCache(kr, time.Minute)
	for _, spec := range vectorSpecs {
		var wrappers []keys.ShareWrapper
		for _, name := range spec.keks {
			w, err := kr.Wrapper(ctx, "local://"+name)
			if err != nil {
				t.Fatal(err)
			}
			if spec.cached {
				wrappers = append(wrappers, cache.For(w.KeyURI()))
			} else {
				wrappers = append(wrappers, keys.Direct(w))
			}
		}
		ec := keys.EncryptionContext{keys.ContextAccount: "acme", keys.ContextArtifact: "06h1ntzz9713j1zr63q9kqkfjm-usde",
			keys.ContextType: "CALL_RECORDING", keys.ContextRegion: "de"}
		meta := map[string]string{"create_time": "2026-11-27T00:00:00Z", "sip_zone": "us-west"}
		for k, v := range spec.extra {
			meta[k] = v
		}
		var buf bytes.Buffer
		w, h, err := keys.Seal(ctx, &buf, keys.SealParams{Context: ec, Metadata: meta, Mode: spec.mode, Wrappers: wrappers, SegmentSize: spec.seg})
		if err != nil {
			t.Fatal(err)
		}
		plain := pattern(spec.n)
		w.Write(plain)
		w.Close()
		sum := sha256.Sum256(plain)
		v := vector{
			Description: spec.desc, Object: spec.name + ".sgo", Context: ec, ContextHex: hex.EncodeToString(ec.Encode()),
			Metadata: meta, Mode: spec.mode.String(), SegmentSize: spec.seg, KeyURIs: h.KeyURIs(), HeaderLen: h.Len(),
			PlainLen: spec.n, PlainSHA256: hex.EncodeToString(sum[:]),
			PlainPattern: "32-byte blocks: block i is SHA-256 of 8 bytes [i&255, i>>8&255, i>>16&255, 0, 0, 0, 0, 0] where i is the byte offset of the block",
		}
		js, _ := json.MarshalIndent(v, "", "  ")
		os.WriteFile(filepath.Join(vectorDir, spec.name+".json"), append(js, '\n'), 0o644)
		os.WriteFile(filepath.Join(vectorDir, v.Object), buf.Bytes(), 0o644)
	}
}
