package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
)

// MaxSettingsSize is the largest settings object, in bytes, that
// SettingsStore reads. Settings are small; a larger object is corrupt.
const MaxSettingsSize = 1 << 20

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
	rc, err := s.b.Get(ctx, settingsKey(account), 0, -1)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrAccountNotFound, account)
	}
	if err != nil {
		return nil, fmt.Errorf("policy: get settings of account %q: %w", account, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxSettingsSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy: read settings of account %q: %w", account, err)
	}
	if len(data) > MaxSettingsSize {
		return nil, fmt.Errorf("policy: settings of account %q exceed %d bytes", account, MaxSettingsSize)
	}
	out := &sealgatev1.AccountSettings{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("policy: decode settings of account %q: %w", account, err)
	}
	return out, nil
}

// Put stores settings as the settings of account, replacing any previous
// ones. It writes settings exactly as given: the caller sets name and
// update_time and validates the settings first.
//
// Put returns a plain error for a malformed account id or nil settings, and
// the bucket's error, wrapped, when the write fails; a failed write leaves
// the previous settings intact.
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

// encodeSettings returns settings as indented JSON with a final newline.
// protojson varies its whitespace on purpose; re-indenting the output with
// encoding/json makes the bytes stable for equal settings (protojson already
// orders fields by number and map entries by key).
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
