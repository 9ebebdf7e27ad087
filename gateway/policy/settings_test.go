package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
)

var testSchemes = []string{"aws-kms", "hcvault", "local"}

func validSettings() *sealgatev1.AccountSettings {
	return &sealgatev1.AccountSettings{
		Name:                SettingsName("acme"),
		HomeRegion:          "us",
		StorageRegion:       "de",
		QueueStorageRegions: map[string]string{"sales": "jp"},
		KeyPolicy: &sealgatev1.KeyPolicy{
			Mode:           sealgatev1.KeyMode_KEY_MODE_CUSTOMER,
			CustomerKeyUri: "hcvault://127.0.0.1:8200/transit/keys/acme",
		},
		RetentionRules: []*sealgatev1.RetentionRule{
			{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES, RetentionDays: 30},
		},
		DeletionMode: sealgatev1.DeletionMode_DELETION_MODE_HARD,
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := map[string]*sealgatev1.AccountSettings{
		"full":    validSettings(),
		"minimal": {HomeRegion: "sg"},
		"provider": {HomeRegion: "br", KeyPolicy: &sealgatev1.KeyPolicy{
			Mode: sealgatev1.KeyMode_KEY_MODE_PROVIDER}},
	}
	for name, s := range tests {
		if err := Validate(s, nil, testSchemes); err != nil {
			t.Errorf("Validate(%s): got %v, want nil", name, err)
		}
	}
}

func TestValidateCollectsViolations(t *testing.T) {
	s := &sealgatev1.AccountSettings{
		HomeRegion:    "eu",
		StorageRegion: "mars",
		QueueStorageRegions: map[string]string{
			"":                       "us",
			"ok":                     "xx",
			strings.Repeat("q", 129): "us",
			"bad\x01":                "us",
			strings.Repeat("q", 128): "us",
		},
		KeyPolicy: &sealgatev1.KeyPolicy{
			Mode:           sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER,
			CustomerKeyUri: "gcp-kms://projects/p/keys/k",
		},
		RetentionRules: []*sealgatev1.RetentionRule{
			{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_EMAIL_MESSAGES, RetentionDays: 366},
			{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_EMAIL_MESSAGES, RetentionDays: 10},
			{RetentionDays: 10},
		},
		DeletionMode: sealgatev1.DeletionMode(7),
	}
	err := Validate(s, nil, testSchemes)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate: got %v, want *ValidationError", err)
	}
	want := []Violation{
		{Field: "home_region", Reason: ReasonUnknownRegion},
		{Field: "storage_region", Reason: ReasonUnknownRegion},
		{Field: "queue_storage_regions[]", Reason: ReasonInvalidArgument},
		{Field: `queue_storage_regions["bad\x01"]`, Reason: ReasonInvalidArgument},
		{Field: "queue_storage_regions[ok]", Reason: ReasonUnknownRegion},
		{Field: "queue_storage_regions[\"" + strings.Repeat("q", 64) + "\"…]", Reason: ReasonInvalidArgument},
		{Field: "key_policy.customer_key_uri", Reason: ReasonInvalidArgument},
		{Field: "retention_rules[0].retention_days", Reason: ReasonRetentionOutOfRange},
		{Field: "retention_rules[1].category", Reason: ReasonInvalidArgument},
		{Field: "retention_rules[2].category", Reason: ReasonInvalidArgument},
		{Field: "deletion_mode", Reason: ReasonInvalidArgument},
	}
	got := make([]Violation, len(ve.Violations))
	for i, v := range ve.Violations {
		if v.Description == "" {
			t.Errorf("violation %s: got empty description, want one", v.Field)
		}
		got[i] = Violation{Field: v.Field, Reason: v.Reason}
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations:\ngot  %v\nwant %v", got, want)
	}
	if d := ve.Violations[7].Description; !strings.Contains(d, "1 to 365 days") {
		t.Errorf("retention description: got %q, want it to name the range \"1 to 365 days\"", d)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "policy: invalid settings: home_region: ") || !strings.Contains(msg, "; storage_region: ") {
		t.Errorf("Error(): got %q, want \"policy: invalid settings: field: description; ...\"", msg)
	}
	if got := ve.Reason(); got != ReasonUnknownRegion {
		t.Errorf("Reason(): got %q, want %q", got, ReasonUnknownRegion)
	}
}

