package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/gateway/limits"
	"github.com/sealgate/sealgate/gateway/notify"
	"github.com/sealgate/sealgate/gateway/policy"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// The personal values of the test transcripts.
var piiValues = []string{"415-555-0134", "4111 1111 1111 1111", "jane.doe@example.com", "123-45-6789", "DE89 3704 0044 0532 0130 00"}

const plainTranscript = "Agent: how can I help?\nCustomer: my number is 415-555-0134 and my card is 4111 1111 1111 1111.\n" +
	"Customer: email jane.doe@example.com, SSN 123-45-6789, IBAN DE89 3704 0044 0532 0130 00.\nAgent: order 4829338122 is on its way.\n"

func setPrivacy(t *testing.T, env *gatewaytest.Env, ctx context.Context, pp *sealgatev1.PrivacyPolicy) {
	t.Helper()
	if _, err := env.Accounts.UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
		Settings:   &sealgatev1.AccountSettings{Name: "accounts/demo/settings", PrivacyPolicy: pp},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"privacy_policy"}},
	}); err != nil {
		t.Fatal(err)
	}
}

func textHeader(t sealgatev1.ArtifactType, contentType string) *sealgatev1.UploadHeader {
	return &sealgatev1.UploadHeader{Type: t, SipZone: "us-west", ContentType: contentType, EngagementId: "eng-7", QueueId: "sales"}
}

// storedPlaintext returns what is stored for an artifact: a pii_viewer
// read, which nothing masks. (cmd/sealctl's TestPrivacyEndToEnd opens the
// object offline with sealctl decrypt.)
func storedPlaintext(t *testing.T, env *gatewaytest.Env, a *sealgatev1.Artifact) []byte {
	t.Helper()
	ctx := env.Ctx(t, "demo", auth.RoleReader, auth.RolePIIViewer)
	return mustRead(t, env, ctx, a.GetName())
}

func TestRedactionAtIngestReplacesValuesBeforeEncryption(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	setPrivacy(t, env, ctx, &sealgatev1.PrivacyPolicy{Redaction: &sealgatev1.Redaction{Enabled: true}})

	a := mustUpload(t, env, ctx, textHeader(sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT, "text/plain"), []byte(plainTranscript))
	got := string(storedPlaintext(t, env, a))
	want := "Agent: how can I help?\nCustomer: my number is [PHONE NUMBER] and my card is [CARD NUMBER].\n" +
		"Customer: email [EMAIL ADDRESS], SSN [NATIONAL ID], IBAN [BANK ACCOUNT].\nAgent: order 4829338122 is on its way.\n"
	if got != want {
		t.Fatalf("stored\n%q\nwant\n%q", got, want)
	}
	if a.GetSizeBytes() != int64(len(want)) {
		t.Errorf("artifact size %d, want the redacted size %d", a.GetSizeBytes(), len(want))
	}
	// Recordings are not text: they are stored as sent (and wait for
	// audio redaction).
	wav := toneWAV()
	h := callHeader("us-west")
	r := mustUpload(t, env, ctx, h, wav)
	if !bytes.Equal(storedPlaintext(t, env, r), wav) {
		t.Error("a recording was changed by text redaction")
	}
	// Only the chosen types.
	setPrivacy(t, env, ctx, &sealgatev1.PrivacyPolicy{Redaction: &sealgatev1.Redaction{Enabled: true,
		EntityTypes: []sealgatev1.EntityType{sealgatev1.EntityType_ENTITY_TYPE_PAYMENT_CARD}}})
	b := mustUpload(t, env, ctx, textHeader(sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE, "text/plain"), []byte(plainTranscript))
	if got := string(storedPlaintext(t, env, b)); !strings.Contains(got, "[CARD NUMBER]") || !strings.Contains(got, "415-555-0134") {
		t.Errorf("card-only redaction stored %q", got)
	}
}

