package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/chunks"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/integration/servers"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// revocationBound is the keys.revocation_bound of every gateway the harness
// starts: the default, written out so the KMS scenario knows it.
const revocationBound = 30 * time.Second

// gatewayProc is a `sealgate serve --roles api` process with the regions us
// (a bucket of MinIO A) and de (a bucket of MinIO B), and a client of it for
// the account demo.
type gatewayProc struct {
	pid        int
	metricsURL string
	// bucketUS and bucketDE are this gateway's own buckets, so that what one
	// scenario leaves staged never reaches another's mover.
	bucketUS, bucketDE string
	// storeUS is a direct client of region us's MinIO.
	storeUS *minio.Core
	// ctx carries demo's dev token; client has its artifact and account
	// services.
	ctx    context.Context
	client *gatewaytest.Env
	done   chan struct{}
}

var readyRE = regexp.MustCompile(`sealgate is ready on (\S+)`)

// gateways counts the gateways started, to name their buckets.
var gateways atomic.Int64

// startGateway writes a config and starts a fresh gateway process with its
// own data directory. The process gets the MinIO credentials and local-kms's
// AWS environment; its stderr goes to a log file that is logged when it
// fails to start. It is stopped when t ends.
func (h *harness) startGateway(t *testing.T) *gatewayProc {
	t.Helper()
	return h.startGatewayOn(t, h.a, h.directA)
}

// startGatewayOn starts a gateway whose region us is a bucket of us, which
// direct is a client of (to remove what rounds leave staged).
func (h *harness) startGatewayOn(t *testing.T, us *servers.MinIO, direct *minio.Core) *gatewayProc {
	t.Helper()
	dir := t.TempDir()
	metricsPort := servers.FreePort(t)
	n := gateways.Add(1)
	bucketUS, bucketDE := fmt.Sprintf("sealgate-%d-us", n), fmt.Sprintf("sealgate-%d-de", n)
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
log_level: warn
audit: "off"
metrics_listen: 127.0.0.1:%d
debug_pprof: true
limits: {uploads_per_principal: 256, uploads_per_account: 256, reads_per_principal: 256, reads_per_account: 256, stream_memory_bytes: 4294967296}
keys:
  revocation_bound: %s
  aws_kms: {regions: [%s], accounts: [{id: "%s", accounts: [demo]}]}
regions:
  us: {endpoint: %q, bucket: %s, access_key_env: BENCH_US_ACCESS_KEY, secret_key_env: BENCH_US_SECRET_KEY}
  de: {endpoint: %q, bucket: %s, access_key_env: BENCH_DE_ACCESS_KEY, secret_key_env: BENCH_DE_SECRET_KEY}
sip_zones: {us-west: us, de-fra: de}
dev: {account: demo}
`, filepath.Join(dir, "data"), metricsPort, revocationBound, h.kms.Region, h.kms.AccountID, us.Endpoint, bucketUS, h.b.Endpoint, bucketDE)
	cfgPath := filepath.Join(dir, "sealgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(h.bin, "init", "--config", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("sealgate init: %v\n%s", err, out)
	}
	logPath := filepath.Join(dir, "sealgate.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(h.bin, "serve", "--config", cfgPath, "--roles", "api")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"BENCH_US_ACCESS_KEY="+us.AccessKey, "BENCH_US_SECRET_KEY="+us.SecretKey,
		"BENCH_DE_ACCESS_KEY="+h.b.AccessKey, "BENCH_DE_SECRET_KEY="+h.b.SecretKey)
	cmd.Env = append(cmd.Env, h.kms.Env()...)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gatewayProc{pid: cmd.Process.Pid, metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
		bucketUS: bucketUS, bucketDE: bucketDE, storeUS: direct, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := readyRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		logf.Close()
		close(g.done)
	}()
	t.Cleanup(g.stop)
	var addr string
	select {
	case addr = <-ready:
	case <-g.done:
		log, _ := os.ReadFile(logPath)
		t.Fatalf("sealgate exited before it was ready:\n%s", log)
	case <-time.After(time.Minute):
		log, _ := os.ReadFile(logPath)
		t.Fatalf("sealgate not ready after a minute:\n%s", log)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "data", "dev-token"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, append(gateway.ClientWindowOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(gateway.MaxSendMsgSize), grpc.ForceCodecV2(chunks.ClientCodec())))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	g.ctx = gatewaytest.WithToken(context.Background(), strings.TrimSpace(string(tok)))
	g.client = &gatewaytest.Env{Addr: addr, Conn: conn,
		Artifacts: sealgatev1.NewArtifactServiceClient(conn), Accounts: sealgatev1.NewAccountServiceClient(conn)}
	if _, err := g.metric("go_memstats_alloc_bytes_total", ""); err != nil {
		t.Fatalf("gateway metrics: %v", err)
	}
	return g
}

// stop ends the process with SIGTERM, or SIGKILL after ten seconds.
func (g *gatewayProc) stop() {
	syscall.Kill(-g.pid, syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-g.pid, syscall.SIGKILL)
		<-g.done
	}
}

// updateSettings changes demo's settings fields named by paths.
func (g *gatewayProc) updateSettings(s *sealgatev1.AccountSettings, paths ...string) error {
	s.Name = "accounts/demo/settings"
	_, err := g.client.Accounts.UpdateAccountSettings(g.ctx, &sealgatev1.UpdateAccountSettingsRequest{
		Settings: s, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
	})
	return err
}

// errNoSeries is metric's error for a series the gateway does not export.
var errNoSeries = errors.New("not exported")

// metric scrapes /metrics and returns the sum of every sample of the metric
// name whose label set contains labels ("" matches all).
func (g *gatewayProc) metric(name, labels string) (float64, error) {
	resp, err := http.Get(g.metricsURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", g.metricsURL, resp.Status)
	}
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*kib), mib)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) || !strings.Contains(series, labels) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %v", line, err)
		}
		sum += v
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !found {
		// A missing series is an error, never 0: a benchmark must not pass
		// because what it counts was not counted at all.
		return 0, fmt.Errorf("metric %s{%s}: %w", name, labels, errNoSeries)
	}
	return sum, nil
}

// procStatus returns a field of /proc/PID/status in bytes (VmRSS, VmHWM).
func (g *gatewayProc) procStatus(field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status %s: %v", g.pid, field, err)
		}
		return kb * kib, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", g.pid, field)
}