func TestValidateKeyPolicy(t *testing.T) {
	tests := []struct {
		name  string
		kp    *sealgatev1.KeyPolicy
		field string // "" means valid
	}{
		{"unspecified with uri", &sealgatev1.KeyPolicy{CustomerKeyUri: "local://k"}, "key_policy.customer_key_uri"},
		{"provider with uri", &sealgatev1.KeyPolicy{Mode: sealgatev1.KeyMode_KEY_MODE_PROVIDER, CustomerKeyUri: "local://k"}, "key_policy.customer_key_uri"},
		{"customer without uri", &sealgatev1.KeyPolicy{Mode: sealgatev1.KeyMode_KEY_MODE_CUSTOMER}, "key_policy.customer_key_uri"},
		{"customer without scheme", &sealgatev1.KeyPolicy{Mode: sealgatev1.KeyMode_KEY_MODE_CUSTOMER, CustomerKeyUri: "arn:aws:kms"}, "key_policy.customer_key_uri"},
		{"customer aws", &sealgatev1.KeyPolicy{Mode: sealgatev1.KeyMode_KEY_MODE_CUSTOMER, CustomerKeyUri: "aws-kms://arn:aws:kms:us-east-1:1:key/x"}, ""},
		{"unknown mode", &sealgatev1.KeyPolicy{Mode: sealgatev1.KeyMode(9)}, "key_policy.mode"},
	}
	for _, tt := range tests {
		err := Validate(&sealgatev1.AccountSettings{HomeRegion: "ca", KeyPolicy: tt.kp}, nil, testSchemes)
		var ve *ValidationError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: got %v, want nil", tt.name, err)
		case tt.field != "" && (!errors.As(err, &ve) || len(ve.Violations) != 1 || ve.Violations[0].Field != tt.field):
			t.Errorf("%s: got %v, want one violation on %s", tt.name, err, tt.field)
		}
	}
	if err := Validate(nil, nil, nil); err == nil {
		t.Errorf("Validate(nil): got nil, want an error")
	}
	if err := Validate(&sealgatev1.AccountSettings{}, nil, nil); err == nil || !strings.Contains(err.Error(), "home_region") {
		t.Errorf("Validate(no home region): got %v, want a home_region violation", err)
	}
}

