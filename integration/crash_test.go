package integration

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sealgate/sealgate/gateway/gatewaytest"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

var moveSteps = []string{"start", "mid-copy", "copied", "verified", "deleted"}

// stagedFleet runs an API-only gateway process against three MinIO regions
// and uploads n artifacts that must move from us or de to jp.
type stagedFleet struct {
	rs   *regionSet
	bin  string
	dir  string
	cfg  string
	api  *proc
	ctx  context.Context
	conn *grpc.ClientConn
	want map[string][]byte
}

func stageFleet(t *testing.T, n int, extraYAML string) *stagedFleet {
	t.Helper()
	f := &stagedFleet{rs: startRegions(t), bin: binaries(t), dir: t.TempDir(), want: map[string][]byte{}}
	f.cfg = f.rs.yaml(t, f.dir+"/data", extraYAML)
	initConfig(t, f.bin, f.cfg)
	f.api = startProc(t, f.dir, f.dir+"/data", f.bin+"/sealgate", "serve", "--config", f.cfg, "--roles", "api")
	f.ctx = gatewaytest.WithToken(context.Background(), f.api.token(t))
	conn, err := grpc.NewClient(f.api.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f.conn = conn
	if _, err := sealgatev1.NewAccountServiceClient(conn).UpdateAccountSettings(f.ctx, &sealgatev1.UpdateAccountSettingsRequest{
		Settings: &sealgatev1.AccountSettings{Name: "accounts/demo/settings", HomeRegion: "us", StorageRegion: "jp"},
	}); err != nil {
		t.Fatal(err)
	}
	env := &gatewaytest.Env{Artifacts: sealgatev1.NewArtifactServiceClient(conn)}
	for i := 0; i < n; i++ {
		body := bytes.Repeat([]byte(fmt.Sprintf("artifact %d ", i)), 30000+i*500)
		zone := []string{"us-west", "de-fra"}[i%2]
		a, err := env.Upload(f.ctx, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: zone},
			bytes.NewReader(body), 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		f.want[a.GetName()] = body
	}
	return f
}

// staged counts staged objects across the regions, listed directly.
func (f *stagedFleet) staged(t *testing.T) int {
	n := 0
	for r := range f.rs.minio {
		for _, k := range f.rs.keys(t, r) {
			if strings.HasPrefix(k, "staging/") && !strings.HasSuffix(k, "/.keep") {
				n++
			}
		}
	}
	return n
}

// waitDrained waits until nothing is staged.
func (f *stagedFleet) waitDrained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for f.staged(t) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d objects still staged after 2 minutes", f.staged(t))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// verify reads every artifact through the API and checks its placement.
func (f *stagedFleet) verify(t *testing.T) {
	t.Helper()
	env := &gatewaytest.Env{Artifacts: sealgatev1.NewArtifactServiceClient(f.conn)}
	placement := map[string]string{}
	for name, body := range f.want {
		var got bytes.Buffer
		a, err := env.Read(f.ctx, name, &got)
		if err != nil || !bytes.Equal(got.Bytes(), body) || a.GetState() != sealgatev1.Artifact_STATE_STORED {
			t.Errorf("%s: state %v, %d bytes, %v; want STORED and byte-exact", name, a.GetState(), got.Len(), err)
		}
		placement[name] = "jp"
	}
	f.rs.assertPlacement(t, placement)
}

func TestMoverCrashSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three MinIO servers and kills movers")
	}
	const moves = 20
	f := stageFleet(t, moves, "mover_workers: 1\n")
	paused := regexp.MustCompile(`paused at (\S+) (\S+)`)
	kills := 0
	for run := 0; f.staged(t) > 0 && run < moves*len(moveSteps)+10; run++ {
		step := moveSteps[run%len(moveSteps)]
		m, match := startProcUntil(t, f.dir, f.dir+"/data", paused, []string{"SEALGATE_MOVER_PAUSE_AT=" + step},
			f.bin+"/sealgate", "mover", "--config", f.cfg)
		m.stop(syscall.SIGKILL, 10*time.Second)
		kills++
		if match[1] != step {
			t.Fatalf("paused at %s, want %s", match[1], step)
		}
	}
	t.Logf("killed the mover %d times, cycling through steps %v", kills, moveSteps)
	if kills < moves*len(moveSteps) {
		t.Fatalf("only %d kills: every move should have been killed at each of its %d steps", kills, len(moveSteps))
	}
	final := startProcUntilReady(t, f, nil)
	f.waitDrained(t)
	final.stop(syscall.SIGTERM, 30*time.Second)
	f.verify(t)
}

// startProcUntilReady starts a mover process and waits for its ready line.
func startProcUntilReady(t *testing.T, f *stagedFleet, env []string) *proc {
	p, _ := startProcUntil(t, f.dir, f.dir+"/data", regexp.MustCompile(`sealgate mover is ready`), env,
		f.bin+"/sealgate", "mover", "--config", f.cfg)
	return p
}

func TestTwoMoverProcessesAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three MinIO servers and two movers")
	}
	f := stageFleet(t, 30, "")
	// Readers hammer the API while the movers run: no error may surface.
	env := &gatewaytest.Env{Artifacts: sealgatev1.NewArtifactServiceClient(f.conn)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var readErrs []error
	reads := 0
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				for name, body := range f.want {
					select {
					case <-stop:
						return
					default:
					}
					var got bytes.Buffer
					_, err := env.Read(f.ctx, name, &got)
					mu.Lock()
					reads++
					if err == nil && !bytes.Equal(got.Bytes(), body) {
						err = fmt.Errorf("%s: bytes differ", name)
					}
					if err != nil {
						readErrs = append(readErrs, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	a := startProcUntilReady(t, f, nil)
	b := startProcUntilReady(t, f, nil)
	f.waitDrained(t)
	close(stop)
	wg.Wait()
	a.stop(syscall.SIGTERM, 30*time.Second)
	b.stop(syscall.SIGTERM, 30*time.Second)
	t.Logf("%d reads during the moves", reads)
	if len(readErrs) > 0 {
		t.Fatalf("%d of %d reads failed during the moves; first: %v", len(readErrs), reads, readErrs[0])
	}
	f.verify(t)
}
