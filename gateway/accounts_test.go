package gateway_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/keys/local"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

func update(env *gatewaytest.Env, t *testing.T, account string, s *sealgatev1.AccountSettings, paths ...string) (*sealgatev1.AccountSettings, error) {
	s.Name = "accounts/" + account + "/settings"
	req := &sealgatev1.UpdateAccountSettingsRequest{Settings: s}
	if paths != nil {
		req.UpdateMask = &fieldmaskpb.FieldMask{Paths: paths}
	}
	return env.Accounts.UpdateAccountSettings(env.Ctx(t, account, auth.RoleAdmin), req)
}

func TestSettingsMaskAndResidency(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	got, err := env.Accounts.GetAccountSettings(ctx, &sealgatev1.GetAccountSettingsRequest{Name: "accounts/demo/settings"})
	if err != nil || got.GetHomeRegion() != "us" {
		t.Fatalf("demo settings: got %v, %v; want home region us", got, err)
	}
	// Only the masked field changes.
	s, err := update(env, t, "demo", &sealgatev1.AccountSettings{StorageRegion: "de", HomeRegion: "jp",
		QueueStorageRegions: map[string]string{"support": "au"}}, "storage_region", "queue_storage_regions")
	if err != nil {
		t.Fatal(err)
	}
	if s.GetStorageRegion() != "de" || s.GetHomeRegion() != "us" || s.GetUpdateTime() == nil {
		t.Fatalf("after masked update: storage %q home %q, want de and unchanged us", s.GetStorageRegion(), s.GetHomeRegion())
	}
	for _, c := range []struct {
		h    *sealgatev1.UploadHeader
		want string
	}{
		{callHeader("us-west"), "de"},
		{&sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west", QueueId: "support"}, "au"},
		{&sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_LOG, SipZone: "us-west", QueueId: "support"}, "us"},
	} {
		a := mustUpload(t, env, ctx, c.h, []byte("x"))
		if a.GetStorageRegion() != c.want || !strings.HasSuffix(a.GetName(), "-us"+c.want) {
			t.Errorf("%v in queue %q: storage region %q (%s), want %q", c.h.GetType(), c.h.GetQueueId(), a.GetStorageRegion(), a.GetName(), c.want)
		}
	}
	// Localized wins over everything.
	if _, err := update(env, t, "demo", &sealgatev1.AccountSettings{Localized: true}, "localized"); err != nil {
		t.Fatal(err)
	}
	if a := mustUpload(t, env, ctx, callHeader("de-fra"), []byte("x")); a.GetStorageRegion() != "us" {
		t.Errorf("localized account: storage region %q, want home region us", a.GetStorageRegion())
	}
}