func TestCheckTopology(t *testing.T) {
	topo, err := NewTopology(map[string]store.Bucket{"us": newMemBucket(), "de": newMemBucket()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		s       *sealgatev1.AccountSettings
		missing []string
	}{
		{"all configured", &sealgatev1.AccountSettings{HomeRegion: "us", StorageRegion: "de"}, nil},
		{"home missing", &sealgatev1.AccountSettings{HomeRegion: "jp"}, []string{"jp"}},
		{"storage missing", &sealgatev1.AccountSettings{HomeRegion: "us", StorageRegion: "au"}, []string{"au"}},
		{"queue missing", &sealgatev1.AccountSettings{HomeRegion: "us", QueueStorageRegions: map[string]string{"a": "mx", "b": "us"}}, []string{"mx"}},
		{"not region codes are Validate's", &sealgatev1.AccountSettings{HomeRegion: "eu"}, nil},
	}
	for _, tt := range tests {
		err := CheckTopology(tt.s, topo)
		if len(tt.missing) == 0 {
			if err != nil {
				t.Errorf("%s: got %v, want nil", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrUnknownRegion) {
			t.Errorf("%s: got %v, want ErrUnknownRegion", tt.name, err)
			continue
		}
		for _, r := range tt.missing {
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", r)) {
				t.Errorf("%s: got %q, want it to name %q", tt.name, err, r)
			}
		}
	}
}

func TestApplyMask(t *testing.T) {
	src := validSettings()
	src.Name = "accounts/evil/settings"
	src.UpdateTime = timestamppb.New(time.Unix(100, 0))
	dst := func() *sealgatev1.AccountSettings {
		return &sealgatev1.AccountSettings{
			Name:       SettingsName("acme"),
			HomeRegion: "ca",
			KeyPolicy:  &sealgatev1.KeyPolicy{CustomerKeyUri: "local://old"},
			UpdateTime: timestamppb.New(time.Unix(1, 0)),
		}
	}
	tests := []struct {
		name  string
		paths []string
		want  func() *sealgatev1.AccountSettings
	}{
		{"single path", []string{"storage_region"}, func() *sealgatev1.AccountSettings {
			d := dst()
			d.StorageRegion = "de"
			return d
		}},
		{"nested key_policy.mode", []string{"key_policy.mode"}, func() *sealgatev1.AccountSettings {
			d := dst()
			d.KeyPolicy.Mode = sealgatev1.KeyMode_KEY_MODE_CUSTOMER
			return d
		}},
		{"empty mask copies all but name and update_time", nil, func() *sealgatev1.AccountSettings {
			d := proto.CloneOf(validSettings())
			d.UpdateTime = timestamppb.New(time.Unix(1, 0))
			return d
		}},
	}
	for _, tt := range tests {
		got := dst()
		if err := ApplyMask(got, src, tt.paths); err != nil {
			t.Errorf("%s: got error %v, want nil", tt.name, err)
			continue
		}
		if want := tt.want(); !proto.Equal(got, want) {
			t.Errorf("%s:\ngot  %v\nwant %v", tt.name, got, want)
		}
	}

	got := dst()
	got.StorageRegion = "us"
	if err := ApplyMask(got, nil, []string{"storage_region", "key_policy"}); err != nil || got.StorageRegion != "" || got.KeyPolicy != nil {
		t.Errorf("nil src: got %v, %v, want cleared storage_region and key_policy", got, err)
	}

	all := dst()
	if err := ApplyMask(all, src, nil); err != nil {
		t.Fatal(err)
	}
	src.QueueStorageRegions["sales"] = "sg"
	src.RetentionRules[0].RetentionDays = 1
	if all.QueueStorageRegions["sales"] != "jp" || all.RetentionRules[0].RetentionDays != 30 {
		t.Errorf("ApplyMask shares maps or messages with src: got %v, want deep copies", all)
	}

	unknown := dst()
	err := ApplyMask(unknown, src, []string{"storage_region", "name", "key_policy.bogus"})
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Violations) != 2 {
		t.Fatalf("unknown paths: got %v, want a *ValidationError with 2 violations", err)
	}
	for i, p := range []string{`"name"`, `"key_policy.bogus"`} {
		if v := ve.Violations[i]; v.Field != "update_mask" || !strings.Contains(v.Description, p) {
			t.Errorf("unknown path violation %d: got %+v, want field update_mask naming %s", i, v, p)
		}
	}
	if !proto.Equal(unknown, dst()) {
		t.Errorf("unknown paths: got dst changed to %v, want it unchanged", unknown)
	}
	if err := ApplyMask(nil, src, nil); err == nil {
		t.Errorf("ApplyMask(nil dst): got nil, want an error")
	}
}

func TestSettingsName(t *testing.T) {
	if got := SettingsName("acme"); got != "accounts/acme/settings" {
		t.Errorf("SettingsName: got %q, want %q", got, "accounts/acme/settings")
	}
	tests := []struct {
		in, account string
		ok          bool
	}{
		{"accounts/acme/settings", "acme", true},
		{"accounts/a-1/settings", "a-1", true},
		{"accounts//settings", "", false},
		{"accounts/a/b/settings", "", false},
		{"accounts/acme", "", false},
		{"accounts/Acme/settings", "", false},
		{"accounts/acme/artifacts/x", "", false},
	}
	for _, tt := range tests {
		if a, ok := ParseSettingsName(tt.in); a != tt.account || ok != tt.ok {
			t.Errorf("ParseSettingsName(%q): got %q, %v, want %q, %v", tt.in, a, ok, tt.account, tt.ok)
		}
	}
}

func TestSettingsStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	b := newMemBucket()
	ss := NewSettingsStore(b)

	if _, err := ss.Get(ctx, "acme"); !errors.Is(err, ErrAccountNotFound) {
		t.Fatalf("Get(missing): got %v, want ErrAccountNotFound", err)
	}
	want := validSettings()
	want.UpdateTime = timestamppb.New(time.Unix(1700000000, 0))
	if err := ss.Put(ctx, "acme", want); err != nil {
		t.Fatalf("Put: got %v, want nil", err)
	}
	got, err := ss.Get(ctx, "acme")
	if err != nil {
		t.Fatalf("Get: got %v, want nil", err)
	}
	if got.GetEtag() == "" {
		t.Errorf("Get: no etag")
	}
	got.Etag = ""
	if !proto.Equal(got, want) {
		t.Errorf("Get:\ngot  %v\nwant %v", got, want)
	}

	first := b.object("accounts/acme/settings.json")
	if first == nil {
		t.Fatalf("object key: got none under accounts/acme/settings.json, want one")
	}
	if err := ss.Put(ctx, "acme", want); err != nil {
		t.Fatal(err)
	}
	if second := b.object("accounts/acme/settings.json"); !bytes.Equal(first, second) {
		t.Errorf("encoding: got different bytes for equal settings:\n%s\n%s", first, second)
	}
	if bytes.Contains(first, []byte("localized")) {
		t.Errorf("encoding: got unpopulated field in %s, want it omitted", first)
	}

	// A newer writer's unknown field must not break this reader.
	b.objects["accounts/newer/settings.json"] = []byte(`{"homeRegion":"jp","futureField":{"x":1}}`)
	if got, err := ss.Get(ctx, "newer"); err != nil || got.GetHomeRegion() != "jp" {
		t.Errorf("Get(unknown field): got %v, %v, want home_region jp, nil", got, err)
	}

	b.objects["accounts/broken/settings.json"] = []byte(`{not json`)
	if _, err := ss.Get(ctx, "broken"); err == nil || errors.Is(err, ErrAccountNotFound) {
		t.Errorf("Get(corrupt): got %v, want a decode error", err)
	}
	for _, bad := range []string{"", "../x", "a/b", "Acme"} {
		if _, err := ss.Get(ctx, bad); err == nil {
			t.Errorf("Get(%q): got nil error, want one", bad)
		}
		if err := ss.Put(ctx, bad, want); err == nil {
			t.Errorf("Put(%q): got nil error, want one", bad)
		}
	}
	b.fail = store.ErrUnavailable
	if _, err := ss.Get(ctx, "acme"); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, ErrAccountNotFound) {
		t.Errorf("Get(unavailable): got %v, want store.ErrUnavailable", err)
	}
	if err := ss.Put(ctx, "acme", want); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Put(unavailable): got %v, want store.ErrUnavailable", err)
	}
}

