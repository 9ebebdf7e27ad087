package gateway

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/sealgate/sealgate/gateway/chunks"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

func TestChunkCodecDecodesLikeProto(t *testing.T) {
	c := newChunkCodec()
	for _, msg := range []*sealgatev1.UploadArtifactRequest{
		{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: bytes.Repeat([]byte("abc"), 100000)}},
		{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: []byte{}}},
		{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: []byte("tiny")}},
		{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: bytes.Repeat([]byte{9}, 200)}},
		{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: make([]byte, 2*chunks.PoolSize)}},
		{Payload: &sealgatev1.UploadArtifactRequest_Header{Header: &sealgatev1.UploadHeader{SipZone: "us-west", Labels: map[string]string{"a": "b"}}}},
	} {
		wire, err := proto.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		// The transport hands a message over in any number of buffers:
		// one, two halves, single bytes across the tag and length, and
		// HTTP/2 frames of 16 KiB.
		for _, data := range []mem.BufferSlice{split(wire), split(wire, len(wire)/2), split(wire, 1, 1, 1, 1, 1), frames(wire, 16<<10)} {
			got := &sealgatev1.UploadArtifactRequest{}
			if err := c.Unmarshal(data, got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, msg) {
				t.Fatalf("decoded from %d buffers: %.60v, want %.60v", len(data), got, msg)
			}
			chunks.Release(got.GetChunk())
		}
	}
	// A chunk message with another field after the chunk is not only a
	// chunk: the standard decoder takes it.
	wire, _ := proto.Marshal(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: []byte("abc")}})
	wire = append(wire, 0x0a, 0x00) // field 1 (header), empty
	got := &sealgatev1.UploadArtifactRequest{}
	if err := c.Unmarshal(split(wire, 2), got); err != nil || got.GetHeader() == nil {
		t.Fatalf("chunk then header: %v, %v; want the standard decoder's last-field-wins header", got, err)
	}
	// Other messages use the standard codec.
	other := &sealgatev1.GetArtifactRequest{Name: "accounts/a/artifacts/b"}
	wire, _ = proto.Marshal(other)
	gotOther := &sealgatev1.GetArtifactRequest{}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, gotOther); err != nil || !proto.Equal(gotOther, other) {
		t.Fatalf("other message: %v, %v", gotOther, err)
	}
}

// split cuts b into buffers of the given sizes and one of the rest.
func split(b []byte, sizes ...int) mem.BufferSlice {
	var out mem.BufferSlice
	for _, n := range sizes {
		n = min(n, len(b))
		out = append(out, mem.SliceBuffer(b[:n]))
		b = b[n:]
	}
	return append(out, mem.SliceBuffer(b))
}

// frames cuts b into buffers of n bytes.
func frames(b []byte, n int) mem.BufferSlice {
	var out mem.BufferSlice
	for len(b) > n {
		out = append(out, mem.SliceBuffer(b[:n]))
		b = b[n:]
	}
	return append(out, mem.SliceBuffer(b))
}

func BenchmarkUploadChunkDecode(b *testing.B) {
	c := newChunkCodec()
	wire, _ := proto.Marshal(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: make([]byte, 1<<20)}})
	data := frames(wire, 16<<10) // as HTTP/2 delivers it
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		req := &sealgatev1.UploadArtifactRequest{}
		if err := c.Unmarshal(data, req); err != nil {
			b.Fatal(err)
		}
		chunks.Release(req.GetChunk())
	}
}

// A read's message encodes exactly as the ReadArtifactResponse it stands
// for, with the chunk's pooled buffer handed to gRPC as it is.
func TestReadMessageEncodesAsReadArtifactResponse(t *testing.T) {
	c := newChunkCodec()
	art := &sealgatev1.Artifact{Name: "accounts/demo/artifacts/x", SizeBytes: 42}
	for _, tc := range []struct {
		chunk    []byte
		artifact *sealgatev1.Artifact
	}{
		{bytes.Repeat([]byte("k"), 300<<10), art},
		{bytes.Repeat([]byte("z"), 1<<20), nil},
		{[]byte{}, art},
		{[]byte("x"), nil},
	} {
		buf := readPool.Get(len(tc.chunk))
		copy(*buf, tc.chunk)
		data, err := c.Marshal(&readMessage{chunk: buf, artifact: tc.artifact})
		if err != nil {
			t.Fatal(err)
		}
		got := &sealgatev1.ReadArtifactResponse{}
		if err := proto.Unmarshal(data.Materialize(), got); err != nil {
			t.Fatal(err)
		}
		want := &sealgatev1.ReadArtifactResponse{Chunk: tc.chunk, Artifact: tc.artifact}
		if !proto.Equal(got, want) {
			t.Fatalf("decoded %.80v, want %.80v", got, want)
		}
		if len(tc.chunk) > 0 && !sameMemory(data, *buf) {
			t.Fatal("the chunk was copied, want its buffer handed over")
		}
		data.Free()
	}
}

// sameMemory reports whether one of data's buffers is b itself.
func sameMemory(data mem.BufferSlice, b []byte) bool {
	for _, d := range data {
		if r := d.ReadOnlyData(); len(r) == len(b) && len(b) > 0 && &r[0] == &b[0] {
			return true
		}
	}
	return false
}

func TestClassPoolSizes(t *testing.T) {
	p := newClassPool(15, 20)
	for _, n := range []int{1, 32 << 10, 32<<10 + 1, 1 << 20} {
		b := p.Get(n)
		if len(*b) != n || cap(*b) < n || cap(*b)&(cap(*b)-1) != 0 {
			t.Fatalf("Get(%d): len %d cap %d, want len %d and a power-of-two capacity", n, len(*b), cap(*b), n)
		}
		p.Put(b)
	}
	if b := p.Get(2 << 20); len(*b) != 2<<20 {
		t.Fatalf("Get above the largest class: len %d", len(*b))
	}
}

// The client codec decodes a read's messages like the standard codec,
// chunks into pooled buffers.
func TestClientCodecDecodesReadMessages(t *testing.T) {
	c := chunks.ClientCodec()
	for _, msg := range []*sealgatev1.ReadArtifactResponse{
		{Chunk: bytes.Repeat([]byte("r"), 700<<10)},
		{Chunk: []byte("x")},
		{Chunk: bytes.Repeat([]byte("a"), 100), Artifact: &sealgatev1.Artifact{Name: "accounts/a/artifacts/b"}},
		{Artifact: &sealgatev1.Artifact{Name: "accounts/a/artifacts/b"}},
	} {
		wire, err := proto.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		got := &sealgatev1.ReadArtifactResponse{}
		if err := c.Unmarshal(frames(wire, 16<<10), got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, msg) {
			t.Fatalf("decoded %.60v, want %.60v", got, msg)
		}
		chunks.Release(got.GetChunk())
	}
}
