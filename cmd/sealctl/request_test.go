package main

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// parseSettings parses `settings set` args and builds the request for
// account demo.
func parseSettings(t *testing.T, args ...string) (*sealgatev1.UpdateAccountSettingsRequest, error) {
	t.Helper()
	a, _, _ := testApp(nil)
	fs, _ := a.newFlagSet("settings set", "settings set")
	var f settingsFlags
	f.register(fs)
	if _, err := parseArgs(fs, args); err != nil {
		return nil, err
	}
	return f.buildRequest("demo", fs)
}

func TestSettingsUpdateMask(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantPaths []string
		want      *sealgatev1.AccountSettings
	}{
		{
			name:      "storage region only",
			args:      []string{"--storage-region", "de"},
			wantPaths: []string{"storage_region"},
			want:      &sealgatev1.AccountSettings{StorageRegion: "de"},
		},
		{
			name:      "localized false is still a change",
			args:      []string{"--localized=false", "--home-region", "jp"},
			wantPaths: []string{"home_region", "localized"},
			want:      &sealgatev1.AccountSettings{HomeRegion: "jp"},
		},
		{
			name:      "queues and retention",
			args:      []string{"--queue-region", "q1=de", "--queue-region", "q2=jp", "--retention", "RECORDINGS_AND_TRANSCRIPTS=365", "--retention", "retention_category_inbox_messages=7"},
			wantPaths: []string{"queue_storage_regions", "retention_rules"},
			want: &sealgatev1.AccountSettings{
				QueueStorageRegions: map[string]string{"q1": "de", "q2": "jp"},
				RetentionRules: []*sealgatev1.RetentionRule{
					{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_RECORDINGS_AND_TRANSCRIPTS, RetentionDays: 365},
					{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES, RetentionDays: 7},
				},
			},
		},
		{
			name:      "key policy fields are nested paths",
			args:      []string{"--key-mode", "customer_and_provider", "--customer-key-uri", "hcvault://127.0.0.1:8200/transit/keys/acme"},
			wantPaths: []string{"key_policy.mode", "key_policy.customer_key_uri"},
			want: &sealgatev1.AccountSettings{KeyPolicy: &sealgatev1.KeyPolicy{
				Mode:           sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER,
				CustomerKeyUri: "hcvault://127.0.0.1:8200/transit/keys/acme",
			}},
		},
		{
			name:      "key mode alone",
			args:      []string{"--key-mode", "PROVIDER"},
			wantPaths: []string{"key_policy.mode"},
			want:      &sealgatev1.AccountSettings{KeyPolicy: &sealgatev1.KeyPolicy{Mode: sealgatev1.KeyMode_KEY_MODE_PROVIDER}},
		},
		{
			name:      "deletion mode and clearing the queues",
			args:      []string{"--deletion-mode", "HARD", "--queue-region", ""},
			wantPaths: []string{"queue_storage_regions", "deletion_mode"},
			want:      &sealgatev1.AccountSettings{DeletionMode: sealgatev1.DeletionMode_DELETION_MODE_HARD},
		},
		{
			name:      "global flags are not settings",
			args:      []string{"--timeout", "5s", "--account", "demo", "--storage-region", "us"},
			wantPaths: []string{"storage_region"},
			want:      &sealgatev1.AccountSettings{StorageRegion: "us"},
		},
	}
	for _, tt := range tests {
		req, err := parseSettings(t, tt.args...)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := req.GetUpdateMask().GetPaths(); !slices.Equal(got, tt.wantPaths) {
			t.Errorf("%s: update_mask = %q, want %q", tt.name, got, tt.wantPaths)
		}
		tt.want.Name = "accounts/demo/settings"
		if !proto.Equal(req.GetSettings(), tt.want) {
			t.Errorf("%s: settings = %v, want %v", tt.name, req.GetSettings(), tt.want)
		}
	}
}

func TestSettingsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--timeout", "1s"},
		{"--key-mode", "BOTH"},
		{"--key-mode", "UNSPECIFIED"},
		{"--deletion-mode", "SOMETIMES"},
		{"--retention", "FOREVER=1"},
		{"--retention", "INBOX_MESSAGES=a week"},
		{"--retention", "INBOX_MESSAGES"},
		{"--queue-region", "q1"},
		{"--queue-region", "q1=de", "--queue-region", "q1=jp"},
		{"--localized=maybe"},
	} {
		if req, err := parseSettings(t, args...); err == nil {
			t.Errorf("settings set %q = %v, want an error", args, req)
		}
	}
}