func TestRetentionDays(t *testing.T) {
	s := validSettings()
	if d, ok := RetentionDays(s, sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL); d != 30 || !ok {
		t.Errorf("RetentionDays(voicemail): got %d, %v, want 30, true", d, ok)
	}
	for _, typ := range []sealgatev1.ArtifactType{
		sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING,
		sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_LOG,
		sealgatev1.ArtifactType_ARTIFACT_TYPE_UNSPECIFIED,
	} {
		if d, ok := RetentionDays(s, typ); ok {
			t.Errorf("RetentionDays(%v): got %d, true, want indefinite", typ, d)
		}
	}
}

func TestSettingsUpdateComparesAndSwaps(t *testing.T) {
	ctx := context.Background()
	ss := NewSettingsStore(newMemBucket())
	add := func(q string) func(*sealgatev1.AccountSettings) (*sealgatev1.AccountSettings, error) {
		return func(cur *sealgatev1.AccountSettings) (*sealgatev1.AccountSettings, error) {
			next := &sealgatev1.AccountSettings{HomeRegion: "us"}
			if cur != nil {
				next = proto.Clone(cur).(*sealgatev1.AccountSettings)
			}
			if next.QueueStorageRegions == nil {
				next.QueueStorageRegions = map[string]string{}
			}
			next.QueueStorageRegions[q] = "de"
			return next, nil
		}
	}
	first, err := ss.Update(ctx, "acme", "", add("q0"))
	if err != nil || first.GetEtag() == "" {
		t.Fatalf("first update: %v, %v; want settings with an etag", first, err)
	}
	// 32 writers at once, none naming an etag: each retries until its queue
	// is in; nothing is lost.
	var wg sync.WaitGroup
	for i := 1; i <= 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := ss.Update(ctx, "acme", "", add(fmt.Sprint("q", i))); err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	got, err := ss.Get(ctx, "acme")
	if err != nil || len(got.GetQueueStorageRegions()) != 33 {
		t.Fatalf("after 33 updates: %d queues, %v; want all 33", len(got.GetQueueStorageRegions()), err)
	}
	// An etag of before the writers is stale: refused, nothing written.
	if _, err := ss.Update(ctx, "acme", first.GetEtag(), add("late")); !errors.Is(err, ErrStale) {
		t.Fatalf("update at a stale etag: %v, want ErrStale", err)
	}
	next, err := ss.Update(ctx, "acme", got.GetEtag(), add("fresh"))
	if err != nil || next.GetQueueStorageRegions()["fresh"] != "de" || next.GetEtag() == got.GetEtag() {
		t.Fatalf("update at the current etag: %v, %v", next, err)
	}
}