func TestRedactionRefusesTextItCannotRedact(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	setPrivacy(t, env, ctx, &sealgatev1.PrivacyPolicy{Redaction: &sealgatev1.Redaction{Enabled: true}})
	_, err := env.Upload(ctx, textHeader(sealgatev1.ArtifactType_ARTIFACT_TYPE_EMAIL_MESSAGE, "application/pdf"), strings.NewReader(plainTranscript), 1024)
	wantStatus(t, "a PDF under redaction", err, codes.FailedPrecondition, "UNSUPPORTED_MEDIA_FOR_REDACTION")
	_, err = env.Upload(ctx, textHeader(sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT, "application/json"), strings.NewReader(`{"not":"transcribe"}`), 1024)
	wantStatus(t, "JSON that is not a Transcribe transcript", err, codes.FailedPrecondition, "UNSUPPORTED_MEDIA_FOR_REDACTION")
	if files := objectFiles(t, env.DataDir); len(files) != 0 {
		t.Fatalf("refused uploads left %v", files)
	}
}

func TestRedactedWebVTTAndTranscribeKeepTimings(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	setPrivacy(t, env, ctx, &sealgatev1.PrivacyPolicy{Redaction: &sealgatev1.Redaction{Enabled: true}})

	vtt := "WEBVTT\n\n1\n00:00:01.000 --> 00:00:04.000\nCustomer: my number is 415-555-0134\n\n2\n00:00:04.000 --> 00:00:06.500\nAgent: thanks\n"
	a := mustUpload(t, env, ctx, textHeader(sealgatev1.ArtifactType_ARTIFACT_TYPE_VIDEO_TRANSCRIPT, "text/vtt"), []byte(vtt))
	if got := string(storedPlaintext(t, env, a)); got != strings.Replace(vtt, "415-555-0134", "[PHONE NUMBER]", 1) {
		t.Fatalf("stored VTT %q", got)
	}

	doc := `{"jobName":"j","results":{"transcripts":[{"transcript":"call 415-555-0134 now"}],"items":[` +
		`{"start_time":"0.1","end_time":"0.4","alternatives":[{"confidence":"0.9","content":"call"}],"type":"pronunciation"},` +
		`{"start_time":"0.5","end_time":"1.9","alternatives":[{"confidence":"0.9","content":"415-555-0134"}],"type":"pronunciation"},` +
		`{"start_time":"2.0","end_time":"2.3","alternatives":[{"confidence":"0.9","content":"now"}],"type":"pronunciation"}]}}`
	b := mustUpload(t, env, ctx, textHeader(sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT, "application/json"), []byte(doc))
	var got struct {
		Results struct {
			Transcripts []struct{ Transcript string }
			Items       []struct {
				StartTime    string `json:"start_time"`
				EndTime      string `json:"end_time"`
				Alternatives []struct{ Content string }
			}
		}
	}
	if err := json.Unmarshal(storedPlaintext(t, env, b), &got); err != nil {
		t.Fatal(err)
	}
	r := got.Results
	if r.Transcripts[0].Transcript != "call [PHONE NUMBER] now" || len(r.Items) != 3 ||
		r.Items[1].Alternatives[0].Content != "[PHONE NUMBER]" || r.Items[1].StartTime != "0.5" || r.Items[1].EndTime != "1.9" ||
		r.Items[0].Alternatives[0].Content != "call" {
		t.Fatalf("stored transcript %+v", r)
	}
}

