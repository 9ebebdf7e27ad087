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

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/gateway/mover"
	"github.com/sealgate/sealgate/integration/servers"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// sweepFleet is three MinIO regions, a MinIO control store, local-kms for a
// customer key, and a config file for the sealgate binaries. seed runs an
// in-process gateway on the same stores with its clock set back, to upload
// artifacts "days ago" that the real sweeper (on the real clock) finds due.
type sweepFleet struct {
	rs   *regionSet
	kms  *servers.LocalKMS
	bin  string
	dir  string
	cfg  string
	keys config.Keys
}

func startSweepFleet(t *testing.T) *sweepFleet {
	t.Helper()
	f := &sweepFleet{rs: startRegions(t), kms: servers.StartLocalKMS(t), bin: binaries(t), dir: t.TempDir()}
	f.kms.Setenv(t)
	f.keys = config.Keys{AWSKMS: config.AWSKMS{Regions: []string{f.kms.Region},
		Accounts: []config.AWSAccount{{ID: f.kms.AccountID, Accounts: []string{"demo"}}}}}
	extra := fmt.Sprintf("control: {endpoint: %q, bucket: sealgate-control, access_key_env: MINIO_US_ACCESS_KEY, secret_key_env: MINIO_US_SECRET_KEY}\n"+
		"sweep_interval: 200ms\nkeys:\n  aws_kms: {regions: [%s], accounts: [{id: %q, accounts: [demo]}]}\n", f.rs.minio["us"].Endpoint, f.kms.Region, f.kms.AccountID)
	f.cfg = f.rs.yaml(t, f.dir+"/data", extra)
	initConfig(t, f.bin, f.cfg)
	return f
}

// seed starts an in-process gateway over the fleet's stores whose clock
// reads now-ago, sets demo's settings, and returns it.
func (f *sweepFleet) seed(t *testing.T, ago time.Duration, mode sealgatev1.DeletionMode, customerKey string) *gatewaytest.Env {
	t.Helper()
	clock := func() time.Time { return time.Now().Add(-ago) }
	env := gatewaytest.Start(t, func(c *config.Config) {
		f.rs.apply(c)
		c.DataDir = f.dir + "/data"
		c.Control = config.Store{Endpoint: f.rs.minio["us"].Endpoint, Bucket: "sealgate-control", AccessKeyEnv: "MINIO_US_ACCESS_KEY", SecretKeyEnv: "MINIO_US_SECRET_KEY"}
		c.Keys.AWSKMS = f.keys.AWSKMS
		c.Clock = clock
	})
	ctx := env.Ctx(t, "demo")
	if _, err := env.Accounts.UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
		Settings: &sealgatev1.AccountSettings{Name: "accounts/demo/settings", DeletionMode: mode,
			KeyPolicy:      &sealgatev1.KeyPolicy{Mode: sealgatev1.KeyMode_KEY_MODE_CUSTOMER, CustomerKeyUri: "aws-kms://" + customerKey},
			RetentionRules: []*sealgatev1.RetentionRule{{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES, RetentionDays: 1}}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"deletion_mode", "key_policy", "retention_rules"}},
	}); err != nil {
		t.Fatal(err)
	}
	return env
}

func voicemail(zone string) *sealgatev1.UploadHeader {
	return &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL, SipZone: zone}
}

// gone reports whether no region bucket and no control object holds
// anything of artifact name, checked with minio-go directly.
func (f *sweepFleet) gone(t *testing.T, name string) bool {
	t.Helper()
	id := name[strings.LastIndex(name, "/")+1:]
	for _, r := range []string{"us", "de", "jp"} {
		for _, k := range f.rs.keys(t, r) {
			if strings.Contains(k, id) {
				return false
			}
		}
	}
	return true
}

