package gateway

import (
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sealgate/sealgate/gateway/chunks"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// chunkCodec is the proto codec with one change: upload chunks are decoded
// into pooled buffers, which the upload returns once it has encrypted them.
// The standard codec allocates a new slice for every chunk, about one byte
// of garbage per byte uploaded; with the pool it is close to none.
type chunkCodec struct {
	encoding.CodecV2
}

// Marshal encodes a read's messages (readMessage) without copying their
// chunk: gRPC gets the chunk's pooled buffer itself and returns it to the
// pool once it has written it. Everything else goes to the standard codec.
func (c chunkCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*readMessage)
	if !ok {
		return c.CodecV2.Marshal(v)
	}
	return m.marshal()
}

// readMessage is a ReadArtifactResponse as the read handler sends it: the
// chunk in a buffer of readPool, which belongs to gRPC once the message is
// sent, and the artifact (first message only).
type readMessage struct {
	chunk    *[]byte // its length is the chunk's
	artifact *sealgatev1.Artifact
}

// marshal encodes m as ReadArtifactResponse's wire form, fields in number
// order: chunk (1), then artifact (2).
func (m *readMessage) marshal() (mem.BufferSlice, error) {
	var out mem.BufferSlice
	if n := len(*m.chunk); n > 0 {
		head := protowire.AppendVarint(protowire.AppendTag(make([]byte, 0, 8), 1, protowire.BytesType), uint64(n))
		out = append(out, mem.SliceBuffer(head), mem.NewBuffer(m.chunk, readPool))
	} else {
		readPool.Put(m.chunk)
	}
	if m.artifact != nil {
		b, err := proto.Marshal(m.artifact)
		if err != nil {
			out.Free()
			return nil, err
		}
		field := protowire.AppendBytes(protowire.AppendTag(make([]byte, 0, len(b)+8), 2, protowire.BytesType), b)
		out = append(out, mem.SliceBuffer(field))
	}
	return out, nil
}

// readPool holds the chunk buffers of reads in size classes from 32 KiB
// to 1 MiB, a power of two each (reads ramp their message size up from
// 32 KiB). It does not zero a buffer it hands out: a read fills exactly
// the length it sends.
var readPool = newClassPool(15, 20)

// transportPool is the gRPC transport's buffer pool (frames of up to 16
// KiB, whole messages up to 1 MiB). gRPC's default pool zeroes every
// buffer it hands out, a second write of every byte received; the
// transport fills exactly the length it asks for, so this one does not.
var transportPool = newClassPool(8, 20)

// classPool is a mem.BufferPool of buffers whose capacities are powers of
// two between 1<<lo and 1<<hi; larger ones are allocated and dropped.
type classPool struct {
	lo, hi int
	pools  []sync.Pool
}

func newClassPool(lo, hi int) *classPool {
	return &classPool{lo: lo, hi: hi, pools: make([]sync.Pool, hi-lo+1)}
}

// class returns the index of the smallest class that holds n bytes, or -1.
func (p *classPool) class(n int) int {
	for c := p.lo; c <= p.hi; c++ {
		if n <= 1<<c {
			return c - p.lo
		}
	}
	return -1
}

func (p *classPool) Get(n int) *[]byte {
	c := p.class(n)
	if c < 0 {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.pools[c].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(p.lo+c))
	return &b
}

func (p *classPool) Put(b *[]byte) {
	c := p.class(cap(*b))
	if c < 0 || cap(*b) != 1<<(p.lo+c) {
		return // not one of ours
	}
	p.pools[c].Put(b)
}

// newChunkCodec wraps the registered proto codec.
func newChunkCodec() encoding.CodecV2 {
	return chunkCodec{CodecV2: encoding.GetCodecV2("proto")}
}

// Unmarshal decodes UploadArtifactRequest itself and everything else with
// the standard codec. A message that holds only a chunk (every message of
// an upload but its header) is copied once, from gRPC's receive buffers
// straight into a pooled chunk buffer; the standard decoder would first
// join the buffers into one and then copy the chunk out of it.
func (c chunkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*sealgatev1.UploadArtifactRequest)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	if chunk, ok := chunks.ReadBytesField(data, 2); ok {
		req.Reset()
		req.Payload = &sealgatev1.UploadArtifactRequest_Chunk{Chunk: chunk}
		return nil
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), req)
}