func TestMaskingOnReadByRoleAndUnmaskedReadsAreAudited(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	admin := env.Ctx(t, "demo")
	setPrivacy(t, env, admin, &sealgatev1.PrivacyPolicy{Masking: &sealgatev1.Masking{Enabled: true}})
	a := mustUpload(t, env, admin, textHeader(sealgatev1.ArtifactType_ARTIFACT_TYPE_MESSAGING_TRANSCRIPT, "text/plain"), []byte(plainTranscript))

	reader := gatewaytest.WithToken(context.Background(), env.TokenAs(t, "demo", "svc-reader", auth.RoleReader))
	viewer := gatewaytest.WithToken(context.Background(), env.TokenAs(t, "demo", "svc-viewer", auth.RoleReader, auth.RolePIIViewer))
	masked := string(mustRead(t, env, reader, a.GetName()))
	for _, v := range piiValues {
		if strings.Contains(masked, v) {
			t.Errorf("masked read shows %q", v)
		}
	}
	for _, want := range []string{"XXX-XXX-0134", "XXXX XXXX XXXX 1111", "jXXXXXXX@example.com", "XXX-XX-6789", "order 4829338122"} {
		if !strings.Contains(masked, want) {
			t.Errorf("masked read lacks %q:\n%s", want, masked)
		}
	}
	if unmasked := string(mustRead(t, env, viewer, a.GetName())); unmasked != plainTranscript {
		t.Fatalf("pii_viewer read %q, want the stored text", unmasked)
	}
	events := auditEvents(t, env)
	if _, ok := findEvent(events, func(e audit.Event) bool {
		return e.Kind == audit.KindRead && e.Actor == "svc-viewer" && e.PII == "unmasked" && e.Artifact == a.GetName()
	}); !ok {
		t.Error("no audit event for the unmasked read")
	}
	if _, ok := findEvent(events, func(e audit.Event) bool {
		return e.Kind == audit.KindRead && e.Actor == "svc-reader" && e.PII == "masked"
	}); !ok {
		t.Error("the masked read is not audited as masked")
	}

	// The masking character and the visible suffix are settings.
	keep := int32(2)
	setPrivacy(t, env, admin, &sealgatev1.PrivacyPolicy{Masking: &sealgatev1.Masking{Enabled: true, MaskingCharacter: "*", UnmaskedSuffixLength: &keep,
		EntityTypes: []sealgatev1.EntityType{sealgatev1.EntityType_ENTITY_TYPE_PAYMENT_CARD}}})
	b := mustUpload(t, env, admin, textHeader(sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE, "text/plain"), []byte(plainTranscript))
	got := string(mustRead(t, env, reader, b.GetName()))
	if !strings.Contains(got, "**** **** **** **11") || !strings.Contains(got, "415-555-0134") {
		t.Errorf("card-only masking with '*' and 2 kept: %q", got)
	}
}

// receiver is a webhook endpoint that records signed notifications.
type receiver struct {
	mu     sync.Mutex
	events []notify.Event
	bad    int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if notify.Verify([]byte(webhookSecret), body, req.Header.Get(notify.SignatureHeader), time.Now(), 5*time.Minute) != nil {
		r.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev notify.Event
	json.Unmarshal(body, &ev)
	r.events = append(r.events, ev)
}

func (r *receiver) got() ([]notify.Event, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Event(nil), r.events...), r.bad
}

const webhookSecret = "test-webhook-secret-0123456789"

func TestBlockedMessageIsNotStoredAndNotifiesOnce(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	t.Setenv("SEALGATE_TEST_WEBHOOK_SECRET", webhookSecret)
	env := gatewaytest.Start(t, func(c *config.Config) {
		c.Webhooks = []config.Webhook{{Name: "agents", URL: srv.URL, SecretEnv: "SEALGATE_TEST_WEBHOOK_SECRET"}}
	})
	admin := env.Ctx(t, "demo")
	setPrivacy(t, env, admin, &sealgatev1.PrivacyPolicy{BlockingRules: []*sealgatev1.BlockingRule{
		{Id: "no-cards", Pattern: `\b(?:\d[ -]?){13,19}\b`},
	}})
	h := textHeader(sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE, "text/plain")
	h.Labels = map[string]string{"sender": "+15550100", "agent": "agent-42"}
	secret := "my card is 4111 1111 1111 1111, thanks"
	// A long message whose card number straddles two 16 KiB chunks.
	pad := 5*16<<10 - 8 - len("my card is ")
	body := strings.Repeat("hello there, ", 20000)[:pad] + secret
	_, err := env.Upload(admin, h, strings.NewReader(body), 16<<10)
	st := wantStatus(t, "blocked SMS", err, codes.FailedPrecondition, "CONTENT_BLOCKED")
	if !strings.Contains(st.Message(), "no-cards") || strings.Contains(st.Message(), "4111") {
		t.Errorf("status message %q: want the rule id and never the text", st.Message())
	}
	if files := objectFiles(t, env.DataDir); len(files) != 0 {
		t.Fatalf("a blocked message was stored: %v", files)
	}
	filepath.WalkDir(filepath.Join(env.DataDir, "control", "records"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("a blocked message left a record: %s", p)
		}
		return nil
	})
	// Messages that do not match, and other types, go through.
	mustUpload(t, env, admin, h, []byte("call me at five"))
	mustUpload(t, env, admin, textHeader(sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT, "text/plain"), []byte(secret))

	env.Runtime.Outbox.DeliverDue(context.Background())
	env.Runtime.Outbox.DeliverDue(context.Background())
	events, bad := rcv.got()
	if len(events) != 1 || bad != 0 {
		t.Fatalf("receiver got %d notifications (%d badly signed), want 1", len(events), bad)
	}
	ev := events[0]
	if ev.Type != notify.TypeContentBlocked || ev.RuleID != "no-cards" || ev.EngagementID != "eng-7" || ev.Labels["agent"] != "agent-42" ||
		ev.Account != "demo" || ev.ArtifactType != "ARTIFACT_TYPE_SMS_MESSAGE" || ev.ID == "" {
		t.Errorf("notification %+v", ev)
	}
	raw, _ := json.Marshal(ev)
	if strings.Contains(string(raw), "4111") {
		t.Error("the notification carries the message text")
	}
	if e, ok := findEvent(auditEvents(t, env), func(e audit.Event) bool { return e.Kind == audit.KindBlocked }); !ok || e.Detail != "rule no-cards" {
		t.Errorf("audit of the block: %+v (found %v)", e, ok)
	}
	if strings.Contains(env.Log.String(), "4111") {
		t.Error("the log holds the blocked text")
	}
}

