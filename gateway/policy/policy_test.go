package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
)

func TestStorageRegion(t *testing.T) {
	base := func() *sealgatev1.AccountSettings {
		return &sealgatev1.AccountSettings{
			HomeRegion:          "us",
			StorageRegion:       "de",
			QueueStorageRegions: map[string]string{"q-jp": "jp"},
		}
	}
	rec := sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING
	tests := []struct {
		name  string
		mod   func(*sealgatev1.AccountSettings)
		typ   sealgatev1.ArtifactType
		queue string
		want  string
	}{
		{"queue override", nil, rec, "q-jp", "jp"},
		{"queue without entry uses account", nil, rec, "q-other", "de"},
		{"no queue uses account", nil, rec, "", "de"},
		{"fallback to home", func(s *sealgatev1.AccountSettings) { s.StorageRegion = "" }, rec, "q-other", "us"},
		{"localized beats queue", func(s *sealgatev1.AccountSettings) { s.Localized = true }, rec, "q-jp", "us"},
		{"localized beats account", func(s *sealgatev1.AccountSettings) { s.Localized = true }, rec, "", "us"},
		{"MMS stays home", nil, sealgatev1.ArtifactType_ARTIFACT_TYPE_MMS_MEDIA, "q-jp", "us"},
		{"SMS log stays home", nil, sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_LOG, "", "us"},
		{"call log stays home", nil, sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_LOG, "q-jp", "us"},
		{"SMS message follows queue", nil, sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE, "q-jp", "jp"},
		{"voicemail follows account", nil, sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL, "", "de"},
		{"empty queue entry ignored", func(s *sealgatev1.AccountSettings) { s.QueueStorageRegions["q-x"] = "" }, rec, "q-x", "de"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			if tt.mod != nil {
				tt.mod(s)
			}
			if got := StorageRegion(s, tt.typ, tt.queue); got != tt.want {
				t.Errorf("StorageRegion() = %q, want %q", got, tt.want)
			}
		})
	}
	if got := StorageRegion(nil, rec, "q"); got != "" {
		t.Errorf("StorageRegion(nil) = %q, want \"\"", got)
	}
}

func TestTypeInfoCoversEveryType(t *testing.T) {
	home := []sealgatev1.ArtifactType{
		sealgatev1.ArtifactType_ARTIFACT_TYPE_MMS_MEDIA,
		sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_LOG,
		sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_LOG,
	}
	for v, name := range sealgatev1.ArtifactType_name {
		typ := sealgatev1.ArtifactType(v)
		class, cat, ok := TypeInfo(typ)
		if typ == sealgatev1.ArtifactType_ARTIFACT_TYPE_UNSPECIFIED {
			if ok {
				t.Errorf("TypeInfo(%s): got ok, want not ok", name)
			}
			continue
		}
		if !ok {
			t.Errorf("TypeInfo(%s): got no rule, want one (add it to typeRules)", name)
			continue
		}
		wantClass := ClassStorageSetting
		if slices.Contains(home, typ) {
			wantClass = ClassHomeRegion
		}
		if class != wantClass {
			t.Errorf("TypeInfo(%s) class: got %v, want %v", name, class, wantClass)
		}
		isLog := typ == sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_LOG || typ == sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_LOG
		if isLog != (cat == sealgatev1.RetentionCategory_RETENTION_CATEGORY_UNSPECIFIED) {
			t.Errorf("TypeInfo(%s) category: got %v, want UNSPECIFIED only for logs", name, cat)
		}
		if lo, hi := RetentionRange(cat); !isLog && (lo < 1 || hi < lo) {
			t.Errorf("RetentionRange(%v) for %s: got %d..%d, want a valid range", cat, name, lo, hi)
		}
		if got, ok := ParseTypeName(TypeName(typ)); !ok || got != typ {
			t.Errorf("ParseTypeName(TypeName(%s)): got %v, %v, want %v, true", name, got, ok, typ)
		}
	}
	if _, _, ok := TypeInfo(sealgatev1.ArtifactType(9999)); ok {
		t.Errorf("TypeInfo(9999): got ok, want not ok")
	}
}

