package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/limits"
	"github.com/sealgate/sealgate/gateway/notify"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/gateway/privacy/detect"
	"github.com/sealgate/sealgate/gateway/privacy/redact"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// Reasons of the privacy controls.
const (
	ReasonUnsupportedMedia = "UNSUPPORTED_MEDIA_FOR_REDACTION" // FAILED_PRECONDITION
)

// detectTypes maps API entity types to detector types (all when empty).
func detectTypes(ts []sealgatev1.EntityType) []detect.Type {
	var out []detect.Type
	for _, t := range ts {
		switch t {
		case sealgatev1.EntityType_ENTITY_TYPE_PHONE_NUMBER:
			out = append(out, detect.Phone)
		case sealgatev1.EntityType_ENTITY_TYPE_PAYMENT_CARD:
			out = append(out, detect.Card)
		case sealgatev1.EntityType_ENTITY_TYPE_EMAIL_ADDRESS:
			out = append(out, detect.Email)
		case sealgatev1.EntityType_ENTITY_TYPE_NATIONAL_ID:
			out = append(out, detect.NationalID)
		case sealgatev1.EntityType_ENTITY_TYPE_BANK_ACCOUNT:
			out = append(out, detect.BankAccount)
		case sealgatev1.EntityType_ENTITY_TYPE_PERSON_NAME:
			out = append(out, detect.PersonName)
		}
	}
	return out
}

// redaction returns how an upload of type t and content type ct is
// redacted under settings: nil when redaction is off or t is not text. It
// returns FAILED_PRECONDITION / UNSUPPORTED_MEDIA_FOR_REDACTION for text in
// a format it cannot redact.
func redaction(s *sealgatev1.AccountSettings, t sealgatev1.ArtifactType, ct string) (*textTransform, error) {
	r := s.GetPrivacyPolicy().GetRedaction()
	if !r.GetEnabled() || !policy.TextTypes[t] {
		return nil, nil
	}
	f, ok := redact.FormatOf(ct)
	if !ok {
		return nil, newStatus(codes.FailedPrecondition,
			"this account redacts transcripts and messages, and content type "+echo(ct)+" cannot be redacted (text/plain, text/vtt, application/json)",
			ReasonUnsupportedMedia, nil)
	}
	return &textTransform{format: f, detector: detect.New(detectTypes(r.GetEntityTypes())...), repl: redact.Placeholders}, nil
}

// masking returns how a read of type t and content type ct is masked for a
// principal without pii_viewer: nil when masking is off or does not apply.
func masking(s *sealgatev1.AccountSettings, t sealgatev1.ArtifactType, ct string) *textTransform {
	m := s.GetPrivacyPolicy().GetMasking()
	if !m.GetEnabled() || !policy.TextTypes[t] {
		return nil
	}
	f, ok := redact.FormatOf(ct)
	if !ok {
		f = redact.PlainText
	}
	cfg := redact.MaskConfig{Keep: 4}
	if c := m.GetMaskingCharacter(); c != "" {
		cfg.Char, _ = utf8.DecodeRuneInString(c)
	}
	if m.UnmaskedSuffixLength != nil {
		cfg.Keep = int(m.GetUnmaskedSuffixLength())
	}
	return &textTransform{format: f, detector: detect.New(detectTypes(m.GetEntityTypes())...), repl: redact.Mask(cfg)}
}

// textTransform rewrites text as it streams: redaction or masking.
type textTransform struct {
	format   redact.Format
	detector *detect.Detector
	repl     redact.Replacer
	result   redact.Result
}

// memory is what the transform holds beyond a stream's own buffers, for
// content of n bytes, reserved when the stream starts: nothing for the
// text formats, which it rewrites a window at a time; for a Transcribe
// transcript, which is parsed whole, the parse's memory when its size is
// known, or else the largest transcript's bytes (its writer reserves the
// parse's memory once it has them all: see redact.SetReserve).
func (x *textTransform) memory(n int64) int64 {
	switch {
	case x == nil || x.format != redact.TranscribeJSON:
		return 0
	case n < 0:
		return redact.MaxJSON
	}
	return redact.JSONMemory(n)
}