func TestBadBlockingRulesAreFieldViolations(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	for name, c := range map[string]struct {
		rule  *sealgatev1.BlockingRule
		field string
	}{
		"does not compile": {&sealgatev1.BlockingRule{Id: "bad", Pattern: `(unclosed`}, "privacy_policy.blocking_rules[0].pattern"},
		"too long":         {&sealgatev1.BlockingRule{Id: "long", Pattern: strings.Repeat("a", 600)}, "privacy_policy.blocking_rules[0].pattern"},
		"too large":        {&sealgatev1.BlockingRule{Id: "big", Pattern: `(?:a{1,1000}){1,1000}`}, "privacy_policy.blocking_rules[0].pattern"},
		"bad id":           {&sealgatev1.BlockingRule{Id: "Has Spaces", Pattern: `x`}, "privacy_policy.blocking_rules[0].id"},
		"not a text type": {&sealgatev1.BlockingRule{Id: "wav", Pattern: `x`, ArtifactTypes: []sealgatev1.ArtifactType{sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING}},
			"privacy_policy.blocking_rules[0].artifact_types[0]"},
	} {
		_, err := env.Accounts.UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
			Settings:   &sealgatev1.AccountSettings{Name: "accounts/demo/settings", PrivacyPolicy: &sealgatev1.PrivacyPolicy{BlockingRules: []*sealgatev1.BlockingRule{c.rule}}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"privacy_policy.blocking_rules"}},
		})
		st := wantStatus(t, name, err, codes.InvalidArgument, "")
		if fv := fieldViolations(st); len(fv) == 0 || fv[0].GetField() != c.field {
			t.Errorf("%s: violations %v, want field %s", name, fv, c.field)
		}
		// TestBlockingRule checks the rule the same way, before saving.
		_, err = env.Accounts.TestBlockingRule(ctx, &sealgatev1.TestBlockingRuleRequest{Name: "accounts/demo/settings", Rule: c.rule, Sample: "x"})
		st = wantStatus(t, name+" (test)", err, codes.InvalidArgument, "")
		if fv := fieldViolations(st); len(fv) == 0 || fv[0].GetField() != strings.Replace(c.field, "privacy_policy.blocking_rules[0]", "rule", 1) {
			t.Errorf("%s (test): violations %v", name, fv)
		}
	}
	resp, err := env.Accounts.TestBlockingRule(ctx, &sealgatev1.TestBlockingRuleRequest{Name: "accounts/demo/settings",
		Rule: &sealgatev1.BlockingRule{Id: "cards", Pattern: `\b4\d{3}[ -]?\d{4}`}, Sample: "card 4111 1111 1111 1111"})
	if err != nil || !resp.GetMatched() {
		t.Fatalf("TestBlockingRule on a matching sample: %v, %v", resp, err)
	}
	resp, err = env.Accounts.TestBlockingRule(ctx, &sealgatev1.TestBlockingRuleRequest{Name: "accounts/demo/settings",
		Rule: &sealgatev1.BlockingRule{Id: "cards", Pattern: `\b4\d{3}[ -]?\d{4}`}, Sample: "no card here"})
	if err != nil || resp.GetMatched() {
		t.Fatalf("TestBlockingRule on another sample: %v, %v", resp, err)
	}
	_, err = env.Accounts.TestBlockingRule(ctx, &sealgatev1.TestBlockingRuleRequest{Name: "accounts/demo/settings",
		Rule: &sealgatev1.BlockingRule{Id: "x", Pattern: "x"}, Sample: strings.Repeat("x", 65<<10)})
	wantStatus(t, "a sample over 64 KiB", err, codes.InvalidArgument, "")
	reader := gatewaytest.WithToken(context.Background(), env.Token(t, "demo", auth.RoleReader))
	_, err = env.Accounts.TestBlockingRule(reader, &sealgatev1.TestBlockingRuleRequest{Name: "accounts/demo/settings",
		Rule: &sealgatev1.BlockingRule{Id: "x", Pattern: "x"}, Sample: "x"})
	wantStatus(t, "a reader testing rules", err, codes.PermissionDenied, "")
}

