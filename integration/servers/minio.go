package servers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIORegion is the region every MinIO server that StartMinIO runs reports.
const MinIORegion = "us-east-1"

// minioStartTimeout bounds how long StartMinIO and Restart wait for MinIO to
// answer its liveness probe; a cold MinIO start formats its drive first.
const minioStartTimeout = 60 * time.Second

// MinIO is a running MinIO server process with one drive in a data
// directory that survives Stop and Restart. It stands for the object store
// of one region.
type MinIO struct {
	// Endpoint is "127.0.0.1:PORT", the form minio-go and miniostore.Config
	// expect (plain HTTP, so Secure is false).
	Endpoint string
	// URL is the base URL, "http://127.0.0.1:PORT".
	URL string
	// AccessKey and SecretKey are the root credentials, random per
	// StartMinIO and kept across Restart.
	AccessKey string
	SecretKey string
	// Region is MinIORegion.
	Region string
	// Port is the S3 API port and DataDir the drive; both stay the same
	// across Restart.
	Port    int
	DataDir string

	proc   *process
	client *minio.Client
}

// MinIOOption configures a server started by StartMinIO.
type MinIOOption func(*minioOptions)

type minioOptions struct {
	kmsSecretKey bool
	noCompat     bool
}

// WithNoCompat starts the server with --no-compat: it then gives objects
// random ETags instead of computing the MD5 of every byte written (a
// strict S3 compatibility that sealgate does not rely on: it uses ETags
// only as opaque versions and checks content by CRC32C).
func WithNoCompat() MinIOOption {
	return func(o *minioOptions) { o.noCompat = true }
}

// WithKMSSecretKey gives the server a built-in KMS key named "sealgate-key"
// (MINIO_KMS_SECRET_KEY, 32 random bytes kept across Restart) and turns on
// MINIO_KMS_AUTO_ENCRYPTION, so every object is stored with SSE-S3.
func WithKMSSecretKey() MinIOOption {
	return func(o *minioOptions) { o.kmsSecretKey = true }
}

// StartMinIO runs "minio server" on free ports of 127.0.0.1 (S3 API and
// console) with a data directory in t.TempDir() and random root
// credentials, and waits until GET /minio/health/live answers 200 with the
// object layer up. The process is killed in t.Cleanup. It fails the test
// when the binary cannot be installed or the server does not answer within
// 60 seconds; the tail of the server's log is logged then.
func StartMinIO(t testing.TB, opts ...MinIOOption) *MinIO {
	t.Helper()
	var o minioOptions
	for _, opt := range opts {
		opt(&o)
	}
	bin := Tool(t, "minio")
	port := FreePort(t)
	console := FreePort(t)
	for console == port {
		console = FreePort(t)
	}
	dir := t.TempDir()
	m := &MinIO{
		Endpoint:  hostPort(port),
		URL:       "http://" + hostPort(port),
		AccessKey: "sealgate-" + randomHex(t, 6),
		SecretKey: randomHex(t, 20),
		Region:    MinIORegion,
		Port:      port,
		DataDir:   filepath.Join(dir, "data"),
	}
	env := []string{
		"MINIO_ROOT_USER=" + m.AccessKey,
		"MINIO_ROOT_PASSWORD=" + m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		// Requests waiting for a slot give up soon instead of hanging tests.
		"MINIO_API_REQUESTS_DEADLINE=10s",
		// A temporary folder on the root disk is a fine drive for tests.
		"MINIO_CI_CD=on",
	}
	if o.kmsSecretKey {
		env = append(env,
			"MINIO_KMS_SECRET_KEY=sealgate-key:"+base64.StdEncoding.EncodeToString(randomBytes(t, 32)),
			"MINIO_KMS_AUTO_ENCRYPTION=on")
	}
	args := []string{"server", m.DataDir, "--address", hostPort(port), "--console-address", hostPort(console)}
	if o.noCompat {
		args = append(args, "--no-compat")
	}
	m.proc = newProcess("minio", bin, args, env, dir)
	client, err := minio.New(m.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Region:     m.Region,
		MaxRetries: 1,
	})
	if err != nil {
		t.Fatalf("servers: minio client: %v", err)
	}
	m.client = client
	t.Cleanup(m.Stop)
	m.start(t)
	return m
}

func (m *MinIO) start(t testing.TB) {
	t.Helper()
	if err := m.proc.start(); err != nil {
		t.Fatal(err)
	}
	probe := &http.Client{Timeout: 2 * time.Second}
	live := m.URL + "/minio/health/live"
	deadline := time.Now().Add(minioStartTimeout)
	var err error
	for {
		if m.proc.exited() {
			err = errors.New("process exited")
			break
		}
		if err = checkLive(probe, live); err == nil {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("servers: minio log tail (%s):\n%s", m.proc.logPath, m.proc.tail(40))
	m.proc.stop()
	t.Fatalf("servers: minio did not start within %v: %v", minioStartTimeout, err)
}

// checkLive returns nil once the liveness probe answers 200 without
// flagging the object layer as not yet initialised.
func checkLive(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("liveness probe answered %s", resp.Status)
	}
	if s := resp.Header.Get("X-Minio-Server-Status"); s == "offline" {
		return errors.New("object layer not initialised yet")
	}
	return nil
}

// Stop kills the process with SIGKILL and waits for it to exit, simulating
// a region whose object store went down. It is safe to call more than once.
func (m *MinIO) Stop() { m.proc.stop() }

// Restart stops the process if it runs and starts it again on the same port
// with the same data directory and credentials, so every bucket and object
// survives. It fails the test when the server does not answer within 60
// seconds.
func (m *MinIO) Restart(t testing.TB) {
	t.Helper()
	m.Stop()
	m.start(t)
}

// Client returns a root client for this server, for tests that inspect or
// arrange its contents directly. It retries nothing.
func (m *MinIO) Client(t testing.TB) *minio.Client {
	t.Helper()
	return m.client
}

// MakeBucket creates the bucket name. It fails the test on any error,
// including when the bucket exists.
func (m *MinIO) MakeBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: m.Region}); err != nil {
		t.Fatalf("servers: minio MakeBucket %s: %v", name, err)
	}
}

// randomBytes returns n bytes from crypto/rand, failing the test on error.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("servers: random: %v", err)
	}
	return b
}

// randomHex returns 2n random hexadecimal digits.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	return hex.EncodeToString(randomBytes(t, n))
}

// PID returns the MinIO server's process id (0 while it is stopped), so a
// benchmark can read its CPU time from /proc.
func (m *MinIO) PID() int { return m.proc.pid() }
