// Package miniostore implements store.Bucket over one bucket of MinIO or any
// other S3-compatible service, with minio-go. It is the only package of
// sealgate that imports minio-go.
//
// Objects are stored under their keys unchanged. S3 makes an object visible
// only once its upload is complete, so a failed Put never leaves a partial
// object; a failed multipart upload is aborted.
//
// Integrity and speed: requests are signed with Signature V4, but the
// payload is not hashed with SHA-256 (DisableContentSha256), which would
// cost a SHA-256 pass over every byte and, on plain HTTP, minio-go's chunked
// signing. Instead every object carries a full-object CRC32C: a single PUT
// sends it in a trailing header, a multipart upload sends one per part and
// the server combines them, and the server verifies it before it stores the
// object. Objects of known size up to 5 GiB (S3's limit) go up in one PUT
// streamed from the caller's reader: no part is held in memory or copied,
// and the server writes one object rather than parts it joins; objects of
// unknown size or larger go up in parts. Get does not ask for the CRC:
// what sealgate reads is authenticated ciphertext, so a changed byte fails
// decryption anyway, and the server checks its own bitrot hashes; checking
// the CRC in minio-go cost about 6% of the gateway's CPU per byte read
// (docs/performance.md). A copy through this process (CopyTo between
// servers) still checks it. Content-MD5 is not sent: it would make minio-go
// buffer whole objects in memory. What sealgate stores is authenticated
// ciphertext, so CRC32C only has to catch accidental corruption. The server
// must support additional checksums in trailers (MinIO and AWS S3 do).
//
// Errors wrap the sentinels of package store (see classify): a missing
// object is store.ErrNotFound, and a backend that cannot be reached or fails
// transiently is store.ErrUnavailable within a few seconds, since dialing
// times out after 2 seconds and minio-go makes at most two attempts at a
// request.
package miniostore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/sealgate/sealgate/store"
)

const (
	// DefaultPartSize is the part size of multipart uploads when
	// Config.PartSize is zero. A multipart upload holds one part in memory
	// at a time.
	DefaultPartSize = 8 << 20
	// MaxSinglePutSize is the largest object S3 takes in one PUT. Objects
	// of known size up to Config.SinglePutMax (by default this) go up in
	// one streaming PUT: no part is held in memory, and the store writes
	// one object instead of parts it then joins.
	MaxSinglePutSize = 5 << 30
	// MinPartSize and MaxPartSize are the limits S3 sets on a part.
	MinPartSize = 5 << 20
	MaxPartSize = 5 << 30
	// DefaultRegion is the region used when Config.Region is empty.
	DefaultRegion = "us-east-1"

	dialTimeout           = 2 * time.Second
	responseHeaderTimeout = 30 * time.Second
	maxAttempts           = 2 // minio-go's MaxRetries counts attempts
)

// Config says which bucket of which service Open connects to.
type Config struct {
	// Endpoint is the service's "host:port". A URL "http://host:port" or
	// "https://host:port" is accepted too; its scheme then decides Secure.
	Endpoint string
	// Bucket is the bucket's name; Open creates the bucket when missing.
	Bucket string
	// AccessKey and SecretKey are static credentials.
	AccessKey string
	SecretKey string
	// Region is the bucket's region; empty means DefaultRegion.
	Region string
	// Secure selects HTTPS.
	Secure bool
	// PartSize is the part size of multipart uploads in bytes, between
	// MinPartSize and MaxPartSize; zero means DefaultPartSize.
	PartSize uint64
	// SinglePutMax is the largest object of known size sent in one PUT;
	// larger ones, and those of unknown size, go up in parts. Zero means
	// MaxSinglePutSize, a negative value always parts.
	SinglePutMax int64
}

// Bucket is a store.Bucket kept in one S3 bucket. It is safe for concurrent
// use.
type Bucket struct {
	client    *minio.Client
	core      *minio.Core // the same client, for single-request GETs
	transport *http.Transport
	bucket    string
	endpoint  string // scheme://host:port, for SameEndpoint
	accessKey string
	secretKey string
	partSize  uint64
	singleMax int64
	closed    atomic.Bool
}

var _ store.Bucket = (*Bucket)(nil)

