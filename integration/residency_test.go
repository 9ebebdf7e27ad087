package integration

import (
	"bytes"
	"context"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

func settings(t *testing.T, env *gatewaytest.Env, account string, s *sealgatev1.AccountSettings) {
	t.Helper()
	s.Name = "accounts/" + account + "/settings"
	if _, err := env.Accounts.UpdateAccountSettings(env.Ctx(t, account, "admin"), &sealgatev1.UpdateAccountSettingsRequest{Settings: s}); err != nil {
		t.Fatalf("settings of %s: %v", account, err)
	}
}

// drainStaging runs mover passes until nothing is left to move.
func drainStaging(t *testing.T, env *gatewaytest.Env) {
	t.Helper()
	for i := 0; i < 50; i++ {
		moved, err := env.Runtime.Mover.Pass(context.Background())
		if err != nil {
			t.Fatalf("mover pass: %v", err)
		}
		if moved == 0 {
			return
		}
	}
	t.Fatal("mover never ran out of work")
}

func TestResidencyMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three MinIO servers")
	}
	rs := startRegions(t)
	env := gatewaytest.Start(t, func(c *config.Config) { rs.apply(c); c.LogLevel = "info" })
	call := sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING
	settings(t, env, "localco", &sealgatev1.AccountSettings{HomeRegion: "de", Localized: true, StorageRegion: "jp",
		QueueStorageRegions: map[string]string{"support": "us"}})
	settings(t, env, "acctco", &sealgatev1.AccountSettings{HomeRegion: "us", StorageRegion: "jp"})
	settings(t, env, "queueco", &sealgatev1.AccountSettings{HomeRegion: "us", StorageRegion: "de",
		QueueStorageRegions: map[string]string{"support": "jp"}})
	cases := []struct {
		account, zone, queue string
		typ                  sealgatev1.ArtifactType
		staging, storage     string
	}{
		{"localco", "us-west", "support", call, "us", "de"}, // localized beats queue and account
		{"localco", "jp-tyo", "", sealgatev1.ArtifactType_ARTIFACT_TYPE_EMAIL_MESSAGE, "jp", "de"},
		{"acctco", "us-west", "", call, "us", "jp"}, // account level
		{"acctco", "de-fra", "", sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL, "de", "jp"},
		{"queueco", "de-fra", "support", call, "de", "jp"},                                            // queue override
		{"queueco", "us-east", "sales", call, "us", "de"},                                             // other queue: account level
		{"queueco", "jp-tyo", "support", sealgatev1.ArtifactType_ARTIFACT_TYPE_MMS_MEDIA, "jp", "us"}, // home-region types
		{"queueco", "de-fra", "", sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_LOG, "de", "us"},
		{"acctco", "jp-tyo", "", sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_LOG, "jp", "us"},
		{"acctco", "us-east", "", sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE, "us", "jp"},
	}
	want := map[string]string{}
	data := map[string][]byte{}
	for i, c := range cases {
		body := bytes.Repeat([]byte{byte(i)}, 100000+i*1000)
		a, err := env.Upload(env.Ctx(t, c.account), &sealgatev1.UploadHeader{Type: c.typ, SipZone: c.zone, QueueId: c.queue},
			bytes.NewReader(body), 32<<10)
		if err != nil {
			t.Fatalf("case %d upload: %v", i, err)
		}
		if a.GetStagingRegion() != c.staging || a.GetStorageRegion() != c.storage {
			t.Errorf("case %d (%s %s %s %v): regions %s -> %s, want %s -> %s", i, c.account, c.zone, c.queue, c.typ,
				a.GetStagingRegion(), a.GetStorageRegion(), c.staging, c.storage)
		}
		want[a.GetName()], data[a.GetName()] = c.storage, body
	}
	drainStaging(t, env)
	rs.assertPlacement(t, want)
	checkStoredCRC(t, env, rs, want)
	for name, body := range data {
		var got bytes.Buffer
		a, err := env.Read(env.Ctx(t, accountOf(name)), name, &got)
		if err != nil || !bytes.Equal(got.Bytes(), body) || a.GetState() != sealgatev1.Artifact_STATE_STORED {
			t.Errorf("%s after the move: state %v, %d bytes, %v; want STORED and byte-exact", name, a.GetState(), got.Len(), err)
		}
	}
	// A settings change applies to new uploads only.
	if _, err := env.Accounts.UpdateAccountSettings(env.Ctx(t, "acctco", "admin"), &sealgatev1.UpdateAccountSettingsRequest{
		Settings:   &sealgatev1.AccountSettings{Name: "accounts/acctco/settings", StorageRegion: "de"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"storage_region"}},
	}); err != nil {
		t.Fatal(err)
	}
	drainStaging(t, env)
	rs.assertPlacement(t, want)
}

