package gateway

import (
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// chunkCodec is the proto codec with one change: upload chunks are decoded
// into pooled buffers, which the upload returns once it has encrypted them.
// The standard codec allocates a new slice for every chunk, about one byte
// of garbage per byte uploaded; with the pool it is close to none.
type chunkCodec struct {
	encoding.CodecV2
}

// Marshal encodes ReadArtifactResponse into a buffer of a pool with many
// size classes, and everything else with the standard codec. The standard
// codec's pool gives every message over 32 KiB a 1 MiB buffer, so each read
// message queued behind a slow client would cost 1 MiB whatever its size.
func (c chunkCodec) Marshal(v any) (mem.BufferSlice, error) {
	resp, ok := v.(*sealgatev1.ReadArtifactResponse)
	if !ok {
		return c.CodecV2.Marshal(v)
	}
	size := proto.Size(resp)
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := proto.MarshalOptions{UseCachedSize: true}.Marshal(resp)
		return mem.BufferSlice{mem.SliceBuffer(b)}, err
	}
	buf := sendPool.Get(size)
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend((*buf)[:0], resp)
	if err != nil {
		sendPool.Put(buf)
		return nil, err
	}
	*buf = b
	return mem.BufferSlice{mem.NewBuffer(buf, sendPool)}, nil
}

// sendPool holds read-message buffers in size classes from 32 KiB to 1 MiB,
// each with room for the message's own fields beside its chunk.
var sendPool = func() mem.BufferPool {
	var sizes []int
	for s := 32 << 10; s <= readChunkSize; s *= 2 {
		sizes = append(sizes, s+16<<10)
	}
	return mem.NewTieredBufferPool(sizes...)
}()

// chunkPoolSize is the capacity of pooled chunk buffers; larger chunks (up
// to MaxRecvMsgSize) get buffers of their own.
const chunkPoolSize = 1 << 20

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkPoolSize); return &b }}

// newChunkCodec wraps the registered proto codec.
func newChunkCodec() encoding.CodecV2 {
	return chunkCodec{CodecV2: encoding.GetCodecV2("proto")}
}

// Unmarshal decodes UploadArtifactRequest itself and everything else with
// the standard codec.
func (c chunkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*sealgatev1.UploadArtifactRequest)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	if chunk, ok := onlyChunk(b); ok {
		dst := chunkBuffer(len(chunk))
		copy(dst, chunk)
		req.Reset()
		req.Payload = &sealgatev1.UploadArtifactRequest_Chunk{Chunk: dst}
		return nil
	}
	return proto.Unmarshal(b, req)
}

// onlyChunk returns the chunk of a message that holds nothing but field 2
// (bytes chunk); anything else goes to the standard decoder.
func onlyChunk(b []byte) ([]byte, bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != 2 || typ != protowire.BytesType {
		return nil, false
	}
	chunk, m := protowire.ConsumeBytes(b[n:])
	if m < 0 || n+m != len(b) {
		return nil, false
	}
	return chunk, true
}

// chunkBuffer returns a buffer of n bytes, pooled when it fits.
func chunkBuffer(n int) []byte {
	if n > chunkPoolSize {
		return make([]byte, n)
	}
	p := chunkPool.Get().(*[]byte)
	return (*p)[:n]
}

// releaseChunk returns a chunk's buffer to the pool once nothing refers to
// it any more.
func releaseChunk(b []byte) {
	if cap(b) == chunkPoolSize {
		b = b[:cap(b)]
		chunkPool.Put(&b)
	}
}
