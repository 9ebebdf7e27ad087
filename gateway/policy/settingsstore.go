package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
)

// MaxSettingsSize bounds the encoded settings an update may write; the
// validation limits (queues, id lengths) keep real settings far below it.
const MaxSettingsSize = 256 << 10

// maxSettingsReadSize bounds what a read accepts, larger than any write
// allows so that settings written by older versions still load.
const maxSettingsReadSize = 4 << 20

// SettingsStore keeps account settings as JSON objects in a bucket, one per
// account under "accounts/{account}/settings.json". It holds no cache, so
// every replica of the gateway sees a write at once. It is safe for
// concurrent use when its bucket is.
type SettingsStore struct {
	b store.Bucket
}

// NewSettingsStore returns a settings store over bucket b.
func NewSettingsStore(b store.Bucket) *SettingsStore {
	return &SettingsStore{b: b}
}

// settingsKey returns the object key of account's settings.
func settingsKey(account string) string {
	return "accounts/" + account + "/settings.json"
}

// Get returns the stored settings of account. Fields unknown to this
// version of sealgate are ignored, so newer writers do not break older
// readers.
//
// Get returns an error wrapping ErrAccountNotFound when no settings are
// stored for account, a plain error for a malformed account id or a corrupt
// object, and the bucket's error, wrapped, when the bucket fails (for
// example store.ErrUnavailable).
func (s *SettingsStore) Get(ctx context.Context, account string) (*sealgatev1.AccountSettings, error) {
	if !ValidAccountID(account) {
		return nil, fmt.Errorf("policy: get settings: malformed account id %q", account)
	}
	out, _, err := s.load(ctx, account)
	return out, err
}

// load returns an account's settings with their etag set, and the store
// version they were read at.
func (s *SettingsStore) load(ctx context.Context, account string) (*sealgatev1.AccountSettings, string, error) {
	data, version, err := s.b.Load(ctx, settingsKey(account), maxSettingsReadSize)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", fmt.Errorf("%w: %q", ErrAccountNotFound, account)
	}
	if err != nil {
		return nil, "", fmt.Errorf("policy: get settings of account %q: %w", account, err)
	}
	out := &sealgatev1.AccountSettings{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, out); err != nil {
		return nil, "", fmt.Errorf("policy: decode settings of account %q: %w", account, err)
	}
	out.Etag = etagOf(version)
	return out, version, nil
}

// etagOf turns a store version into the settings' etag: opaque, quoted as
// HTTP ETags are.
func etagOf(version string) string {
	v := strings.Trim(version, `"`)
	sum := sha256.Sum256([]byte(v))
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// Put writes an account's settings unconditionally, for tools and tests;
// the API writes through Update.
func (s *SettingsStore) Put(ctx context.Context, account string, settings *sealgatev1.AccountSettings) error {
	if !ValidAccountID(account) {
		return fmt.Errorf("policy: put settings: malformed account id %q", account)
	}
	if settings == nil {
		return fmt.Errorf("policy: put settings of account %q: nil settings", account)
	}
	data, err := encodeSettings(settings)
	if err != nil {
		return fmt.Errorf("policy: encode settings of account %q: %w", account, err)
	}
	if err := s.b.Put(ctx, settingsKey(account), bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("policy: put settings of account %q: %w", account, err)
	}
	return nil
}

// ErrStale means an update named an etag that is no longer the settings'
// (someone changed them meanwhile): the caller should read again.
var ErrStale = errors.New("policy: settings changed since they were read")

// maxUpdateAttempts bounds the read-modify-write retries of one Update when
// other writers keep winning.
const maxUpdateAttempts = 16

// Update reads an account's settings (nil when it has none yet), lets
// change return the new settings, and writes them only if nobody wrote in
// between (compare-and-swap on the store's version), retrying the whole
// read-modify-write when someone did. With etag set, the settings must still
// be at that etag, else it returns an error wrapping ErrStale and writes
// nothing. It returns the settings written, with their new etag.
func (s *SettingsStore) Update(ctx context.Context, account, etag string,
	change func(current *sealgatev1.AccountSettings) (*sealgatev1.AccountSettings, error)) (*sealgatev1.AccountSettings, error) {
	if !ValidAccountID(account) {
		return nil, fmt.Errorf("policy: update settings: malformed account id %q", account)
	}
	for attempt := 0; attempt < maxUpdateAttempts; attempt++ {
		current, version, err := s.load(ctx, account)
		if errors.Is(err, ErrAccountNotFound) {
			current, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		if etag != "" && (current == nil || current.GetEtag() != etag) {
			return nil, fmt.Errorf("%w: account %q", ErrStale, account)
		}
		next, err := change(current)
		if err != nil {
			return nil, err
		}
		next.Etag = ""
		data, err := encodeSettings(next)
		if err != nil {
			return nil, fmt.Errorf("policy: encode settings of account %q: %w", account, err)
		}
		if len(data) > MaxSettingsSize {
			return nil, &ValidationError{Violations: []Violation{{Field: "settings", Reason: ReasonInvalidArgument,
				Description: fmt.Sprintf("settings of %d bytes exceed %d", len(data), MaxSettingsSize)}}}
		}
		newVersion, err := s.b.Swap(ctx, settingsKey(account), data, version)
		if errors.Is(err, store.ErrPrecondition) {
			if etag != "" {
				return nil, fmt.Errorf("%w: account %q", ErrStale, account)
			}
			continue // someone wrote first: read their settings and apply again
		}
		if err != nil {
			return nil, fmt.Errorf("policy: put settings of account %q: %w", account, err)
		}
		next.Etag = etagOf(newVersion)
		return next, nil
	}
	return nil, fmt.Errorf("%w: account %q: too many concurrent writers", ErrStale, account)
}

func encodeSettings(settings *sealgatev1.AccountSettings) ([]byte, error) {
	raw, err := protojson.MarshalOptions{EmitUnpopulated: false}.Marshal(settings)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
