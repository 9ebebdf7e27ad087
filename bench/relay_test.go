package bench

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/sealgate/sealgate/integration/servers"
	"github.com/sealgate/sealgate/keys"
)

// A relay is the floor under any gateway that runs as its own process in
// front of a store: it moves an artifact's bytes between a client's TCP
// connection and MinIO, with the gateway's minio-go settings (one streaming
// PUT with a CRC32C trailer, one GET without a checksum), and does nothing
// else. With AES it also seals each segment of keys.DefaultSegmentSize
// bytes with AES-256-GCM on the way in and opens it on the way out, as the
// envelope does, with no key work, no header and no framing. There is no
// gRPC, no HTTP/2, no authentication and no control store. Its CPU per GiB,
// read from /proc like the gateway's, is what the gateway's own cost could
// fall to at best on this machine; its sum with its store's is the least a
// separate process can make the servers spend.
//
// The relay is this test binary run again with relayEnv set (TestMain).
// Each connection carries one request line, "PUT key size aes\n" followed
// by size bytes and answered "OK\n" (or "ERR message\n"), or "GET key
// aes\n" answered by the object's bytes and the end of the connection
// (short on failure), where aes is 0 or 1.
const (
	relayEnv       = "SEALGATE_BENCH_RELAY"
	relayAccessEnv = "SEALGATE_BENCH_RELAY_ACCESS_KEY"
	relaySecretEnv = "SEALGATE_BENCH_RELAY_SECRET_KEY"
	relayBucket    = bucketDirect
	relayIOSize    = 1 * mib // the relay's reads and writes of plaintext
)

// relayReady starts the line a relay prints with its address once it listens.
const relayReady = "relay ready on "

// TestMain runs the relay instead of the tests in a process started with
// relayEnv set.
func TestMain(m *testing.M) {
	if spec := os.Getenv(relayEnv); spec != "" {
		if err := runRelay(spec); err != nil {
			fmt.Fprintln(os.Stderr, "relay:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// relayProc is a running relay in front of one MinIO.
type relayProc struct {
	pid  int
	addr string
}

// startRelay starts a relay in front of m (whose bucket relayBucket must
// exist); it stops when t ends.
func startRelay(t *testing.T, m *servers.MinIO) *relayProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), relayEnv+"="+m.Endpoint+" "+m.Region,
		relayAccessEnv+"="+m.AccessKey, relaySecretEnv+"="+m.SecretKey)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), relayReady)
	if err != nil || !ok {
		t.Fatalf("relay did not start: %q, %v", line, err)
	}
	go io.Copy(io.Discard, out)
	return &relayProc{pid: cmd.Process.Pid, addr: addr}
}

// roundTrip uploads data through the relay and reads it back, like
// gatewayRoundTrip, with the CPU of the relay in the gateway's place.
func (r *relayProc) roundTrip(cpu cpuMeter, key string, data []byte, withAES bool) (map[string]float64, error) {
	flag := 0
	if withAES {
		flag = 1
	}
	return roundTrip(cpu, int64(len(data)), func() error {
		return r.put(key, data, flag)
	}, func() (int64, error) {
		return r.get(key, flag)
	})
}

func (r *relayProc) put(key string, data []byte, flag int) error {
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "PUT %s %d %d\n", key, len(data), flag); err != nil {
		return err
	}
	for off := 0; off < len(data); off += uploadChunk {
		if _, err := conn.Write(data[off:min(off+uploadChunk, len(data))]); err != nil {
			return err
		}
	}
	answer, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if answer != "OK\n" {
		return errors.New(strings.TrimSpace(answer))
	}
	return nil
}

func (r *relayProc) get(key string, flag int) (int64, error) {
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET %s %d\n", key, flag); err != nil {
		return 0, err
	}
	var w countingWriter
	buf := make([]byte, relayIOSize)
	n, err := io.CopyBuffer(&w, conn, buf)
	return n, err
}

// runRelay is the relay process: it serves connections until killed.
func runRelay(spec string) error {
	endpoint, region, _ := strings.Cut(spec, " ")
	c, _, err := newDirectClient(endpoint, region, os.Getenv(relayAccessEnv), os.Getenv(relaySecretEnv))
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("%s%s\n", relayReady, l.Addr())
	for {
		conn, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			if err := relayServe(c, aead, conn); err != nil {
				fmt.Fprintf(os.Stderr, "relay: %v\n", err)
			}
		}()
	}
}

func relayServe(c *minio.Core, aead cipher.AEAD, conn net.Conn) error {
	ctx := context.Background()
	in := bufio.NewReaderSize(conn, 64*kib)
	line, err := in.ReadString('\n')
	if err != nil {
		return err
	}
	f := strings.Fields(line)
	switch {
	case len(f) == 4 && f[0] == "PUT":
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return err
		}
		var body io.Reader = io.LimitReader(in, size)
		stored := size
		if f[3] == "1" {
			body = &sealReader{src: body, aead: aead}
			stored += int64(aead.Overhead()) * ((size + keys.DefaultSegmentSize - 1) / keys.DefaultSegmentSize)
		}
		err = putDirect(ctx, c, relayBucket, f[1], streamReader{body}, stored)
		if err != nil {
			fmt.Fprintf(conn, "ERR %v\n", err)
			return err
		}
		_, err = io.WriteString(conn, "OK\n")
		return err
	case len(f) == 3 && f[0] == "GET":
		obj, _, _, err := c.GetObject(ctx, relayBucket, f[1], minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer obj.Close()
		if f[2] == "1" {
			return openTo(conn, obj, aead)
		}
		buf := make([]byte, relayIOSize)
		for {
			n, err := io.ReadFull(obj, buf)
			if n > 0 {
				if _, werr := conn.Write(buf[:n]); werr != nil {
					return werr
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil
			} else if err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("bad request %q", line)
}

// sealReader reads src's bytes sealed segment by segment: each
// keys.DefaultSegmentSize bytes of plaintext (the last may be shorter)
// become their AES-256-GCM ciphertext and tag, the nonce the segment's
// number.
type sealReader struct {
	src  io.Reader
	aead cipher.AEAD
	seg  uint64
	buf  []byte
	out  []byte
}

func (s *sealReader) Read(p []byte) (int, error) {
	if len(s.out) == 0 {
		if s.buf == nil {
			s.buf = make([]byte, keys.DefaultSegmentSize, keys.DefaultSegmentSize+s.aead.Overhead())
		}
		n, err := io.ReadFull(s.src, s.buf[:keys.DefaultSegmentSize])
		if n == 0 {
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			return 0, err
		}
		s.out = s.aead.Seal(s.buf[:0], s.nonce(), s.buf[:n], nil)
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

func (s *sealReader) nonce() []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[4:], s.seg)
	s.seg++
	return n
}

// openTo reverses sealReader: it opens src's segments in place and writes
// their plaintext to w.
func openTo(w io.Writer, src io.Reader, aead cipher.AEAD) error {
	buf := make([]byte, keys.DefaultSegmentSize+aead.Overhead())
	nonce := make([]byte, 12)
	for seg := uint64(0); ; seg++ {
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			binary.BigEndian.PutUint64(nonce[4:], seg)
			plain, oerr := aead.Open(buf[:0], nonce, buf[:n], nil)
			if oerr != nil {
				return oerr
			}
			if _, werr := w.Write(plain); werr != nil {
				return werr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}