func (x *textTransform) writer(dst io.Writer) io.WriteCloser {
	return redact.NewWriter(dst, x.format, x.detector, x.repl, &x.result)
}

// reader returns a reader of src's bytes, transformed, holding at most a
// window of text at a time.
func (x *textTransform) reader(src io.Reader) io.Reader {
	r := &transformReader{src: src, chunk: make([]byte, 64<<10)}
	r.w = x.writer(&r.out)
	return r
}

type transformReader struct {
	src   io.Reader
	w     io.WriteCloser
	out   bytes.Buffer
	chunk []byte
	done  bool
	err   error
}

func (r *transformReader) Read(p []byte) (int, error) {
	for r.out.Len() == 0 && !r.done {
		n, err := r.src.Read(r.chunk)
		if n > 0 {
			if _, werr := r.w.Write(r.chunk[:n]); werr != nil {
				return 0, werr
			}
		}
		if err == io.EOF {
			r.done = true
			if cerr := r.w.Close(); cerr != nil {
				return 0, cerr
			}
		} else if err != nil {
			return 0, err
		}
	}
	if r.out.Len() == 0 {
		return 0, io.EOF
	}
	return r.out.Read(p)
}

// blockRule is a compiled blocking rule.
type blockRule struct {
	id    string
	re    *regexp.Regexp
	insts int // the size of its program: its worst cost per byte
	types []sealgatev1.ArtifactType
}

// ruleCache compiles an account's blocking rules once per settings
// version.
type ruleCache struct {
	mu      sync.Mutex
	entries map[string]cachedRules
}

type cachedRules struct {
	etag  string
	rules []blockRule
}

// blockRules returns the rules of s that apply to type t.
func (g *Gateway) blockRules(account string, s *sealgatev1.AccountSettings, t sealgatev1.ArtifactType) []blockRule {
	pp := s.GetPrivacyPolicy()
	if len(pp.GetBlockingRules()) == 0 || !policy.TextTypes[t] {
		return nil
	}
	g.rules.mu.Lock()
	c, ok := g.rules.entries[account]
	g.rules.mu.Unlock()
	if !ok || c.etag != s.GetEtag() || s.GetEtag() == "" {
		c = cachedRules{etag: s.GetEtag()}
		for _, r := range pp.GetBlockingRules() {
			re, insts, vs := policy.CompileRule("rule", r)
			if re == nil || len(vs) > 0 {
				continue // settings are validated when written; skip what no longer compiles
			}
			types := r.GetArtifactTypes()
			if len(types) == 0 {
				types = policy.DefaultBlockedTypes
			}
			c.rules = append(c.rules, blockRule{id: r.GetId(), re: re, insts: insts, types: types})
		}
		g.rules.mu.Lock()
		if g.rules.entries == nil || len(g.rules.entries) > 10000 {
			g.rules.entries = map[string]cachedRules{}
		}
		g.rules.entries[account] = c
		g.rules.mu.Unlock()
	}
	var out []blockRule
	for _, r := range c.rules {
		if slices.Contains(r.types, t) {
			out = append(out, r)
		}
	}
	return out
}

// errBlocked is an upload refused by a blocking rule.
type errBlocked struct{ rule string }

func (e *errBlocked) Error() string { return "gateway: content blocked by rule " + e.rule }

func blockedStatus(rule string) error {
	return newStatus(codes.FailedPrecondition, fmt.Sprintf("the content matches blocking rule %q and was not stored", rule),
		ReasonContentBlocked, map[string]string{"rule_id": rule})
}

// blockOverlap is how much text a blocking scan keeps from one write to the
// next, so a match across chunk boundaries is seen.
const blockOverlap = 4 << 10