func TestUploadHeader(t *testing.T) {
	f := &uploadFlags{
		typ: "call_transcript", sipZone: "us-west", queue: "q1", engagement: "e1",
		labels: labelsFlag{"k": "v"},
	}
	h, err := f.buildHeader("transcript.json", 3<<20)
	if err != nil {
		t.Fatalf("buildHeader: %v", err)
	}
	size := int64(3 << 20)
	want := &sealgatev1.UploadHeader{
		Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT, SipZone: "us-west", QueueId: "q1",
		EngagementId: "e1", ContentType: h.GetContentType(), Labels: map[string]string{"k": "v"}, SizeBytes: &size,
	}
	if !proto.Equal(h, want) {
		t.Errorf("header = %v, want %v", h, want)
	}
	if !strings.HasPrefix(h.GetContentType(), "application/json") {
		t.Errorf("content_type for transcript.json = %q, want application/json", h.GetContentType())
	}
	f.contentType = "audio/ogg"
	h, err = f.buildHeader("-", -1)
	if err != nil {
		t.Fatalf("buildHeader(stdin): %v", err)
	}
	if h.SizeBytes != nil || h.GetContentType() != "audio/ogg" {
		t.Errorf("stdin header: size_bytes = %v, content_type = %q; want unset, audio/ogg", h.SizeBytes, h.GetContentType())
	}
}

func TestListRequest(t *testing.T) {
	f := listFlags{typ: "SMS_MESSAGE", engagement: "e1", pageSize: 10}
	req, err := f.buildRequest("demo")
	if err != nil {
		t.Fatalf("buildRequest: %v", err)
	}
	want := &sealgatev1.ListArtifactsRequest{
		Parent: "accounts/demo", Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE, EngagementId: "e1", PageSize: 10,
	}
	if !proto.Equal(req, want) {
		t.Errorf("request = %v, want %v", req, want)
	}
	for _, bad := range []listFlags{{typ: "nope"}, {pageSize: -1}, {pageSize: 1001}} {
		if _, err := bad.buildRequest("demo"); err == nil {
			t.Errorf("buildRequest(%+v) = nil error, want one", bad)
		}
	}
}

func TestErrorReport(t *testing.T) {
	st, err := status.New(codes.InvalidArgument, "invalid settings").WithDetails(
		&errdetails.ErrorInfo{Reason: "RETENTION_OUT_OF_RANGE", Domain: "sealgate.dev"},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "retention_rules[0].retention_days", Description: "want 1 to 30 days"},
			{Field: "storage_region", Description: "not a region", Reason: "UNKNOWN_REGION"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	printError(&b, st.Err())
	want := "sealctl: INVALID_ARGUMENT: invalid settings [RETENTION_OUT_OF_RANGE]\n" +
		"  retention_rules[0].retention_days: want 1 to 30 days\n" +
		"  storage_region: not a region [UNKNOWN_REGION]\n"
	if b.String() != want {
		t.Errorf("printError = %q, want %q", b.String(), want)
	}

	b.Reset()
	printError(&b, status.Error(codes.NotFound, "artifact not found"))
	if want := "sealctl: NOT_FOUND: artifact not found\n"; b.String() != want {
		t.Errorf("printError(no details) = %q, want %q", b.String(), want)
	}
	b.Reset()
	printError(&b, errors.New("open x: no such file"))
	if want := "sealctl: open x: no such file\n"; b.String() != want {
		t.Errorf("printError(plain) = %q, want %q", b.String(), want)
	}
	if got := codeName(codes.Canceled); got != "CANCELLED" {
		t.Errorf("codeName(Canceled) = %q, want CANCELLED", got)
	}
}

func TestProtoJSONStable(t *testing.T) {
	art := &sealgatev1.Artifact{Name: "accounts/demo/artifacts/x", SizeBytes: 42, Labels: map[string]string{"b": "2", "a": "1"}}
	got, err := protoJSON(art, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"name\": \"accounts/demo/artifacts/x\",\n  \"size_bytes\": \"42\",\n  \"labels\": {\n    \"a\": \"1\",\n    \"b\": \"2\"\n  }\n}\n"
	if string(got) != want {
		t.Errorf("protoJSON = %q, want %q", got, want)
	}
	line, err := protoJSON(art, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(line), "\n") != 1 || strings.Contains(string(line), " ") {
		t.Errorf("protoJSON(compact) = %q, want one line without spaces", line)
	}
}
