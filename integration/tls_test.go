package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// testCA is a certificate authority for the tests' own certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sealgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a server certificate for 127.0.0.1 and localhost with serial
// to certPath and keyPath.
func (ca *testCA) issue(t *testing.T, serial int64, certPath, keyPath string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "sealgate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	// Write the key first and the certificate last, each atomically, as a
	// certificate manager would.
	writeAtomic(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	writeAtomic(t, certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// servedSerial returns the serial of the certificate a new connection to
// addr is shown.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func TestTLSListener(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway binary and grpcurl")
	}
	bin := binaries(t)
	grpcurl := tool(t, "grpcurl")
	dir := t.TempDir()
	ca := newCA(t)
	caPath, certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(caPath, ca.pem, 0o644)
	ca.issue(t, 100, certPath, keyPath)
	data := filepath.Join(dir, "data")
	p := startProc(t, dir, data, bin+"/sealgate", "serve", "--listen", "127.0.0.1:0", "--data-dir", data,
		"--tls-cert", certPath, "--tls-key", keyPath)

	// grpcurl with the CA lists the services; plaintext is refused.
	out, err := exec.Command(grpcurl, "-cacert", caPath, p.Addr, "list").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "sealgate.v1.ArtifactService") {
		t.Fatalf("grpcurl -cacert list: %v\n%s", err, out)
	}
	if out, err := exec.Command(grpcurl, "-plaintext", p.Addr, "list").CombinedOutput(); err == nil {
		t.Fatalf("grpcurl -plaintext against the TLS port succeeded:\n%s", out)
	}

	// sealctl with --ca-cert uploads; a long read stays open across a
	// certificate change.
	sealctl := func(args ...string) ([]byte, error) {
		cmd := exec.Command(bin+"/sealctl", append(args, "--addr", p.Addr, "--ca-cert", caPath, "--token-file", filepath.Join(data, "dev-token"))...)
		cmd.Dir = dir
		return cmd.CombinedOutput()
	}
	content := bytes.Repeat([]byte("tls "), 4<<20)
	os.WriteFile(filepath.Join(dir, "in"), content, 0o600)
	up, err := sealctl("upload", "--type", "CALL_RECORDING", "--sip-zone", "us-west", filepath.Join(dir, "in"))
	if err != nil {
		t.Fatalf("sealctl upload over TLS: %v\n%s", err, up)
	}
	name := strings.TrimSpace(string(up))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	conn, err := grpc.NewClient(p.Addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := bearer(context.Background(), p.token(t))
	stream, err := sealgatev1.NewArtifactServiceClient(conn).ReadArtifact(ctx, &sealgatev1.ReadArtifactRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, p.Addr, roots); got != 100 {
		t.Fatalf("serial before the change: %d, want 100", got)
	}
	ca.issue(t, 200, certPath, keyPath)
	if got := servedSerial(t, p.Addr, roots); got != 200 {
		t.Fatalf("a new connection after the certificate was replaced got serial %d, want 200", got)
	}
	var got bytes.Buffer
	got.Write(first.GetChunk())
	for {
		m, err := stream.Recv()
		if err != nil {
			break
		}
		got.Write(m.GetChunk())
	}
	if !bytes.Equal(got.Bytes(), content) {
		t.Fatalf("the read open across the change got %d bytes, want %d byte-exact", got.Len(), len(content))
	}
}

func TestPlaintextOnlyOnLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway binary")
	}
	bin := binaries(t)
	dir := t.TempDir()
	out, err := exec.Command(bin+"/sealgate", "serve", "--listen", "0.0.0.0:0", "--data-dir", filepath.Join(dir, "d1")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "insecure_plaintext") {
		t.Fatalf("plaintext on 0.0.0.0: %v\n%s\nwant a refusal naming insecure_plaintext", err, out)
	}
	cfg := filepath.Join(dir, "sealgate.yaml")
	os.WriteFile(cfg, []byte("listen: 0.0.0.0:0\ninsecure_plaintext: true\ndata_dir: data\n"), 0o600)
	initConfig(t, bin, cfg)
	p := startProc(t, dir, filepath.Join(dir, "data"), bin+"/sealgate", "serve", "--config", cfg)
	for i := 0; i < 100 && !strings.Contains(p.Stdout.String(), "(plaintext)"); i++ {
		time.Sleep(20 * time.Millisecond) // the ready line reaches the buffer just after the match
	}
	if !strings.Contains(p.Stdout.String(), "(plaintext)") {
		t.Errorf("ready line %q does not say plaintext", p.Stdout.String())
	}
	// Without the dev account: no token with every role off loopback.
	if _, err := os.Stat(filepath.Join(dir, "data", "dev-token")); !os.IsNotExist(err) {
		t.Fatalf("a dev token was written for a non-loopback gateway (stat: %v)", err)
	}
}
