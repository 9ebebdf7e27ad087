// Package notify delivers gateway events (a blocked message, say) to
// operator-registered webhooks, at least once, from a durable outbox in the
// control store.
//
// Enqueue writes one outbox object per webhook that wants the event before
// it returns, so an event survives a crash of the process that raised it.
// Run delivers due entries: each one is leased with a conditional write (so
// two gateways sharing a control store do not both post it at the same
// time), posted as a JSON body signed with HMAC-SHA256, removed on a 2xx
// answer, and otherwise retried with exponential backoff and jitter. The
// event id is the idempotency key: a receiver may see an event more than
// once (a crash after the post and before the removal) and must ignore
// repeats of an id it has handled.
//
// Webhook URLs come only from the operator's configuration, never from a
// tenant, and redirects are not followed: a tenant cannot point the gateway
// at a host of its choosing.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sealgate/sealgate/store"
)

// Event types.
const (
	// TypeContentBlocked: an upload matched a blocking rule and was not
	// stored.
	TypeContentBlocked = "content.blocked"
)

// Event is what a webhook receives, as the JSON body of a POST. It never
// holds content: a blocked message is named by its rule and engagement,
// not by what it said.
type Event struct {
	// ID identifies the event; it is also the Idempotency-Key header.
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Account    string    `json:"account"`
	OccurredAt time.Time `json:"occurred_at"`
	// RuleID is the blocking rule that matched.
	RuleID       string `json:"rule_id,omitempty"`
	ArtifactType string `json:"artifact_type,omitempty"`
	// EngagementID, QueueID and SIPZone say whose conversation it was, so
	// the receiver can tell the sender and the engagement's agent.
	EngagementID string `json:"engagement_id,omitempty"`
	QueueID      string `json:"queue_id,omitempty"`
	SIPZone      string `json:"sip_zone,omitempty"`
	// Uploader is the subject of the principal that sent the upload.
	Uploader string            `json:"uploader,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// LabelsDropped is true when the upload's labels were left out to keep
	// the event within maxEntry (64 labels of 256 bytes can exceed it once
	// escaped as JSON).
	LabelsDropped bool `json:"labels_dropped,omitempty"`
}

// NewID returns a random event id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Webhook is an operator-registered receiver.
type Webhook struct {
	// Name identifies the webhook in the outbox and in logs: letters,
	// digits, '-' and '_'.
	Name string
	// URL receives a POST per event (https, or http on loopback).
	URL string
	// Secret signs the body.
	Secret []byte
	// Accounts whose events go to this webhook; empty means all.
	Accounts []string
}

func (w *Webhook) wants(account string) bool {
	return len(w.Accounts) == 0 || slices.Contains(w.Accounts, account)
}

// Signature headers. The signature is hex(HMAC-SHA256(secret, t + "." +
// body)), sent as "t=<unix seconds>,v1=<hex>"; the timestamp lets a
// receiver refuse old replays.
const (
	SignatureHeader   = "Sealgate-Signature"
	IdempotencyHeader = "Idempotency-Key"
	EventTypeHeader   = "Sealgate-Event-Type"
)

// Sign returns the signature header value of body at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header against body: the MAC must match and
// the timestamp must be within tolerance of now. Receivers use it (and so
// do the tests).
func Verify(secret, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("notify: malformed signature header")
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return errors.New("notify: signature does not match")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("notify: signature timestamp outside tolerance")
	}
	return nil
}

// Config configures an Outbox.
type Config struct {
	// Store is the control store; entries live under "outbox/".
	Store    store.Bucket
	Webhooks []Webhook
	Logger   *slog.Logger
	// Client posts the events; nil means a client with a 10 s timeout that
	// follows no redirects.
	Client *http.Client
	// MinBackoff and MaxBackoff bound the wait between attempts (defaults
	// 1 s and 5 min); Lease is how long a delivery attempt holds an entry
	// (default 1 min); Poll is how often Run looks for due entries when
	// nothing wakes it (default 10 s).
	MinBackoff, MaxBackoff, Lease, Poll time.Duration
	// MaxAge is how long an event is retried (default 7 days): one older
	// is dropped with an error in the log (the audit log keeps the blocked
	// upload), so that a receiver gone for good leaves nothing behind.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Delivered, when set, is called after each successful delivery
	// (metrics).
	Delivered func(webhook string, attempts int)
}

// Outbox queues events durably and delivers them.
type Outbox struct {
	cfg Config
	// hooks are the webhooks, each with its own delivery loop, so that a
	// receiver that hangs holds back only its own events.
	hooks []*hook
}

// hook is one webhook's delivery state.
type hook struct {
	w    *Webhook
	wake chan struct{}
	mu   sync.Mutex // one pass at a time
}

// New returns an Outbox.
func New(cfg Config) *Outbox {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 10 * time.Second
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	o := &Outbox{cfg: cfg}
	for i := range o.cfg.Webhooks {
		o.hooks = append(o.hooks, &hook{w: &o.cfg.Webhooks[i], wake: make(chan struct{}, 1)})
	}
	return o
}

// prefix of the outbox entries in the control store.
const prefix = "outbox/"

// entry is one pending delivery of an event to a webhook.
type entry struct {
	Webhook  string    `json:"webhook"`
	Event    Event     `json:"event"`
	Attempts int       `json:"attempts"`
	Next     time.Time `json:"next"`
	// LeaseUntil: an attempt is under way until then.
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
}

func key(webhook, id string) string { return prefix + webhook + "/" + id + ".json" }

// maxEntry bounds an outbox object; Enqueue keeps an entry maxEntrySlack
// below it, for what attempts add (the lease, the count, the last error of
// at most maxLastError bytes).
const (
	maxEntry      = 64 << 10
	maxEntrySlack = 4 << 10
	maxLastError  = 1 << 10
)

// Enqueue stores ev for every webhook that wants it; when it returns nil
// the event will be delivered even if this process dies now. It returns
// how many webhooks will receive it.
func (o *Outbox) Enqueue(ctx context.Context, ev Event) (int, error) {
	if ev.ID == "" {
		ev.ID = NewID()
	}
	n := 0
	for _, h := range o.hooks {
		w := h.w
		if !w.wants(ev.Account) {
			continue
		}
		data, err := json.Marshal(entry{Webhook: w.Name, Event: ev, Next: o.cfg.Now()})
		if err == nil && len(data) > maxEntry-maxEntrySlack && len(ev.Labels) > 0 {
			// An entry too large to load would never be delivered nor
			// dropped: the labels (the only large part) go.
			ev.Labels, ev.LabelsDropped = nil, true
			data, err = json.Marshal(entry{Webhook: w.Name, Event: ev, Next: o.cfg.Now()})
		}
		if err == nil && len(data) > maxEntry-maxEntrySlack {
			err = fmt.Errorf("notify: event of %d bytes, at most %d", len(data), maxEntry-maxEntrySlack)
		}
		if err != nil {
			return n, err
		}
		if _, err := o.cfg.Store.Swap(ctx, key(w.Name, ev.ID), data, ""); err != nil && !errors.Is(err, store.ErrPrecondition) {
			return n, fmt.Errorf("notify: outbox: %w", err)
		}
		n++
		h.poke()
	}
	return n, nil
}

// Wake makes Run look for every webhook's due entries now.
func (o *Outbox) Wake() {
	for _, h := range o.hooks {
		h.poke()
	}
}

func (h *hook) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Run delivers entries until ctx ends: one loop per webhook, each looking
// for its due entries when woken, when the next one falls due, and every
// Poll; and once an hour it drops entries of webhooks no longer configured
// (dropOrphans).
func (o *Outbox) Run(ctx context.Context) {
	if len(o.hooks) == 0 {
		return // no webhooks: this gateway leaves the outbox alone
	}
	var wg sync.WaitGroup
	for _, h := range o.hooks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.runHook(ctx, h)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(orphanSweep)
		defer t.Stop()
		for {
			o.dropOrphans(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	wg.Wait()
}

// orphanSweep is how often Run looks for entries of unknown webhooks.
const orphanSweep = time.Hour

// dropOrphans drops the entries of webhooks that are not configured (one
// renamed or removed) once they are older than MaxAge, with an error in
// the log: no loop lists them, so they would stay for ever. Younger ones
// are left, for gateways that still have the webhook during a change.
func (o *Outbox) dropOrphans(ctx context.Context) {
	known := map[string]bool{}
	for _, h := range o.hooks {
		known[h.w.Name] = true
	}
	after := ""
	for ctx.Err() == nil {
		page, err := o.cfg.Store.List(ctx, prefix, after, 500)
		if err != nil {
			o.cfg.Logger.WarnContext(ctx, "notify: listing the outbox failed", "err", err)
			return
		}
		for _, obj := range page {
			name, _, _ := strings.Cut(strings.TrimPrefix(obj.Key, prefix), "/")
			if known[name] || o.cfg.Now().Sub(obj.ModTime) <= o.cfg.MaxAge {
				continue
			}
			o.cfg.Logger.ErrorContext(ctx, "notify: dropping a notification for a webhook no longer configured", "key", obj.Key, "webhook", name)
			_ = o.cfg.Store.Delete(ctx, obj.Key)
		}
		if len(page) < 500 {
			return
		}
		after = page[len(page)-1].Key
	}
}

func (o *Outbox) runHook(ctx context.Context, h *hook) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-t.C:
		}
		next := o.pass(ctx, h)
		wait := o.cfg.Poll
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(o.cfg.Now()), 10*time.Millisecond))
		}
		t.Reset(wait) // Go 1.23 timers: no stale tick survives Reset
	}
}

// DeliverDue attempts every webhook's due entries, the webhooks side by
// side, drops old entries of webhooks no longer configured, and returns
// when the next pending one falls due (zero when none is pending).
func (o *Outbox) DeliverDue(ctx context.Context) time.Time {
	nexts := make([]time.Time, len(o.hooks))
	var wg sync.WaitGroup
	for i, h := range o.hooks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nexts[i] = o.pass(ctx, h)
		}()
	}
	wg.Wait()
	o.dropOrphans(ctx)
	var next time.Time
	for _, due := range nexts {
		if !due.IsZero() && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	return next
}

// pass attempts h's due entries, one pass at a time per webhook.
func (o *Outbox) pass(ctx context.Context, h *hook) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return o.deliverTo(ctx, h.w)
}

// deliverTo attempts w's due entries and returns when its next pending
// one falls due.
func (o *Outbox) deliverTo(ctx context.Context, w *Webhook) time.Time {
	var next time.Time
	after := ""
	for ctx.Err() == nil {
		page, err := o.cfg.Store.List(ctx, prefix+w.Name+"/", after, 500)
		if err != nil {
			o.cfg.Logger.WarnContext(ctx, "notify: listing the outbox failed", "webhook", w.Name, "err", err)
			return o.cfg.Now().Add(o.cfg.MinBackoff)
		}
		for _, obj := range page {
			if obj.Size > maxEntry {
				// Written by an older version, which did not bound events:
				// it can never be loaded, so it would never leave.
				o.cfg.Logger.ErrorContext(ctx, "notify: dropping an outbox entry too large to load", "key", obj.Key, "size", obj.Size)
				_ = o.cfg.Store.Delete(ctx, obj.Key)
				continue
			}
			due := o.attempt(ctx, obj.Key, w)
			if !due.IsZero() && (next.IsZero() || due.Before(next)) {
				next = due
			}
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].Key
	}
	return next
}

// attempt delivers one entry if it is due and returns when it is due next
// (zero when it is done or gone).
func (o *Outbox) attempt(ctx context.Context, k string, w *Webhook) time.Time {
	data, version, err := o.cfg.Store.Load(ctx, k, maxEntry)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			o.cfg.Logger.WarnContext(ctx, "notify: reading an outbox entry failed", "key", k, "err", err)
			return o.cfg.Now().Add(o.cfg.MinBackoff)
		}
		return time.Time{}
	}
	var e entry
	if err := json.Unmarshal(data, &e); err != nil {
		o.cfg.Logger.ErrorContext(ctx, "notify: dropping an unreadable outbox entry", "key", k, "err", err)
		_ = o.cfg.Store.Delete(ctx, k)
		return time.Time{}
	}
	if e.Webhook != w.Name {
		return time.Time{} // not one of w's: left alone
	}
	if !w.wants(e.Event.Account) {
		// The webhook no longer serves the event's account (its
		// registration changed while the entry waited): posting it would
		// tell another receiver about this tenant's conversation.
		o.cfg.Logger.ErrorContext(ctx, "notify: dropping a notification for an account its webhook no longer serves", "webhook", w.Name,
			"event", e.Event.ID, "account", e.Event.Account)
		_ = o.cfg.Store.Delete(ctx, k)
		return time.Time{}
	}
	now := o.cfg.Now()
	if now.Sub(e.Event.OccurredAt) > o.cfg.MaxAge {
		o.cfg.Logger.ErrorContext(ctx, "notify: dropping a notification not delivered in time", "webhook", w.Name,
			"event", e.Event.ID, "type", e.Event.Type, "account", e.Event.Account, "attempts", e.Attempts, "last_error", e.LastError)
		_ = o.cfg.Store.Delete(ctx, k)
		return time.Time{}
	}
	if now.Before(e.Next) {
		return e.Next
	}
	if now.Before(e.LeaseUntil) {
		return e.LeaseUntil
	}
	e.LeaseUntil = now.Add(o.cfg.Lease)
	leased, _ := json.Marshal(e)
	version, err = o.cfg.Store.Swap(ctx, k, leased, version)
	if err != nil {
		// Another gateway took it, or the store is down: look again later.
		return now.Add(o.cfg.MinBackoff)
	}
	e.Attempts++
	err = o.post(ctx, w, e.Event)
	if err == nil {
		if derr := o.cfg.Store.Delete(ctx, k); derr != nil {
			o.cfg.Logger.WarnContext(ctx, "notify: removing a delivered entry failed; it may be sent again", "key", k, "err", derr)
		}
		o.cfg.Logger.InfoContext(ctx, "notification delivered", "webhook", w.Name, "event", e.Event.ID, "type", e.Event.Type, "attempts", e.Attempts)
		if o.cfg.Delivered != nil {
			o.cfg.Delivered(w.Name, e.Attempts)
		}
		return time.Time{}
	}
	e.LastError = lastError(err)
	e.LeaseUntil = time.Time{}
	e.Next = o.cfg.Now().Add(o.backoff(e.Attempts))
	retry, _ := json.Marshal(e)
	if _, err := o.cfg.Store.Swap(ctx, k, retry, version); err != nil {
		o.cfg.Logger.WarnContext(ctx, "notify: recording a failed attempt failed", "key", k, "err", err)
	}
	o.cfg.Logger.InfoContext(ctx, "notification not delivered; will retry", "webhook", w.Name, "event", e.Event.ID,
		"attempts", e.Attempts, "next", e.Next, "err", e.LastError)
	return e.Next
}

// lastError is err's message as kept in an entry: at most maxLastError
// bytes once in JSON, so only characters JSON writes as themselves (a
// receiver's status line of '<' would take six bytes each).
func lastError(err error) string {
	var b strings.Builder
	for _, r := range err.Error() {
		if b.Len() >= maxLastError {
			break
		}
		switch {
		case r < 0x20 || r > 0x7E || r == '<' || r == '>' || r == '&' || r == '"' || r == '\\':
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// backoff is the wait after the n-th failed attempt: MinBackoff doubled
// each time up to MaxBackoff, with up to 20% jitter so that gateways
// retrying together spread out.
func (o *Outbox) backoff(n int) time.Duration {
	d := o.cfg.MinBackoff
	for i := 1; i < n && d < o.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, o.cfg.MaxBackoff)
	return d - time.Duration(mrand.Int64N(int64(d)/5+1))
}

func (o *Outbox) post(ctx context.Context, w *Webhook, ev Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(w.Secret, body, o.cfg.Now()))
	req.Header.Set(IdempotencyHeader, ev.ID)
	req.Header.Set(EventTypeHeader, ev.Type)
	resp, err := o.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
