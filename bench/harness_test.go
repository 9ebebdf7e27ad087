package bench

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/sealgate/sealgate/integration/servers"
	"github.com/sealgate/sealgate/store/miniostore"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// Buckets of the baselines; each gateway has its own (gatewayProc).
const (
	bucketDirect = "direct"
	bucketSSE    = "sse"
)

// plan is every size and count of one run of the harness.
type plan struct {
	quick bool
	// rounds is the number of counted rounds after the warm-up.
	rounds int
	// largeSizes are the artifact sizes of the throughput scenario.
	largeSizes []int64
	// smallSizes are the artifact sizes of the small-artifact scenario and
	// smallOps the operations per run at each concurrency.
	smallSizes []int
	smallOps   map[int]int
	// memStreams uploads of memSize bytes run at once in the memory scenario.
	memStreams int
	memSize    int64
	// kmsUploads small uploads at kmsConcurrency in the KMS-calls scenario.
	kmsUploads     int
	kmsConcurrency int
	// moverObjects staged objects of moverSize bytes move per mover run.
	moverObjects int
	moverSize    int64
	moverWorkers int
	// sealBenchtime is the -test.benchtime of each envelope benchmark run.
	sealBenchtime string
}

// newPlan returns the full plan, or the quick one (every size and count
// about 16 times smaller) when quick is set.
func newPlan(quick bool) plan {
	if quick {
		return plan{
			quick: true, rounds: 5,
			largeSizes: []int64{16 * mib, 64 * mib},
			smallSizes: []int{4 * kib, 64 * kib}, smallOps: map[int]int{1: 16, 64: 64},
			memStreams: 8, memSize: 64 * mib,
			kmsUploads: 625, kmsConcurrency: 16,
			moverObjects: 4, moverSize: 8 * mib, moverWorkers: 4,
			sealBenchtime: "100ms",
		}
	}
	return plan{
		rounds:     5,
		largeSizes: []int64{256 * mib, 1 * gib},
		smallSizes: []int{4 * kib, 64 * kib}, smallOps: map[int]int{1: 200, 64: 1000},
		memStreams: 8, memSize: 1 * gib,
		kmsUploads: 10000, kmsConcurrency: 16,
		moverObjects: 8, moverSize: 64 * mib, moverWorkers: 4,
		sealBenchtime: "1s",
	}
}

// harness is what every scenario shares: the servers, the gateway binary,
// direct clients of each MinIO and the payload.
type harness struct {
	plan plan
	bin  string // the sealgate binary
	// a and b are the gateway's regions us and de; s runs SSE-S3. n and sn
	// are a plain and an SSE-S3 MinIO started with --no-compat (no MD5 of
	// what they store), as docs/operations.md suggests for sealgate's.
	a, b, s, n, sn *servers.MinIO
	kms            *servers.LocalKMS
	// directA, directB, directS, directN and directSN are clients
	// configured like miniostore.
	directA, directB, directS, directN, directSN *minio.Core
	// payload is pseudo-random data as large as the largest artifact.
	payload []byte
}

// newHarness starts MinIO A, B, S, N and SN and local-kms, builds the gateway and
// generates the payload. Everything stops when t ends.
func newHarness(t *testing.T, p plan) *harness {
	t.Helper()
	h := &harness{plan: p}
	h.a = servers.StartMinIO(t)
	h.b = servers.StartMinIO(t)
	h.s = servers.StartMinIO(t, servers.WithKMSSecretKey())
	h.n = servers.StartMinIO(t, servers.WithNoCompat())
	h.sn = servers.StartMinIO(t, servers.WithKMSSecretKey(), servers.WithNoCompat())
	h.kms = servers.StartLocalKMS(t)
	h.a.MakeBucket(t, bucketDirect)
	h.s.MakeBucket(t, bucketSSE)
	h.n.MakeBucket(t, bucketDirect)
	h.sn.MakeBucket(t, bucketSSE)
	h.directA = directClient(t, h.a)
	h.directB = directClient(t, h.b)
	h.directS = directClient(t, h.s)
	h.directN = directClient(t, h.n)
	h.directSN = directClient(t, h.sn)
	h.bin = buildGateway(t)
	size := p.memSize
	for _, s := range p.largeSizes {
		size = max(size, s)
	}
	h.payload = make([]byte, size)
	rand.NewChaCha8([32]byte{'s', 'e', 'a', 'l'}).Read(h.payload)
	return h
}

// repoRoot returns the module root, one level above this package.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// buildGateway builds cmd/sealgate into a temporary folder and returns the
// binary's path.
func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sealgate")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sealgate")
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sealgate: %v\n%s", err, out)
	}
	return bin
}

// directClient returns a client of m set up exactly as miniostore.Open sets
// up the gateway's: minio-go's default transport with the same dial and
// header timeouts, Signature V4 without payload hashing, trailing checksum
// headers and two attempts per request.
func directClient(t *testing.T, m *servers.MinIO) *minio.Core {
	t.Helper()
	c, transport, err := newDirectClient(m.Endpoint, m.Region, m.AccessKey, m.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(transport.CloseIdleConnections)
	return c
}

// newDirectClient is directClient for a process without a test: the
// relay.
func newDirectClient(endpoint, region, accessKey, secretKey string) (*minio.Core, *http.Transport, error) {
	transport, err := minio.DefaultTransport(false)
	if err != nil {
		return nil, nil, err
	}
	transport.DialContext = (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	transport.TLSHandshakeTimeout = 5 * time.Second
	transport.ResponseHeaderTimeout = 30 * time.Second
	c, err := minio.New(endpoint, &minio.Options{
		Creds:           credentials.NewStaticV4(accessKey, secretKey, ""),
		Transport:       transport,
		Region:          region,
		TrailingHeaders: true,
		MaxRetries:      2,
	})
	if err != nil {
		return nil, nil, err
	}
	return &minio.Core{Client: c}, transport, nil
}

// putOptions are the options miniostore gives an upload of known size up
// to its single PUT limit (every upload here): one streaming PUT, no
// SHA-256 of the payload, and a full-object CRC32C in a trailer.
func putOptions() minio.PutObjectOptions {
	return minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		PartSize:             miniostore.DefaultPartSize,
		DisableMultipart:     true,
		DisableContentSha256: true,
		Checksum:             minio.ChecksumFullObjectCRC32C,
	}
}

// streamReader hides every method of r but Read. minio-go uploads a body
// that is an io.ReaderAt in parallel parts; the gateway's body is a pipe,
// which it uploads one part at a time, so the direct baseline hides ReadAt
// to take the same path.
type streamReader struct{ r io.Reader }

func (s streamReader) Read(p []byte) (int, error) { return s.r.Read(p) }

// putDirect uploads size bytes from r to bucket/key through c with the
// gateway's options.
func putDirect(ctx context.Context, c *minio.Core, bucket, key string, r io.Reader, size int64) error {
	_, err := c.Client.PutObject(ctx, bucket, key, r, size, putOptions())
	return err
}

// getDirect reads bucket/key through c as miniostore reads a whole object
// (one GET, no CRC asked for) into io.Discard and returns its length.
func getDirect(ctx context.Context, c *minio.Core, bucket, key string) (int64, error) {
	body, _, _, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return 0, err
	}
	defer body.Close()
	return io.Copy(io.Discard, body)
}

// quickMode reports whether SEALGATE_BENCH_QUICK asks for a smoke run.
func quickMode() bool {
	v := os.Getenv("SEALGATE_BENCH_QUICK")
	return v != "" && v != "0"
}
