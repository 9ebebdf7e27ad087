// Package chunks holds the pooled buffers that content chunks are decoded
// into, on both ends of a stream: the gateway decodes upload chunks into
// them, and clients (sealctl, the benchmark) decode read chunks into them
// with ClientCodec. The standard proto codec allocates a new slice for
// every chunk, about one byte of garbage per byte moved, and copies it
// twice; here a chunk is copied once, from gRPC's receive buffers straight
// into a pooled buffer that its user releases once done with it.
package chunks

import (
	"io"
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// PoolSize is the capacity of pooled chunk buffers; larger chunks get
// buffers of their own.
const PoolSize = 1 << 20

var pool = sync.Pool{New: func() any { b := make([]byte, PoolSize); return &b }}

// Buffer returns a buffer of n bytes, pooled when it fits. Its content is
// whatever was there: the caller fills all n bytes.
func Buffer(n int) []byte {
	if n > PoolSize {
		return make([]byte, n)
	}
	p := pool.Get().(*[]byte)
	return (*p)[:n]
}

// Release returns a chunk's buffer to the pool once nothing refers to it
// any more. Buffers that did not come from the pool are left to the
// garbage collector.
func Release(b []byte) {
	if cap(b) == PoolSize {
		b = b[:cap(b)]
		pool.Put(&b)
	}
}

// ReadBytesField copies the bytes of a message that holds nothing but one
// bytes field numbered num (an upload's or a read's chunk) into a chunk
// buffer; it reports false for anything else, which goes to the standard
// decoder.
func ReadBytesField(data mem.BufferSlice, num protowire.Number) ([]byte, bool) {
	// The tag and the length: at most 1 + 10 bytes.
	var head [16]byte
	r := data.Reader()
	defer r.Close()
	n, _ := io.ReadFull(r, head[:min(len(head), data.Len())])
	got, typ, tn := protowire.ConsumeTag(head[:n])
	if tn < 0 || got != num || typ != protowire.BytesType {
		return nil, false
	}
	size, ln := protowire.ConsumeVarint(head[tn:n])
	if ln < 0 || size != uint64(data.Len()-tn-ln) {
		return nil, false
	}
	dst := Buffer(int(size))
	copy(dst, head[tn+ln:n])
	if _, err := io.ReadFull(r, dst[n-tn-ln:]); err != nil {
		Release(dst)
		return nil, false
	}
	return dst, true
}

// ClientCodec returns a client codec (grpc.ForceCodecV2) that decodes the
// chunks of ReadArtifactResponse into pooled buffers, with one copy from
// gRPC's receive buffers, instead of allocating one per message: a reader
// of large artifacts then makes almost no garbage. Pass each chunk to
// Release once done with it; a chunk not released is collected as usual.
func ClientCodec() encoding.CodecV2 { return clientCodec{encoding.GetCodecV2("proto")} }

type clientCodec struct{ encoding.CodecV2 }

func (c clientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	resp, ok := v.(*sealgatev1.ReadArtifactResponse)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	if chunk, ok := ReadBytesField(data, 1); ok {
		resp.Reset()
		resp.Chunk = chunk
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}