func accountOf(name string) string {
	b, _, _ := bytes.Cut([]byte(name[len("accounts/"):]), []byte("/"))
	return string(b)
}

func TestStorageRegionOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three MinIO servers")
	}
	rs := startRegions(t)
	env := gatewaytest.Start(t, func(c *config.Config) { rs.apply(c); c.LogLevel = "info" })
	settings(t, env, "demo", &sealgatev1.AccountSettings{HomeRegion: "us", StorageRegion: "jp"})
	ctx := env.Ctx(t, "demo")
	rs.minio["jp"].Stop()
	body := bytes.Repeat([]byte("during the outage "), 20000)
	a, err := env.Upload(ctx, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west"},
		bytes.NewReader(body), 64<<10)
	if err != nil {
		t.Fatalf("upload while the storage region is down: %v, want it staged", err)
	}
	m := env.Runtime.Mover
	if _, err := m.Pass(context.Background()); err == nil {
		t.Fatal("mover pass with jp down: no error, want jp unavailable")
	}
	var got bytes.Buffer
	if _, err := env.Read(ctx, a.GetName(), &got); err != nil || !bytes.Equal(got.Bytes(), body) {
		t.Fatalf("read while jp is down: %v, want the staged copy byte-exact", err)
	}
	rs.minio["jp"].Restart(t)
	deadline := time.Now().Add(90 * time.Second)
	for {
		m.Pass(context.Background())
		info, err := env.Artifacts.GetArtifact(ctx, &sealgatev1.GetArtifactRequest{Name: a.GetName()})
		if err == nil && info.GetState() == sealgatev1.Artifact_STATE_STORED {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("artifact not moved 90s after jp returned: %v %v", info.GetState(), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	rs.assertPlacement(t, map[string]string{a.GetName(): "jp"})
	got.Reset()
	if _, err := env.Read(ctx, a.GetName(), &got); err != nil || !bytes.Equal(got.Bytes(), body) {
		t.Fatalf("read after the move: %v", err)
	}
}

// checkStoredCRC checks that MinIO reports, through the store's Stat, the
// full-object CRC-32C of each stored object's bytes: the mover verifies
// copies with it instead of reading them back.
func checkStoredCRC(t *testing.T, env *gatewaytest.Env, rs *regionSet, want map[string]string) {
	t.Helper()
	for name, region := range want {
		parts := strings.Split(name, "/")
		key := "artifacts/" + parts[1] + "/" + parts[3]
		b, _ := env.Runtime.Topology.Bucket(region)
		info, err := b.Stat(context.Background(), key)
		if err != nil || !info.HasCRC32C {
			t.Fatalf("%s: Stat %+v, %v; want a full-object CRC-32C", key, info, err)
		}
		obj, err := rs.minio[region].Client(t).GetObject(context.Background(), bucketOf(region), key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := crc32.Checksum(raw, crc32.MakeTable(crc32.Castagnoli)); got != info.CRC32C {
			t.Fatalf("%s: Stat CRC-32C %08x, bytes have %08x", key, info.CRC32C, got)
		}
	}
}