func TestTypeCategories(t *testing.T) {
	tests := []struct {
		typ  sealgatev1.ArtifactType
		want sealgatev1.RetentionCategory
	}{
		{sealgatev1.ArtifactType_ARTIFACT_TYPE_VIDEO_TRANSCRIPT, sealgatev1.RetentionCategory_RETENTION_CATEGORY_RECORDINGS_AND_TRANSCRIPTS},
		{sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL_TRANSCRIPT, sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES},
		{sealgatev1.ArtifactType_ARTIFACT_TYPE_MESSAGING_TRANSCRIPT, sealgatev1.RetentionCategory_RETENTION_CATEGORY_MESSAGES_AND_FILES},
		{sealgatev1.ArtifactType_ARTIFACT_TYPE_MMS_MEDIA, sealgatev1.RetentionCategory_RETENTION_CATEGORY_MESSAGES_AND_FILES},
		{sealgatev1.ArtifactType_ARTIFACT_TYPE_EMAIL_TRANSCRIPT, sealgatev1.RetentionCategory_RETENTION_CATEGORY_EMAIL_MESSAGES},
		{sealgatev1.ArtifactType_ARTIFACT_TYPE_AUDIO_SURVEY, sealgatev1.RetentionCategory_RETENTION_CATEGORY_AUDIO_SURVEY_FILES},
	}
	for _, tt := range tests {
		if _, got, _ := TypeInfo(tt.typ); got != tt.want {
			t.Errorf("TypeInfo(%v) category: got %v, want %v", tt.typ, got, tt.want)
		}
	}
}

func TestRetentionRangeBoundaries(t *testing.T) {
	maxDays := map[sealgatev1.RetentionCategory]int32{
		sealgatev1.RetentionCategory_RETENTION_CATEGORY_RECORDINGS_AND_TRANSCRIPTS: 3650,
		sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES:             30,
		sealgatev1.RetentionCategory_RETENTION_CATEGORY_MESSAGES_AND_FILES:         365,
		sealgatev1.RetentionCategory_RETENTION_CATEGORY_EMAIL_MESSAGES:             365,
		sealgatev1.RetentionCategory_RETENTION_CATEGORY_AUDIO_SURVEY_FILES:         3650,
	}
	for v := range sealgatev1.RetentionCategory_name {
		cat := sealgatev1.RetentionCategory(v)
		if cat == sealgatev1.RetentionCategory_RETENTION_CATEGORY_UNSPECIFIED {
			if lo, hi := RetentionRange(cat); lo != 0 || hi != 0 {
				t.Errorf("RetentionRange(UNSPECIFIED): got %d..%d, want 0..0", lo, hi)
			}
			continue
		}
		hi, ok := maxDays[cat]
		if !ok {
			t.Errorf("category %v: got no expected range in the test, want one", cat)
			continue
		}
		tests := []struct {
			days int32
			ok   bool
		}{{0, false}, {1, true}, {hi, true}, {hi + 1, false}}
		for _, tt := range tests {
			s := &sealgatev1.AccountSettings{
				HomeRegion:     "us",
				RetentionRules: []*sealgatev1.RetentionRule{{Category: cat, RetentionDays: tt.days}},
			}
			err := Validate(s, nil, nil)
			if got := err == nil; got != tt.ok {
				t.Errorf("%v days %d: got valid=%v (%v), want valid=%v", cat, tt.days, got, err, tt.ok)
				continue
			}
			if !tt.ok {
				v := err.(*ValidationError).Violations[0]
				if v.Reason != ReasonRetentionOutOfRange || v.Field != "retention_rules[0].retention_days" {
					t.Errorf("%v days %d: got %+v, want RETENTION_OUT_OF_RANGE on retention_rules[0].retention_days", cat, tt.days, v)
				}
			}
		}
	}
}