func TestSettingsValidation(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	_, err := update(env, t, "demo", &sealgatev1.AccountSettings{RetentionRules: []*sealgatev1.RetentionRule{
		{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES, RetentionDays: 31},
	}}, "retention_rules")
	st := wantStatus(t, "voicemail kept 31 days", err, codes.InvalidArgument, "RETENTION_OUT_OF_RANGE")
	fv := fieldViolations(st)
	if len(fv) != 1 || fv[0].GetField() != "retention_rules[0].retention_days" {
		t.Fatalf("field violations = %v, want one on retention_rules[0].retention_days", fv)
	}
	_, err = update(env, t, "demo", &sealgatev1.AccountSettings{StorageRegion: "xx", DeletionMode: 9}, "storage_region", "deletion_mode")
	st = wantStatus(t, "bad region and mode", err, codes.InvalidArgument, "")
	if len(fieldViolations(st)) != 2 {
		t.Fatalf("field violations = %v, want two (storage_region, deletion_mode)", fieldViolations(st))
	}
	_, err = update(env, t, "demo", &sealgatev1.AccountSettings{}, "no_such_field")
	wantStatus(t, "unknown mask path", err, codes.InvalidArgument, "")
	_, err = update(env, t, "newco", &sealgatev1.AccountSettings{StorageRegion: "de"}, "storage_region")
	wantStatus(t, "new account without home region", err, codes.InvalidArgument, "")
	_, err = update(env, t, "demo", &sealgatev1.AccountSettings{KeyPolicy: &sealgatev1.KeyPolicy{Mode: sealgatev1.KeyMode_KEY_MODE_CUSTOMER}}, "key_policy")
	wantStatus(t, "customer mode without key", err, codes.InvalidArgument, "")

	// Nothing invalid was written.
	got, err := env.Accounts.GetAccountSettings(env.Ctx(t, "demo", auth.RoleAuditor), &sealgatev1.GetAccountSettingsRequest{Name: "accounts/demo/settings"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetStorageRegion() != "" || len(got.GetRetentionRules()) != 0 {
		t.Fatalf("settings after refused updates = %v, want untouched", got)
	}
	_, err = env.Accounts.UpdateAccountSettings(env.Ctx(t, "demo", auth.RoleAuditor), &sealgatev1.UpdateAccountSettingsRequest{
		Settings: &sealgatev1.AccountSettings{Name: "accounts/demo/settings", StorageRegion: "de"}})
	wantStatus(t, "auditor updates", err, codes.PermissionDenied, "ROLE_REQUIRED")
	_, err = env.Accounts.GetAccountSettings(env.Ctx(t, "acme"), &sealgatev1.GetAccountSettingsRequest{Name: "accounts/demo/settings"})
	wantStatus(t, "another account's settings", err, codes.NotFound, "ACCOUNT_NOT_FOUND")
	_, err = env.Upload(env.Ctx(t, "nobody"), callHeader("us-west"), bytes.NewReader([]byte("x")), 10)
	wantStatus(t, "upload for an account with no settings", err, codes.NotFound, "ACCOUNT_NOT_FOUND")
}

func TestRetentionSetsExpireTime(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	if _, err := update(env, t, "demo", &sealgatev1.AccountSettings{RetentionRules: []*sealgatev1.RetentionRule{
		{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_RECORDINGS_AND_TRANSCRIPTS, RetentionDays: 90},
	}}, "retention_rules"); err != nil {
		t.Fatal(err)
	}
	a := mustUpload(t, env, env.Ctx(t, "demo"), callHeader("us-west"), []byte("x"))
	if got := a.GetExpireTime().AsTime().Sub(a.GetCreateTime().AsTime()); got.Hours() != 90*24 {
		t.Fatalf("expire - create = %v, want 90 days", got)
	}
	vm := callHeader("us-west")
	vm.Type = sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL
	if a := mustUpload(t, env, env.Ctx(t, "demo"), vm, []byte("x")); a.GetExpireTime() != nil {
		t.Fatalf("voicemail without a rule: expire_time %v, want none (indefinite)", a.GetExpireTime())
	}
}

func TestSettingsLimitsMaskAndEtag(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	// ~9,000 queues: refused with one field violation, and the account
	// keeps working.
	queues := map[string]string{}
	for i := 0; i < 9000; i++ {
		queues[fmt.Sprintf("queue-%05d-%s", i, strings.Repeat("x", 100))] = "de"
	}
	_, err := update(env, t, "demo", &sealgatev1.AccountSettings{QueueStorageRegions: queues}, "queue_storage_regions")
	st := wantStatus(t, "9,000 queues", err, codes.InvalidArgument, "INVALID_ARGUMENT")
	if fv := fieldViolations(st); len(fv) != 1 || fv[0].GetField() != "queue_storage_regions" {
		t.Fatalf("field violations %v, want one on queue_storage_regions", fv)
	}
	if len(st.Message()) > 512 {
		t.Errorf("error message of %d bytes, want a short one", len(st.Message()))
	}
	mustUpload(t, env, ctx, callHeader("us-west"), []byte("still works"))

	// No mask: only the fields set change (AIP-134).
	if _, err := local.Open(filepath.Join(env.DataDir, "keys"), "acme-cmk"); err != nil {
		t.Fatal(err)
	}
	if _, err := update(env, t, "demo", &sealgatev1.AccountSettings{KeyPolicy: &sealgatev1.KeyPolicy{
		Mode: sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER, CustomerKeyUri: "local://acme-cmk"}}, "key_policy"); err != nil {
		t.Fatal(err)
	}
	got, err := env.Accounts.UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{Settings: &sealgatev1.AccountSettings{
		Name:           "accounts/demo/settings",
		RetentionRules: []*sealgatev1.RetentionRule{{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_EMAIL_MESSAGES, RetentionDays: 90}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetKeyPolicy().GetMode() != sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER || len(got.GetRetentionRules()) != 1 || got.GetHomeRegion() != "us" {
		t.Fatalf("retention-only update without a mask: %v; want the key policy and home region kept", got)
	}

	// Etags: a stale one is ABORTED and writes nothing.
	cur, err := env.Accounts.GetAccountSettings(ctx, &sealgatev1.GetAccountSettingsRequest{Name: "accounts/demo/settings"})
	if err != nil || cur.GetEtag() == "" || cur.GetEtag() != got.GetEtag() {
		t.Fatalf("Get: etag %q (%v), want the update's %q", cur.GetEtag(), err, got.GetEtag())
	}
	if _, err := update(env, t, "demo", &sealgatev1.AccountSettings{StorageRegion: "de", Etag: cur.GetEtag()}, "storage_region"); err != nil {
		t.Fatalf("update at the current etag: %v", err)
	}
	_, err = update(env, t, "demo", &sealgatev1.AccountSettings{StorageRegion: "jp", Etag: cur.GetEtag()}, "storage_region")
	wantStatus(t, "update at a stale etag", err, codes.Aborted, "ETAG_MISMATCH")
	now, _ := env.Accounts.GetAccountSettings(ctx, &sealgatev1.GetAccountSettingsRequest{Name: "accounts/demo/settings"})
	if now.GetStorageRegion() != "de" {
		t.Fatalf("storage region %q after the refused update, want de", now.GetStorageRegion())
	}
}
