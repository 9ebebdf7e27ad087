package gateway

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

func TestChunkCodecDecodesLikeProto(t *testing.T) {
	c := newChunkCodec()
	for _, msg := range []*sealgatev1.UploadArtifactRequest{
		{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: bytes.Repeat([]byte("abc"), 100000)}},
		{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: []byte{}}},
		{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: make([]byte, 2*chunkPoolSize)}},
		{Payload: &sealgatev1.UploadArtifactRequest_Header{Header: &sealgatev1.UploadHeader{SipZone: "us-west", Labels: map[string]string{"a": "b"}}}},
	} {
		wire, err := proto.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		// Split the wire bytes over two buffers, as the transport may.
		half := len(wire) / 2
		data := mem.BufferSlice{mem.SliceBuffer(wire[:half]), mem.SliceBuffer(wire[half:])}
		got := &sealgatev1.UploadArtifactRequest{}
		if err := c.Unmarshal(data, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, msg) {
			t.Fatalf("decoded %v, want %v", got, msg)
		}
		releaseChunk(got.GetChunk())
	}
	// Other messages use the standard codec.
	other := &sealgatev1.GetArtifactRequest{Name: "accounts/a/artifacts/b"}
	wire, _ := proto.Marshal(other)
	got := &sealgatev1.GetArtifactRequest{}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, got); err != nil || !proto.Equal(got, other) {
		t.Fatalf("other message: %v, %v", got, err)
	}
}

func BenchmarkUploadChunkDecode(b *testing.B) {
	c := newChunkCodec()
	wire, _ := proto.Marshal(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: make([]byte, 1<<20)}})
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		req := &sealgatev1.UploadArtifactRequest{}
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, req); err != nil {
			b.Fatal(err)
		}
		releaseChunk(req.GetChunk())
	}
}