func TestParseTypeName(t *testing.T) {
	tests := []struct {
		in   string
		want sealgatev1.ArtifactType
		ok   bool
	}{
		{"CALL_RECORDING", sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, true},
		{"ARTIFACT_TYPE_SMS_LOG", sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_LOG, true},
		{"voicemail", sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL, true},
		{"UNSPECIFIED", sealgatev1.ArtifactType_ARTIFACT_TYPE_UNSPECIFIED, false},
		{"FAX", sealgatev1.ArtifactType_ARTIFACT_TYPE_UNSPECIFIED, false},
		{"", sealgatev1.ArtifactType_ARTIFACT_TYPE_UNSPECIFIED, false},
	}
	for _, tt := range tests {
		got, ok := ParseTypeName(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseTypeName(%q): got %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if got := TypeName(sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING); got != "CALL_RECORDING" {
		t.Errorf("TypeName: got %q, want %q", got, "CALL_RECORDING")
	}
}

func TestRegions(t *testing.T) {
	for _, r := range Regions {
		if !IsRegion(r) {
			t.Errorf("IsRegion(%q): got false, want true", r)
		}
	}
	for _, r := range []string{"", "US", "eu", "us-west"} {
		if IsRegion(r) {
			t.Errorf("IsRegion(%q): got true, want false", r)
		}
	}
	for z, r := range DefaultSIPZones() {
		if !IsRegion(r) || !strings.HasPrefix(z, r+"-") {
			t.Errorf("DefaultSIPZones()[%q]: got %q, want a region prefixing the zone", z, r)
		}
	}
}

// allBuckets returns a bucket map with every region of Regions.
func allBuckets() map[string]store.Bucket {
	m := make(map[string]store.Bucket)
	for _, r := range Regions {
		m[r] = newMemBucket()
	}
	return m
}

func TestNewTopologyErrors(t *testing.T) {
	us := map[string]store.Bucket{"us": newMemBucket()}
	tests := []struct {
		name    string
		buckets map[string]store.Bucket
		zones   map[string]string
	}{
		{"no regions", nil, nil},
		{"bad region code", map[string]store.Bucket{"eu": newMemBucket()}, nil},
		{"nil bucket", map[string]store.Bucket{"us": nil}, nil},
		{"zone to missing region", us, map[string]string{"de-fra": "de"}},
		{"zone to bad region", us, map[string]string{"x": "eu"}},
		{"empty zone name", us, map[string]string{"": "us"}},
	}
	for _, tt := range tests {
		topo, err := NewTopology(tt.buckets, tt.zones)
		if err == nil || topo != nil {
			t.Errorf("%s: got %v, %v, want nil topology and an error", tt.name, topo, err)
		} else if !strings.HasPrefix(err.Error(), "policy: ") {
			t.Errorf("%s: got error %q, want a \"policy: \" prefix", tt.name, err)
		}
	}
}

func TestTopology(t *testing.T) {
	buckets := map[string]store.Bucket{"us": newMemBucket(), "de": newMemBucket()}
	zones := map[string]string{"us-west": "us", "de-fra": "de"}
	topo, err := NewTopology(buckets, zones)
	if err != nil {
		t.Fatalf("NewTopology: got %v, want nil", err)
	}
	delete(zones, "de-fra") // the topology holds its own copy
	if r, err := topo.ZoneRegion("de-fra"); r != "de" || err != nil {
		t.Errorf("ZoneRegion(de-fra): got %q, %v, want \"de\", nil", r, err)
	}
	if _, err := topo.ZoneRegion("jp-tyo"); !errors.Is(err, ErrUnknownSIPZone) {
		t.Errorf("ZoneRegion(jp-tyo): got %v, want ErrUnknownSIPZone", err)
	}
	if b, err := topo.Bucket("us"); b != buckets["us"] || err != nil {
		t.Errorf("Bucket(us): got %v, %v, want the us bucket, nil", b, err)
	}
	if _, err := topo.Bucket("jp"); !errors.Is(err, ErrUnknownRegion) {
		t.Errorf("Bucket(jp): got %v, want ErrUnknownRegion", err)
	}
	if got, want := topo.Regions(), []string{"de", "us"}; !slices.Equal(got, want) {
		t.Errorf("Regions: got %v, want %v", got, want)
	}
	if !topo.HasRegion("de") || topo.HasRegion("jp") {
		t.Errorf("HasRegion: got de=%v jp=%v, want true, false", topo.HasRegion("de"), topo.HasRegion("jp"))
	}
	z := topo.Zones()
	z["x"] = "us"
	if got := len(topo.Zones()); got != 2 {
		t.Errorf("Zones after changing a copy: got %d zones, want 2", got)
	}
	if _, err := NewTopology(allBuckets(), DefaultSIPZones()); err != nil {
		t.Errorf("NewTopology(default zones): got %v, want nil", err)
	}
}

// memBucket is a minimal in-memory store.Bucket for these tests.
type memBucket struct {
	mu      sync.Mutex
	objects map[string][]byte
	fail    error // returned by every call when set
}

func newMemBucket() *memBucket { return &memBucket{objects: make(map[string][]byte)} }

func (m *memBucket) object(key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.objects[key]
}

func (m *memBucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if m.fail != nil {
		return m.fail
	}
	if err := store.ValidateKey(key); err != nil {
		return err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if size >= 0 && int64(len(data)) != size {
		return store.ErrSizeMismatch
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[key] = data
	return nil
}

func (m *memBucket) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if m.fail != nil {
		return nil, m.fail
	}
	data := m.object(key)
	if data == nil {
		return nil, fmt.Errorf("mem: %q: %w", key, store.ErrNotFound)
	}
	data = data[min(offset, int64(len(data))):]
	if length >= 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (m *memBucket) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	data := m.object(key)
	if data == nil {
		return store.ObjectInfo{}, store.ErrNotFound
	}
	return store.ObjectInfo{Key: key, Size: int64(len(data))}, nil
}

func (m *memBucket) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects, key)
	return nil
}

func (m *memBucket) List(ctx context.Context, prefix, startAfter string, limit int) ([]store.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.ObjectInfo
	for k, v := range m.objects {
		if strings.HasPrefix(k, prefix) && k > startAfter {
			out = append(out, store.ObjectInfo{Key: k, Size: int64(len(v))})
		}
	}
	slices.SortFunc(out, func(a, b store.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	return out[:min(limit, len(out))], nil
}

func (m *memBucket) Close() error { return nil }

var _ store.Bucket = (*memBucket)(nil)

func (m *memBucket) Load(ctx context.Context, key string, max int64) ([]byte, string, error) {
	if m.fail != nil {
		return nil, "", m.fail
	}
	data := m.object(key)
	if data == nil {
		return nil, "", fmt.Errorf("mem: %q: %w", key, store.ErrNotFound)
	}
	if int64(len(data)) > max {
		return nil, "", fmt.Errorf("mem: %q larger than %d", key, max)
	}
	return data, fmt.Sprintf("%x", sha256.Sum256(data)), nil
}

func (m *memBucket) Swap(ctx context.Context, key string, data []byte, version string) (string, error) {
	if m.fail != nil {
		return "", m.fail
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.objects[key]
	if (version == "" && ok) || (version != "" && (!ok || fmt.Sprintf("%x", sha256.Sum256(cur)) != version)) {
		return "", store.ErrPrecondition
	}
	m.objects[key] = bytes.Clone(data)
	return fmt.Sprintf("%x", sha256.Sum256(data)), nil
}