// blockWriter passes content through to dst and fails with *errBlocked as
// soon as a rule matches what it has seen.
type blockWriter struct {
	ctx   context.Context
	dst   io.Writer
	rules []blockRule
	insts int // the rules' programs together: their cost per byte
	tail  []byte
	// Matches run within account's scan share.
	limits  *limits.Limiter
	account string
}

func newBlockWriter(ctx context.Context, dst io.Writer, rules []blockRule, l *limits.Limiter, account string) *blockWriter {
	b := &blockWriter{ctx: ctx, dst: dst, rules: rules, limits: l, account: account}
	for _, r := range rules {
		b.insts += r.insts
	}
	return b
}

// blockWindow is how much text one match covers at most: a chunk (up to
// 4 MiB) is matched a window at a time, so that each match's cost is
// reserved from the account's scan share before it runs, in steps of at
// most a window times the rules' size (about 0.8 s at MaxRuleInsts).
const blockWindow = 64 << 10

func (b *blockWriter) Write(p []byte) (int, error) {
	scan := append(b.tail, p...)
	// Windows overlap by blockOverlap, as chunks do, so a match that fits
	// in blockOverlap is found wherever it falls.
	for start := 0; ; start += blockWindow - blockOverlap {
		end := min(start+blockWindow, len(scan))
		window, hit := scan[start:end], ""
		err := b.limits.Scan(b.ctx, b.account, limits.ScanCost(len(window), b.insts), func() {
			for _, r := range b.rules {
				if r.re.Match(window) {
					hit = r.id
					return
				}
			}
		})
		if err != nil {
			return 0, err
		}
		if hit != "" {
			return 0, &errBlocked{rule: hit}
		}
		if end == len(scan) {
			break
		}
	}
	if len(scan) > blockOverlap {
		scan = scan[len(scan)-blockOverlap:]
	}
	b.tail = append(b.tail[:0], scan...)
	return b.dst.Write(p)
}

// refuseBlocked ends an upload that matched a blocking rule: nothing was
// stored (the caller removed what was staged). It records the audit event
// and queues the notification for the sender's and agent's side before it
// answers, so a crash after the answer still delivers it.
func (g *Gateway) refuseBlocked(ctx context.Context, p *auth.Principal, plan *uploadPlan, rule string) error {
	st := blockedStatus(rule)
	h := plan.header
	ev := notify.Event{ID: notify.NewID(), Type: notify.TypeContentBlocked, Account: p.Account, OccurredAt: g.now().UTC(),
		RuleID: rule, ArtifactType: h.GetType().String(), EngagementID: h.GetEngagementId(), QueueID: h.GetQueueId(),
		SIPZone: h.GetSipZone(), Uploader: p.Subject, Labels: h.GetLabels()}
	detail := "rule " + rule
	if g.cfg.Notifier != nil {
		// The client may be gone; the notification must still be queued.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := g.cfg.Notifier.Enqueue(qctx, ev); err != nil {
			g.log.ErrorContext(ctx, "a blocked upload's notification could not be queued", "event", ev.ID, "rule", rule, "err", err)
			detail += "; notification not queued"
		}
	}
	e := audit.Event{Kind: audit.KindBlocked, Account: p.Account, Actor: p.Subject, Outcome: audit.OutcomeDenied, Detail: detail}
	g.audit.Record(e)
	g.log.InfoContext(ctx, "upload blocked", "rule", rule, "event", ev.ID, "type", h.GetType().String())
	return st
}

// redactionError maps what the redactor refuses (JSON that is no
// Transcribe transcript, one too large) to FAILED_PRECONDITION /
// UNSUPPORTED_MEDIA_FOR_REDACTION; other errors pass through.
func redactionError(err error) error {
	if errors.Is(err, redact.ErrNotTranscript) || errors.Is(err, redact.ErrTooLarge) {
		return newStatus(codes.FailedPrecondition, "this account redacts transcripts and messages, and "+err.Error(),
			ReasonUnsupportedMedia, nil)
	}
	return err
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