// A Transcribe transcript is parsed whole to redact or mask it, which
// takes many times its size in memory: uploads and reads that do so
// reserve it from the stream memory budget first (review: a 16 MiB
// transcript held 280 MiB against a 4.8 MiB reservation), sized by the
// declared or stored size, or by the largest transcript when the size is
// not declared.
func TestTranscriptParsesReserveTheirMemory(t *testing.T) {
	env := gatewaytest.Start(t, func(c *config.Config) {
		c.Limits = limits.Config{StreamMemory: 40 << 20, AccountMemory: 40 << 20}
	})
	ctx := env.Ctx(t, "demo", auth.RoleUploader, auth.RoleReader, auth.RoleAdmin)
	viewer := env.Ctx(t, "demo", auth.RoleReader, auth.RolePIIViewer)
	setPrivacy(t, env, ctx, &sealgatev1.PrivacyPolicy{Masking: &sealgatev1.Masking{Enabled: true}})
	doc := `{"results":{"transcripts":[{"transcript":"call 415-555-0134"}],"items":[` +
		`{"start_time":"0.1","end_time":"0.4","alternatives":[{"content":"call"}],"type":"pronunciation"},` +
		`{"start_time":"0.5","end_time":"1.9","alternatives":[{"content":"415-555-0134"}],"type":"pronunciation"}]}}`
	jsonHeader := func(size int64) *sealgatev1.UploadHeader {
		h := textHeader(sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT, "application/json")
		if size >= 0 {
			h.SizeBytes = &size
		}
		return h
	}
	small := mustUpload(t, env, ctx, jsonHeader(-1), []byte(doc))
	big := mustUpload(t, env, ctx, jsonHeader(-1), append([]byte(doc), bytes.Repeat([]byte(" "), 2<<20)...))

	// Masked reads: 28 times 2 MiB does not fit in 40 MiB; a pii_viewer's
	// read, which parses nothing, does, and so does a small masked one.
	var sink bytes.Buffer
	_, err := env.Read(ctx, big.GetName(), &sink)
	wantStatus(t, "masked read of a 2 MiB transcript", err, codes.ResourceExhausted, "QUOTA_EXCEEDED")
	if d := retryDelay(err); d != 0 {
		t.Errorf("a reservation larger than the whole share says to retry in %v; retrying cannot help", d)
	}
	if got := mustRead(t, env, viewer, big.GetName()); len(got) != len(doc)+2<<20 {
		t.Fatalf("pii_viewer read %d bytes", len(got))
	}
	if got := string(mustRead(t, env, ctx, small.GetName())); strings.Contains(got, "415-555-0134") {
		t.Fatalf("masked read of the small transcript shows the number: %s", got)
	}

	// Redacted uploads: refused before any content when the declared size
	// does not fit; one of undeclared size reserves the largest
	// transcript's bytes at once, and the parse once all of them are there.
	setPrivacy(t, env, ctx, &sealgatev1.PrivacyPolicy{Redaction: &sealgatev1.Redaction{Enabled: true}})
	body := append([]byte(doc), bytes.Repeat([]byte(" "), 2<<20)...)
	_, err = env.Upload(ctx, jsonHeader(int64(len(body))), bytes.NewReader(body), 64<<10)
	wantStatus(t, "redacted upload of a declared 2 MiB transcript", err, codes.ResourceExhausted, "QUOTA_EXCEEDED")
	_, err = env.Upload(ctx, jsonHeader(-1), bytes.NewReader(body), 64<<10)
	wantStatus(t, "redacted upload of a 2 MiB transcript of undeclared size", err, codes.ResourceExhausted, "QUOTA_EXCEEDED")
	for _, size := range []int64{int64(len(doc)), -1} {
		a, err := env.Upload(ctx, jsonHeader(size), strings.NewReader(doc), 64<<10)
		if err != nil {
			t.Fatalf("redacted upload of a small transcript (declared %d): %v", size, err)
		}
		if got := string(storedPlaintext(t, env, a)); strings.Contains(got, "415-555-0134") {
			t.Fatalf("stored transcript keeps the number: %s", got)
		}
	}
	// Everything reserved was given back.
	sms := textHeader(sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE, "text/plain")
	if _, err := env.Upload(ctx, sms, bytes.NewReader(bytes.Repeat([]byte("a"), 1<<20)), 64<<10); err != nil {
		t.Fatalf("an upload after the refusals: %v", err)
	}
}