// sweepUntil runs `sealgate sweeper` until cond holds (or 60 s pass).
func (f *sweepFleet) sweepUntil(t *testing.T, env []string, cond func() bool) {
	t.Helper()
	p, _ := startProcUntil(t, f.dir, f.dir+"/data", regexp.MustCompile(`sealgate sweeper is ready`), env,
		f.bin+"/sealgate", "sweeper", "--config", f.cfg)
	defer p.stop(syscall.SIGTERM, 10*time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("sweeper did not finish in 60 s; stderr:\n%s", p.Stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSweeperCrashSweep: the sweeper process is SIGKILLed at each step of a
// hard expiry; a fresh sweeper then finishes, with local-kms down (deletion
// never needs a key). Nothing of the artifact is left in any region.
func TestSweeperCrashSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO, local-kms and the sealgate binaries")
	}
	f := startSweepFleet(t)
	env := f.seed(t, 48*time.Hour, sealgatev1.DeletionMode_DELETION_MODE_HARD, f.kms.CreateKey(t))
	ctx := env.Ctx(t, "demo")
	steps := []string{lifecycle.StepExpireStart, lifecycle.StepShredded, lifecycle.StepObjectsGone, lifecycle.StepUnindexed}
	names := map[string]string{}
	for _, step := range steps {
		a, err := env.Upload(ctx, voicemail("us-west"), bytes.NewReader([]byte("due "+step)), 1024)
		if err != nil {
			t.Fatal(err)
		}
		names[step] = a.GetName()
	}
	// One more caught mid-move: a staged copy in de and a stored copy in us.
	mid, err := env.Upload(ctx, voicemail("de-fra"), bytes.NewReader([]byte("mid-move")), 1024)
	if err != nil {
		t.Fatal(err)
	}
	m := mover.New(mover.Config{Topology: env.Runtime.Topology, Hook: func(step string, _ layout.Ref) error {
		if step == mover.StepVerified {
			return fmt.Errorf("stop after the copy")
		}
		return nil
	}})
	m.Pass(context.Background())
	if f.gone(t, mid.GetName()) || len(matching(f.rs.keys(t, "de"), mid.GetName())) != 1 || len(matching(f.rs.keys(t, "us"), mid.GetName())) != 1 {
		t.Fatalf("the mid-move artifact should have one copy in de and one in us")
	}
	paused := regexp.MustCompile(`paused at (\S+) (\S+)`)
	for _, step := range steps {
		p, match := startProcUntil(t, f.dir, f.dir+"/data", paused, []string{"SEALGATE_SWEEPER_PAUSE_AT=" + step},
			f.bin+"/sealgate", "sweeper", "--config", f.cfg)
		if match[1] != step {
			t.Fatalf("paused at %s, want %s", match[1], step)
		}
		p.kill()
		<-p.done
	}
	f.kms.Stop() // the customer's KMS is down: the sweep needs no key
	all := append([]string{mid.GetName()}, mapValuesOf(names)...)
	// Done when every object, record and index entry is gone (the index
	// entry goes last, after the objects).
	f.sweepUntil(t, nil, func() bool {
		for _, n := range all {
			if !f.gone(t, n) {
				return false
			}
		}
		return len(matchingAny(f.rs.keysIn(t, "us", "sealgate-control"), "records/demo/", "expiry/demo/")) == 0
	})
}

// TestTwoSweepersAtOnce: two sweeper processes over the same due artifacts
// (soft-deleted, past their purge time): every one purged, none twice.
func TestTwoSweepersAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO, local-kms and the sealgate binaries")
	}
	f := startSweepFleet(t)
	env := f.seed(t, 31*24*time.Hour, sealgatev1.DeletionMode_DELETION_MODE_SOFT, f.kms.CreateKey(t))
	ctx := env.Ctx(t, "demo")
	var names []string
	for i := 0; i < 30; i++ {
		a, err := env.Upload(ctx, callHeader("us-west"), bytes.NewReader([]byte(fmt.Sprint("deleted ", i))), 1024)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.Artifacts.DeleteArtifact(ctx, &sealgatev1.DeleteArtifactRequest{Name: a.GetName()}); err != nil {
			t.Fatal(err)
		}
		names = append(names, a.GetName())
	}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.sweepUntil(t, nil, func() bool {
				for _, n := range names {
					if !f.gone(t, n) {
						return false
					}
				}
				return true
			})
		}()
	}
	wg.Wait()
	if left := matchingAny(f.rs.keysIn(t, "us", "sealgate-control"), "records/demo/", "purge/"); len(left) != 0 {
		t.Fatalf("control objects left after two sweepers: %v", left)
	}
}

func callHeader(zone string) *sealgatev1.UploadHeader {
	return &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: zone}
}

func matching(keys []string, name string) []string {
	id := name[strings.LastIndex(name, "/")+1:]
	var out []string
	for _, k := range keys {
		if strings.HasSuffix(k, id) {
			out = append(out, k)
		}
	}
	return out
}

func matchingAny(keys []string, prefixes ...string) []string {
	var out []string
	for _, k := range keys {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				out = append(out, k)
			}
		}
	}
	return out
}

func mapValuesOf(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