// Open connects to the bucket cfg describes, checks that the service
// answers, and creates the bucket when it does not exist. Open returns an
// error for an invalid configuration, an error wrapping store.ErrUnavailable
// when the service cannot be reached, the context's error when ctx ends
// first, and the service's error when the bucket cannot be checked or
// created (for example for wrong credentials).
func Open(ctx context.Context, cfg Config) (*Bucket, error) {
	host, secure, err := parseEndpoint(cfg.Endpoint, cfg.Secure)
	if err != nil {
		return nil, err
	}
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("miniostore: invalid bucket name %q: %w", cfg.Bucket, err)
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize || partSize > MaxPartSize {
		return nil, fmt.Errorf("miniostore: part size %d outside [%d, %d]", partSize, MinPartSize, MaxPartSize)
	}
	singleMax := cfg.SinglePutMax
	if singleMax == 0 {
		singleMax = MaxSinglePutSize
	}
	if singleMax > MaxSinglePutSize {
		return nil, fmt.Errorf("miniostore: single PUT limit %d above S3's %d", singleMax, int64(MaxSinglePutSize))
	}
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("miniostore: transport: %w", err)
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return bigWriteConn{c}, nil
	}
	transport.TLSHandshakeTimeout = 5 * time.Second
	transport.ResponseHeaderTimeout = responseHeaderTimeout
	client, err := minio.New(host, &minio.Options{
		Creds:           credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:          secure,
		Transport:       transport,
		Region:          region,
		TrailingHeaders: true,
		MaxRetries:      maxAttempts,
	})
	if err != nil {
		return nil, fmt.Errorf("miniostore: client: %w", err)
	}
	scheme := "http://"
	if secure {
		scheme = "https://"
	}
	b := &Bucket{
		client:    client,
		core:      &minio.Core{Client: client},
		transport: transport,
		bucket:    cfg.Bucket,
		endpoint:  scheme + host,
		accessKey: cfg.AccessKey,
		secretKey: cfg.SecretKey,
		partSize:  partSize,
		singleMax: singleMax,
	}
	if err := b.ensureBucket(ctx, region); err != nil {
		transport.CloseIdleConnections()
		return nil, err
	}
	return b, nil
}

// ensureBucket creates the bucket unless it exists.
func (b *Bucket) ensureBucket(ctx context.Context, region string) error {
	exists, err := b.client.BucketExists(ctx, b.bucket)
	if err != nil {
		return opError(ctx, "open bucket", b.bucket, err)
	}
	if exists {
		return nil
	}
	err = b.client.MakeBucket(ctx, b.bucket, minio.MakeBucketOptions{Region: region})
	if err != nil && !isCode(err, minio.BucketAlreadyOwnedByYou) {
		return opError(ctx, "create bucket", b.bucket, err)
	}
	return nil
}

// parseEndpoint returns the host:port of endpoint and whether to use HTTPS.
func parseEndpoint(endpoint string, secure bool) (string, bool, error) {
	if endpoint == "" {
		return "", false, errors.New("miniostore: empty endpoint")
	}
	if !strings.Contains(endpoint, "://") {
		return endpoint, secure, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false, fmt.Errorf("miniostore: endpoint: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", false, fmt.Errorf("miniostore: endpoint %q is not http(s)://host:port", endpoint)
	}
	return u.Host, u.Scheme == "https", nil
}

// Name returns the name of the S3 bucket.
func (b *Bucket) Name() string { return b.bucket }

// SameEndpoint reports whether dst is served by the same endpoint with the
// same credentials as b, so that CopyTo can copy between them on the
// server side. It returns false for a nil dst.
func (b *Bucket) SameEndpoint(dst *Bucket) bool {
	return dst != nil && b.endpoint == dst.endpoint && b.accessKey == dst.accessKey && b.secretKey == dst.secretKey
}

// Close marks the bucket closed, so later calls fail, and closes idle
// connections. Close always returns nil.
func (b *Bucket) Close() error {
	b.closed.Store(true)
	b.transport.CloseIdleConnections()
	return nil
}

// check returns an error when the bucket is closed, key is unacceptable or
// ctx has ended.
func (b *Bucket) check(ctx context.Context, key string) error {
	if b.closed.Load() {
		return errClosed
	}
	if err := store.ValidateKey(key); err != nil {
		return fmt.Errorf("miniostore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("miniostore: %w", err)
	}
	return nil
}

// bodyWriteSize is the most of a request body that goes to a plain-HTTP
// socket per write.
const bodyWriteSize = 256 << 10

var bodyWriteBuffers = sync.Pool{New: func() any { b := make([]byte, bodyWriteSize); return &b }}

// bigWriteConn is a connection whose ReadFrom, which net/http uses to send
// request bodies, copies through a 256 KiB buffer: Go's generic copy reads
// and writes 32 KiB at a time, so each 64 KiB chunk of minio-go's
// streaming body took two system calls, and at 100s of MiB/s the calls
// cost more CPU than the bytes they carry. It writes what each read
// returns and never waits for more, so a body that arrives slowly (a
// mover's copy from another store) flows as before. TLS connections frame
// records of their own and do not use it.
type bigWriteConn struct{ net.Conn }

// connWriter hides the connection's ReadFrom from io.CopyBuffer.
type connWriter struct{ net.Conn }

func (c bigWriteConn) ReadFrom(r io.Reader) (int64, error) {
	bp := bodyWriteBuffers.Get().(*[]byte)
	defer bodyWriteBuffers.Put(bp)
	return io.CopyBuffer(connWriter{c.Conn}, onlyReader{r}, *bp)
}

// onlyReader hides a reader's WriteTo, so that the copy uses the buffer.
type onlyReader struct{ io.Reader }