// Matching an admin's blocking rules costs up to about 6 ms per MiB for
// each instruction of their programs (review: 50 rules of (?s).{1000}Z
// took 9.5 s for a 32 KiB SMS). The rules of an account together compile
// to at most MaxRuleInsts instructions, and the time spent matching them
// is charged to the account, whose uploads wait once over its share
// while other accounts' do not.
func TestBlockingRulesAreBoundedInSizeAndTime(t *testing.T) {
	env := gatewaytest.Start(t, func(c *config.Config) {
		// A share so small that any window's match puts the account
		// seconds in debt.
		c.Limits = limits.Config{ScanShare: 1e-6, ScanBurst: time.Microsecond}
	})
	createAccount(t, env, "globex", "us")
	admin := env.Ctx(t, "demo", auth.RoleAdmin)
	var review []*sealgatev1.BlockingRule
	for i := range 50 {
		review = append(review, &sealgatev1.BlockingRule{Id: fmt.Sprintf("r%d", i), Pattern: fmt.Sprintf(`(?s).{1000}Z%d`, i)})
	}
	_, err := env.Accounts.UpdateAccountSettings(admin, &sealgatev1.UpdateAccountSettingsRequest{
		Settings:   &sealgatev1.AccountSettings{Name: "accounts/demo/settings", PrivacyPolicy: &sealgatev1.PrivacyPolicy{BlockingRules: review}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"privacy_policy.blocking_rules"}},
	})
	st := wantStatus(t, "50 rules of 1003 instructions", err, codes.InvalidArgument, "INVALID_ARGUMENT")
	if fv := fieldViolations(st); len(fv) != 1 || fv[0].GetField() != "privacy_policy.blocking_rules[2].pattern" {
		t.Errorf("violations %v, want one on the rule that passes %d instructions", fv, policy.MaxRuleInsts)
	}
	// Two of them fit.
	setPrivacy(t, env, admin, &sealgatev1.PrivacyPolicy{BlockingRules: review[:2]})
	// Cheap rules, so that only the share makes uploads wait.
	rules := []*sealgatev1.BlockingRule{{Id: "secret", Pattern: `(?i)secret`}}
	setPrivacy(t, env, admin, &sealgatev1.PrivacyPolicy{BlockingRules: rules})
	if _, err := env.Accounts.UpdateAccountSettings(env.Ctx(t, "globex", auth.RoleAdmin), &sealgatev1.UpdateAccountSettingsRequest{
		Settings:   &sealgatev1.AccountSettings{Name: "accounts/globex/settings", PrivacyPolicy: &sealgatev1.PrivacyPolicy{BlockingRules: rules}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"privacy_policy.blocking_rules"}},
	}); err != nil {
		t.Fatal(err)
	}

	sms := textHeader(sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE, "text/plain")
	// Demo's 256 KiB message, sent as one chunk, is matched in five
	// windows: after the first, each waits about a second for demo's share.
	ctx, cancel := context.WithTimeout(env.Ctx(t, "demo"), 1500*time.Millisecond)
	defer cancel()
	_, err = env.Upload(ctx, sms, strings.NewReader(strings.Repeat("a", 256<<10)), 256<<10)
	wantStatus(t, "an upload over its account's scan share", err, codes.DeadlineExceeded, "")
	// Globex's own short message is matched at once meanwhile.
	gctx, gcancel := context.WithTimeout(env.Ctx(t, "globex"), 1500*time.Millisecond)
	defer gcancel()
	if _, err := env.Upload(gctx, sms, strings.NewReader("a short message"), 64<<10); err != nil {
		t.Fatalf("another account's upload: %v", err)
	}
}
