package integration

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/integration/servers"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// scaleRun is what a run of the replicas under load saw.
type scaleRun struct {
	Duration    time.Duration
	Clients     int
	Acked       int
	Ops         int // acknowledged uploads plus verified reads
	Latencies   []time.Duration
	Errors      map[string]int // by gRPC code, before the retries that fixed them
	Lost        int            // acknowledged, then missing or different
	Duplicates  int            // artifacts stored that no upload acknowledged
	StoredTwice int            // artifacts in more than one storage object
}

// runScale runs 3 gateways, 2 movers and 2 sweepers (separate processes)
// over a region on a 4-process distributed MinIO (staging, us) and one on a
// single MinIO (storage, de), with the control store on the distributed
// one. clients upload (with request ids, retrying on another gateway) and
// read back for d. With kill, one gateway and one MinIO process are
// SIGKILLed a third of the way in. Afterwards every acknowledged upload is
// checked in its storage region.
func runScale(t *testing.T, d time.Duration, clients int, kill bool) scaleRun {
	t.Helper()
	cl := startCluster(t)
	de := servers.StartMinIO(t)
	de.MakeBucket(t, "sealgate-de")
	t.Setenv("MINIO_DE_ACCESS_KEY", de.AccessKey)
	t.Setenv("MINIO_DE_SECRET_KEY", de.SecretKey)
	bin := binaries(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sealgate.yaml")
	// Every process talks to the cluster through node 0; node 3 is the one
	// killed. (In production a load balancer or DNS spreads them.)
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s/data
log_level: debug
mover_interval: 200ms
sweep_interval: 1s
upload_request_lease: 3s
readiness_interval: 1s
regions:
  us: {endpoint: %q, bucket: sealgate-us, access_key_env: MINIO_CL_ACCESS_KEY, secret_key_env: MINIO_CL_SECRET_KEY}
  de: {endpoint: %q, bucket: sealgate-de, access_key_env: MINIO_DE_ACCESS_KEY, secret_key_env: MINIO_DE_SECRET_KEY}
control: {endpoint: %q, bucket: sealgate-control, access_key_env: MINIO_CL_ACCESS_KEY, secret_key_env: MINIO_CL_SECRET_KEY}
sip_zones: {us-west: us, de-fra: de}
dev: {account: demo}
`, dir, cl.Endpoints[0], de.Endpoint, cl.Endpoints[0])
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	initConfig(t, bin, cfg)
	var gateways []*proc
	for range 3 {
		gateways = append(gateways, startProc(t, dir, dir+"/data", bin+"/sealgate", "serve", "--config", cfg, "--roles", "api"))
	}
	ready := regexp.MustCompile(`sealgate (mover|sweeper) is ready`)
	var workers []*proc
	for _, role := range []string{"mover", "mover", "sweeper", "sweeper"} {
		p, _ := startProcUntil(t, dir, dir+"/data", ready, nil, bin+"/sealgate", role, "--config", cfg)
		workers = append(workers, p)
	}
	token := gateways[0].token(t)
	conns := make([]*grpc.ClientConn, len(gateways))
	for i, g := range gateways {
		conns[i] = mustConn(t, g.Addr)
	}
	ctx := bearer(context.Background(), token)
	if _, err := sealgatev1.NewAccountServiceClient(conns[0]).UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
		Settings:   &sealgatev1.AccountSettings{Name: "accounts/demo/settings", HomeRegion: "de", StorageRegion: "de"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"home_region", "storage_region"}},
	}); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		acked    = map[string][32]byte{} // artifact name -> SHA-256 of its content
		lat      []time.Duration
		errs     = map[string]int{}
		reads    atomic.Int64
		deadGate atomic.Int32
	)
	deadGate.Store(-1)
	run := scaleRun{Duration: d, Clients: clients, Errors: errs}
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 9))
			for n := 0; time.Now().Before(stop); n++ {
				data := make([]byte, 4<<10+r.IntN(256<<10))
				for i := range data {
					data[i] = byte(r.Uint32())
				}
				h := &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west",
					EngagementId: fmt.Sprintf("c%d-%d", c, n), RequestId: fmt.Sprintf("load-%d-%d", c, n)}
				start := time.Now()
				var a *sealgatev1.Artifact
				for attempt := 0; ; attempt++ {
					gi := (c + n + attempt) % len(conns)
					if int(deadGate.Load()) == gi {
						continue
					}
					var err error
					a, err = uploadVia(ctx, sealgatev1.NewArtifactServiceClient(conns[gi]), h, data)
					if err == nil {
						break
					}
					mu.Lock()
					errs[status.Code(err).String()]++
					mu.Unlock()
					// Like sealctl, a client retries until its request is
					// answered (here: up to a minute past the run); one that
					// gave up earlier would leave its dead attempt's
					// artifact unacknowledged (docs/scaling.md).
					if time.Now().After(stop.Add(time.Minute)) {
						t.Logf("client %d gave up on request %s after %d attempts: %v", c, h.GetRequestId(), attempt, err)
						return // given up: never acknowledged, so never counted
					}
					time.Sleep(100 * time.Millisecond)
				}
				mu.Lock()
				acked[a.GetName()] = sha256.Sum256(data)
				lat = append(lat, time.Since(start))
				mu.Unlock()
				if n%3 == 0 {
					gi := (c + n + 1) % len(conns)
					if int(deadGate.Load()) != gi {
						if got, err := readVia(ctx, sealgatev1.NewArtifactServiceClient(conns[gi]), a.GetName()); err == nil && sha256.Sum256(got) == sha256.Sum256(data) {
							reads.Add(1)
						}
					}
				}
			}
		}()
	}
	if kill {
		time.Sleep(d / 3)
		gateways[1].kill()
		cl.Kill(3)
		t.Logf("killed gateway 1 and MinIO node 4 at %v", d/3)
		// Clients keep trying the dead gateway until "health checks" take
		// it out of their rotation, 2 s later.
		time.Sleep(2 * time.Second)
		deadGate.Store(1)
		// The node comes back (a supervisor restarts it) while clients
		// still run: a claim that a write cut short by the kill left in a
		// state the remaining nodes cannot agree on heals then, and its
		// client's retries go through.
		time.Sleep(time.Until(stop.Add(-d / 3)))
		cl.Restart(t, 3)
		t.Logf("restarted MinIO node 4 at %v", 2*d/3)
	}
	wg.Wait()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var left []string
		for o := range cl.Client().ListObjects(context.Background(), "sealgate-us", minio.ListObjectsOptions{Prefix: "staging/", Recursive: true}) {
			if _, ok := layout.ParseStagingKey(o.Key); o.Err == nil && ok {
				left = append(left, o.Key)
			}
		}
		// Cleanups whose deletes failed (the node was down) are left to
		// the sweepers: purge index entries in the control store.
		for o := range cl.Client().ListObjects(context.Background(), "sealgate-control", minio.ListObjectsOptions{Prefix: "purge/", Recursive: true}) {
			if o.Err == nil {
				left = append(left, o.Key)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, w := range workers[:2] {
				t.Logf("mover stderr:\n%s", tailLines(w.Stderr.String(), 30))
			}
			_, acknowledged := acked["accounts/demo/artifacts/"+strings.TrimPrefix(left[0], "staging/demo/")]
			t.Fatalf("%d objects still staged or due for purge after 2 minutes: %v (first acknowledged: %v)", len(left), left, acknowledged)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Every acknowledged upload once in de, byte-exact; nothing else.
	objects := map[string]int{}
	for o := range de.Client(t).ListObjects(context.Background(), "sealgate-de", minio.ListObjectsOptions{Prefix: "artifacts/demo/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if ref, ok := layout.ParseStoredKey(o.Key); ok {
			objects[ref.Name()]++
		}
	}
	arts := sealgatev1.NewArtifactServiceClient(conns[0])
	for name, sum := range acked {
		if objects[name] != 1 {
			run.Lost++
			t.Errorf("acknowledged %s is stored %d times in its region", name, objects[name])
			continue
		}
		got, err := readVia(ctx, arts, name)
		if err != nil || sha256.Sum256(got) != sum {
			run.Lost++
			t.Errorf("acknowledged %s reads %d bytes, %v", name, len(got), err)
		}
	}
	for name, n := range objects {
		if _, ok := acked[name]; !ok {
			// An attempt's object that no client was given: its upload
			// failed, or a retry purged it. Its cleanup, the attempt
			// entries and the orphan rules must have removed it
			// (docs/scaling.md): what the processes logged about it
			// shows which did not.
			run.Duplicates++
			t.Logf("stored %s was never acknowledged; what the processes logged about it:", name)
			id := name[strings.LastIndex(name, "/")+1:]
			for i, p := range append(append([]*proc{}, gateways...), workers...) {
				for _, line := range strings.Split(p.Stdout.String()+p.Stderr.String(), "\n") {
					if strings.Contains(line, id) {
						t.Logf("  process %d: %s", i, line)
					}
				}
			}
		}
		if n > 1 {
			run.StoredTwice++
		}
	}
	// Claims the store lost (a node killed while one was rewritten), whose
	// attempts a retry found by their entries.
	for _, g := range gateways {
		for _, line := range strings.Split(g.Stderr.String()+g.Stdout.String(), "\n") {
			if strings.Contains(line, "request claim lost") || strings.Contains(line, "every compare-and-swap failed") {
				t.Logf("  %s", line)
			}
		}
	}
	run.Acked, run.Latencies = len(acked), lat
	run.Ops = len(acked) + int(reads.Load())
	for _, g := range gateways {
		g.stop(syscall.SIGTERM, 10*time.Second)
	}
	return run
}

func (r scaleRun) percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.Latencies)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func (r scaleRun) String() string {
	var codes []string
	for c, n := range r.Errors {
		codes = append(codes, c+"="+strconv.Itoa(n))
	}
	sort.Strings(codes)
	return fmt.Sprintf("%d clients for %v: %d uploads acknowledged, %.1f ops/s (uploads and verified reads), upload p50 %v p99 %v; "+
		"errors before a retry succeeded: %s; acknowledged and lost %d, stored but never acknowledged %d",
		r.Clients, r.Duration, r.Acked, float64(r.Ops)/r.Duration.Seconds(), r.percentile(0.5).Round(time.Millisecond),
		r.percentile(0.99).Round(time.Millisecond), strings.Join(codes, " "), r.Lost, r.Duplicates)
}

// TestReplicasUnderFaults: three gateways, two movers and two sweepers over
// the same regions, with a gateway and a MinIO process killed mid-run: no
// acknowledged upload lost, none stored twice, no duplicate.
func TestReplicasUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 5 MinIO and 7 sealgate processes")
	}
	r := runScale(t, 15*time.Second, 6, true)
	t.Log(r)
	if r.Acked == 0 {
		t.Fatal("nothing was acknowledged")
	}
	if r.Lost != 0 || r.StoredTwice != 0 || r.Duplicates != 0 {
		t.Fatalf("lost %d, stored twice %d, unacknowledged %d", r.Lost, r.StoredTwice, r.Duplicates)
	}
}

// TestLoad is the load test of docs/performance.md (make loadtest): like
// TestReplicasUnderFaults, longer, with more clients. SEALGATE_LOAD_SECONDS
// and SEALGATE_LOAD_CLIENTS change its size.
func TestLoad(t *testing.T) {
	if os.Getenv("SEALGATE_LOADTEST") == "" {
		t.Skip("set SEALGATE_LOADTEST=1 (make loadtest)")
	}
	secs, clients := 60, 16
	if v, err := strconv.Atoi(os.Getenv("SEALGATE_LOAD_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	if v, err := strconv.Atoi(os.Getenv("SEALGATE_LOAD_CLIENTS")); err == nil && v > 0 {
		clients = v
	}
	r := runScale(t, time.Duration(secs)*time.Second, clients, true)
	fmt.Println("load test:", r)
	if r.Lost != 0 || r.StoredTwice != 0 || r.Duplicates != 0 {
		t.Fatalf("lost %d, stored twice %d, unacknowledged %d", r.Lost, r.StoredTwice, r.Duplicates)
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
