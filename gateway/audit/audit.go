// Package audit records who did what with which key: every key wrap and
// unwrap, every read (allowed or denied) and every settings change, as one
// structured event each. Events never hold content or key bytes.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Event kinds.
const (
	KindKeyWrap        = "key.wrap"
	KindKeyUnwrap      = "key.unwrap"
	KindUpload         = "artifact.upload"
	KindRead           = "artifact.read"
	KindReadDenied     = "artifact.read_denied"
	KindSettingsChange = "settings.update"
	KindRewrap         = "artifact.rewrap"
	KindKeyCheck       = "key.check"
	// Deletion and retention. Actor is the caller, or "sweeper".
	KindDelete   = "artifact.delete"
	KindUndelete = "artifact.undelete"
	KindHold     = "legal_hold.set"
	KindRelease  = "legal_hold.release"
	KindExpire   = "artifact.expire"
	KindPurge    = "artifact.purge"
	// KindAuthDenied: a call without a valid token (Detail: TOKEN_MISSING,
	// TOKEN_INVALID or TOKEN_EXPIRED).
	KindAuthDenied = "auth.denied"
	// KindAccessDenied: an authenticated call refused for its role
	// (Detail: ROLE_REQUIRED) or for naming another account's resource
	// (Detail: OTHER_ACCOUNT; answered like a missing resource).
	KindAccessDenied = "access.denied"
	// KindRateLimited: a call refused by a limit (Detail: the limit).
	KindRateLimited = "limit.exceeded"
	// KindBlocked: an upload refused by a blocking rule (Detail: the
	// rule id); nothing was stored.
	KindBlocked = "artifact.blocked"
	// KindRedacted: a recording's spans of personal data were silenced and
	// its original destroyed (Detail: how many spans, how long; never the
	// words).
	KindRedacted = "artifact.redacted"
)

// Outcomes.
const (
	OutcomeOK          = "ok"
	OutcomeRevoked     = "revoked"
	OutcomeUnavailable = "unavailable"
	OutcomeError       = "error"
	// OutcomeDenied: refused before any work (authentication, role, owner).
	OutcomeDenied = "denied"
	// OutcomeAborted: the client went away or stopped taking data.
	OutcomeAborted = "aborted"
)

// Event is one audit record, written as one JSON line.
type Event struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Account  string    `json:"account,omitempty"`
	Artifact string    `json:"artifact,omitempty"`
	KeyURIs  []string  `json:"key_uris,omitempty"`
	Actor    string    `json:"actor,omitempty"`
	// Method is the gRPC method of a refused call.
	Method string `json:"method,omitempty"`
	// Peer is the client's address, for refused calls.
	Peer    string `json:"peer,omitempty"`
	Outcome string `json:"outcome"`
	// Bytes is how many content bytes a read or upload moved.
	Bytes int64 `json:"bytes,omitempty"`
	// PII says, for a read of text under a masking policy, whether the
	// reader saw personal data "masked" or "unmasked" (a pii_viewer).
	PII string `json:"pii,omitempty"`
	// Detail is a short machine-friendly reason (an error class, a field
	// list); never content, key material or a token.
	Detail string `json:"detail,omitempty"`
}

// Sink receives audit events. Record must not block for long.
type Sink interface {
	Record(Event)
}

// Discard drops every event.
type Discard struct{}

// Record does nothing.
func (Discard) Record(Event) {}

// JSONLines writes each event as one JSON line to w.
type JSONLines struct {
	mu  sync.Mutex
	w   io.Writer
	c   io.Closer
	err error
}

// NewJSONLines returns a sink writing to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

// Open returns a sink for dest: "stdout", "stderr", "" (discard) or a file
// path, appended to and created with mode 0600.
func Open(dest string) (Sink, io.Closer, error) {
	switch dest {
	case "":
		return Discard{}, io.NopCloser(nil), nil
	case "stdout":
		return NewJSONLines(os.Stdout), io.NopCloser(nil), nil
	case "stderr":
		return NewJSONLines(os.Stderr), io.NopCloser(nil), nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	s := &JSONLines{w: f, c: f}
	return s, s, nil
}

// Record writes e. Write errors are kept and reported by Err.
func (s *JSONLines) Record(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(append(b, '\n')); err != nil && s.err == nil {
		s.err = err
	}
}

// Err returns the first write error, if any.
func (s *JSONLines) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close closes the underlying file, if the sink opened one.
func (s *JSONLines) Close() error {
	if s.c == nil {
		return nil
	}
	return s.c.Close()
}

// Memory keeps events in memory, for tests.
type Memory struct {
	mu     sync.Mutex
	events []Event
}

// Record appends e.
func (m *Memory) Record(e Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
}

// Events returns a copy of the events recorded so far.
func (m *Memory) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Event(nil), m.events...)
}
