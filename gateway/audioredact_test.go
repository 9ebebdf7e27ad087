package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

const wavRate = 8000

// toneWAV is 7 s of a 16-bit mono 8 kHz tone, with an odd-sized LIST chunk
// before the data and another after it.
func toneWAV() []byte {
	var data []byte
	for i := range 7 * wavRate {
		data = binary.LittleEndian.AppendUint16(data, uint16(int16(20000*math.Sin(2*math.Pi*440*float64(i)/wavRate))))
	}
	chunk := func(id string, p []byte) []byte {
		b := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(p)))...)
		b = append(b, p...)
		if len(p)%2 == 1 {
			b = append(b, 0)
		}
		return b
	}
	fmtc := []byte{1, 0, 1, 0}
	fmtc = binary.LittleEndian.AppendUint32(fmtc, wavRate)
	fmtc = binary.LittleEndian.AppendUint32(fmtc, wavRate*2)
	fmtc = append(fmtc, 2, 0, 16, 0)
	body := append([]byte("WAVE"), chunk("LIST", []byte("INFOISFT\x05\x00\x00\x00test\x00"))...)
	body = append(body, chunk("fmt ", fmtc)...)
	body = append(body, chunk("data", data)...)
	body = append(body, chunk("LIST", []byte("INFOICMT\x04\x00\x00\x00abc\x00"))...)
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

// cardTranscript is an AWS Transcribe transcript whose words spell a card
// number between 2.0 s and 5.5 s.
func cardTranscript() []byte {
	var items []string
	item := func(start, end float64, word string) {
		items = append(items, fmt.Sprintf(`{"start_time":"%.3f","end_time":"%.3f","alternatives":[{"confidence":"0.99","content":%q}],"type":"pronunciation"}`, start, end, word))
	}
	item(0.5, 0.9, "my")
	item(0.9, 1.3, "card")
	item(1.3, 1.6, "is")
	digits := strings.Fields("four one one one one one one one one one one one one one one one")
	step := 3.5 / float64(len(digits))
	for i, d := range digits {
		item(2.0+float64(i)*step, 2.0+float64(i+1)*step, d)
	}
	item(6.0, 6.5, "thanks")
	text := "my card is " + strings.Join(digits, " ") + " thanks"
	return []byte(`{"jobName":"call","results":{"transcripts":[{"transcript":"` + text + `"}],"items":[` + strings.Join(items, ",") + `]}}`)
}

func recordingHeader(engagement string) *sealgatev1.UploadHeader {
	return &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west",
		ContentType: "audio/wav", EngagementId: engagement}
}

func transcriptHeader(engagement string) *sealgatev1.UploadHeader {
	return &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT, SipZone: "us-west",
		ContentType: "application/json", EngagementId: engagement}
}

type audioEnv struct {
	*gatewaytest.Env
	admin, reader, viewer context.Context
}

func startAudio(t *testing.T) *audioEnv {
	t.Helper()
	env := gatewaytest.Start(t, nil)
	e := &audioEnv{Env: env, admin: env.Ctx(t, "demo"),
		reader: gatewaytest.WithToken(context.Background(), env.TokenAs(t, "demo", "svc-reader", auth.RoleReader)),
		viewer: gatewaytest.WithToken(context.Background(), env.TokenAs(t, "demo", "svc-viewer", auth.RoleReader, auth.RolePIIViewer))}
	setPrivacy(t, env, e.admin, &sealgatev1.PrivacyPolicy{Redaction: &sealgatev1.Redaction{Enabled: true}})
	return e
}

func (e *audioEnv) move(t *testing.T) {
	t.Helper()
	if _, err := e.Runtime.Mover.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (e *audioEnv) redact(t *testing.T) gateway.RedactResult {
	t.Helper()
	r, err := e.Runtime.Gateway.RedactPass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkSilenced holds a read-back recording to the promise: every sample
// frame overlapping 1.9-5.6 s (2.0-5.5 s widened by 100 ms) is silent, and
// every other byte equals the original.
func checkSilenced(t *testing.T, orig, got []byte) {
	t.Helper()
	if len(got) != len(orig) {
		t.Fatalf("%d bytes became %d", len(orig), len(got))
	}
	off := bytes.Index(orig, []byte("data")) + 8
	size := int(binary.LittleEndian.Uint32(orig[off-4:]))
	first, last := 19*wavRate/10, 56*wavRate/10 // frames [first, last)
	for i := range orig {
		frame := (i - off) / 2
		if i >= off && i < off+size && frame >= first && frame < last {
			if got[i] != 0 {
				t.Fatalf("byte %d (%.3f s) is not silent", i, float64(frame)/wavRate)
			}
		} else if got[i] != orig[i] {
			t.Fatalf("byte %d (outside the span) changed", i)
		}
	}
}

func TestRecordingBeforeTranscriptIsPendingThenSilenced(t *testing.T) {
	e := startAudio(t)
	wav := toneWAV()
	a := mustUpload(t, e.Env, e.admin, recordingHeader("eng-1"), wav)
	if a.GetRedactionState() != sealgatev1.Artifact_REDACTION_STATE_PENDING {
		t.Fatalf("uploaded recording state %v, want PENDING", a.GetRedactionState())
	}
	_, err := e.Read(e.reader, a.GetName(), io.Discard)
	wantStatus(t, "a reader before redaction", err, codes.FailedPrecondition, "REDACTION_PENDING")
	if got := mustRead(t, e.Env, e.viewer, a.GetName()); !bytes.Equal(got, wav) {
		t.Fatal("a pii_viewer does not read the original before redaction")
	}
	e.move(t)
	stored := readFile(t, filepath.Join(e.DataDir, "regions", "us", layout.StoredKey("demo", strings.TrimPrefix(a.GetName(), "accounts/demo/artifacts/"))))
	if r := e.redact(t); r.Waiting != 1 || r.Redacted != 0 {
		t.Fatalf("pass without a transcript: %+v", r)
	}
	// Another engagement's transcript changes nothing.
	mustUpload(t, e.Env, e.admin, transcriptHeader("eng-other"), cardTranscript())
	if r := e.redact(t); r.Waiting != 1 {
		t.Fatalf("pass with another engagement's transcript: %+v", r)
	}
	mustUpload(t, e.Env, e.admin, transcriptHeader("eng-1"), cardTranscript())
	if r := e.redact(t); r.Redacted != 1 {
		t.Fatalf("pass with the transcript: %+v", r)
	}
	checkSilenced(t, wav, mustRead(t, e.Env, e.reader, a.GetName()))
	checkSilenced(t, wav, mustRead(t, e.Env, e.viewer, a.GetName()))
	got, err := e.Artifacts.GetArtifact(e.admin, &sealgatev1.GetArtifactRequest{Name: a.GetName()})
	if err != nil || got.GetRedactionState() != sealgatev1.Artifact_REDACTION_STATE_REDACTED || got.GetSizeBytes() != int64(len(wav)) {
		t.Fatalf("after redaction: %v, %v", got, err)
	}
	// The original object, kept as a backup would keep it, cannot be
	// decrypted with every key at hand: its external share is destroyed.
	assertShredded(t, e.Env, a.GetName(), stored)
	if ev, ok := findEvent(auditEvents(t, e.Env), func(ev audit.Event) bool { return ev.Kind == audit.KindRedacted }); !ok ||
		ev.Detail != "silenced 1 spans, 3.700 s" || ev.Artifact != a.GetName() {
		t.Errorf("audit of the redaction: %+v (found %v)", ev, ok)
	}
	if r := e.redact(t); r.Redacted+r.Waiting+r.Failed != 0 {
		t.Errorf("a redacted recording stays in the index: %+v", r)
	}
}

// assertShredded opens a copy of an artifact's original object with the
// gateway's keys and the artifact's current record: it must fail because
// the original's share is gone.
func assertShredded(t *testing.T, env *gatewaytest.Env, name string, object []byte) {
	t.Helper()
	ref, _ := layout.ParseArtifactName(name)
	rec, _, err := env.Runtime.Lifecycle.Load(context.Background(), ref)
	if err != nil || rec == nil {
		t.Fatalf("record: %v, %v", rec, err)
	}
	br := bytes.NewReader(object)
	h, err := keys.ReadHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := h.Open(context.Background(), br, lifecycle.Opener{Record: rec, Next: env.Runtime.Keys})
	if err == nil {
		_, err = io.ReadAll(plain)
	}
	if !errors.Is(err, lifecycle.ErrShredded) {
		t.Fatalf("the original still opens (err %v)", err)
	}
}

func TestTranscriptBeforeRecording(t *testing.T) {
	e := startAudio(t)
	mustUpload(t, e.Env, e.admin, transcriptHeader("eng-2"), cardTranscript())
	wav := toneWAV()
	a := mustUpload(t, e.Env, e.admin, recordingHeader("eng-2"), wav)
	// Staged: the redactor waits for the mover.
	if r := e.redact(t); r.Waiting != 1 {
		t.Fatalf("pass before the move: %+v", r)
	}
	e.move(t)
	if r := e.redact(t); r.Redacted != 1 {
		t.Fatalf("pass after the move: %+v", r)
	}
	checkSilenced(t, wav, mustRead(t, e.Env, e.reader, a.GetName()))
}

// A WebVTT transcript silences whole cues.
func TestWebVTTTranscriptSilencesItsCues(t *testing.T) {
	e := startAudio(t)
	vtt := "WEBVTT\n\n1\n00:00:00.500 --> 00:00:01.900\nAgent: your card number please\n\n" +
		"2\n00:00:02.000 --> 00:00:05.500\nCustomer: four one one one one one one one one one one one one one one one\n\n" +
		"3\n00:00:06.000 --> 00:00:06.500\nAgent: thanks\n"
	h := transcriptHeader("eng-3")
	h.ContentType = "text/vtt"
	mustUpload(t, e.Env, e.admin, h, []byte(vtt))
	wav := toneWAV()
	a := mustUpload(t, e.Env, e.admin, recordingHeader("eng-3"), wav)
	e.move(t)
	if r := e.redact(t); r.Redacted != 1 {
		t.Fatalf("pass: %+v", r)
	}
	checkSilenced(t, wav, mustRead(t, e.Env, e.reader, a.GetName()))
}

func TestRecordingsThatCannotBeSilencedAreRefused(t *testing.T) {
	e := startAudio(t)
	for name, c := range map[string]struct {
		h      *sealgatev1.UploadHeader
		body   []byte
		code   codes.Code
		reason string
	}{
		"mp3": {&sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west", ContentType: "audio/mpeg", EngagementId: "e"},
			[]byte("ID3\x03"), codes.FailedPrecondition, "UNSUPPORTED_MEDIA_FOR_REDACTION"},
		"video": {&sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_VIDEO_RECORDING, SipZone: "us-west", ContentType: "video/mp4", EngagementId: "e"},
			[]byte("....ftyp"), codes.FailedPrecondition, "UNSUPPORTED_MEDIA_FOR_REDACTION"},
		"not a wav": {recordingHeader("e"), bytes.Repeat([]byte("OggS"), 40000), codes.FailedPrecondition, "UNSUPPORTED_MEDIA_FOR_REDACTION"},
		"adpcm wav": {recordingHeader("e"), func() []byte {
			w := toneWAV()
			i := bytes.Index(w, []byte("fmt ")) + 8
			w[i] = 0x11 // IMA ADPCM
			return w
		}(), codes.FailedPrecondition, "UNSUPPORTED_MEDIA_FOR_REDACTION"},
		"no engagement": {recordingHeader(""), toneWAV(), codes.InvalidArgument, "INVALID_ARGUMENT"},
	} {
		_, err := e.Upload(e.admin, c.h, bytes.NewReader(c.body), 32<<10)
		wantStatus(t, name, err, c.code, c.reason)
	}
	if files := objectFiles(t, e.DataDir); len(files) != 0 {
		t.Fatalf("refused recordings left %v", files)
	}
	if r := e.redact(t); r.Waiting+r.Redacted+r.Failed != 0 {
		t.Fatalf("refused recordings are in the index: %+v", r)
	}
}

// TestRedactionCrashAtEachStep stops a replacement at each step and then
// lets a fresh pass finish: meanwhile the gateway serves exactly one
// version; afterwards the redacted one, and the original is shredded.
func TestRedactionCrashAtEachStep(t *testing.T) {
	steps := []string{gateway.RedactStepStart, gateway.RedactStepWritten, gateway.RedactStepNext, gateway.RedactStepReplaced, gateway.RedactStepShredded}
	e := startAudio(t)
	wav := toneWAV()
	for i, step := range steps {
		eng := fmt.Sprintf("crash-%d", i)
		mustUpload(t, e.Env, e.admin, transcriptHeader(eng), cardTranscript())
		a := mustUpload(t, e.Env, e.admin, recordingHeader(eng), wav)
		e.move(t)
		ref, _ := layout.ParseArtifactName(a.GetName())
		original := readFile(t, filepath.Join(e.DataDir, "regions", ref.Storage, ref.StoredKey()))
		fired := false
		e.Runtime.Gateway.SetRedactHook(func(s string, r layout.Ref) error {
			if s == step && r == ref {
				fired = true
				return fmt.Errorf("crash at %s", s)
			}
			return nil
		})
		e.redact(t)
		if !fired {
			t.Fatalf("the crash at %s did not fire", step)
		}
		// Crashed: one version is served (to a pii_viewer while pending).
		got := mustRead(t, e.Env, e.viewer, a.GetName())
		if !bytes.Equal(got, wav) {
			checkSilenced(t, wav, got)
		}
		e.Runtime.Gateway.SetRedactHook(nil)
		if r := e.redact(t); r.Failed != 0 {
			t.Fatalf("%s: resumed pass failed: %+v\n%s", step, r, e.Log.String())
		}
		checkSilenced(t, wav, mustRead(t, e.Env, e.reader, a.GetName()))
		assertShredded(t, e.Env, a.GetName(), original)
		if _, err := os.Stat(filepath.Join(e.DataDir, "regions", ref.Storage, "redacting", "demo", ref.ID)); !os.IsNotExist(err) {
			t.Errorf("%s: the side object is left (%v)", step, err)
		}
	}
}

// A transcript that arrives after its recording was redacted (a second
// transcript of the engagement) makes the recording pending again, and
// the next pass silences its spans too.
func TestLaterTranscriptRedactsAgain(t *testing.T) {
	e := startAudio(t)
	mustUpload(t, e.Env, e.admin, transcriptHeader("eng-4"), cardTranscript())
	wav := toneWAV()
	a := mustUpload(t, e.Env, e.admin, recordingHeader("eng-4"), wav)
	e.move(t)
	if r := e.redact(t); r.Redacted != 1 {
		t.Fatalf("first pass: %+v", r)
	}
	first := mustRead(t, e.Env, e.reader, a.GetName())
	checkSilenced(t, wav, first)
	vtt := "WEBVTT\n\n00:00:06.000 --> 00:00:06.500\nCustomer: call me on 415-555-0134\n"
	h := transcriptHeader("eng-4")
	h.ContentType = "text/vtt"
	mustUpload(t, e.Env, e.admin, h, []byte(vtt))
	_, err := e.Read(e.reader, a.GetName(), io.Discard)
	wantStatus(t, "a reader after a new transcript", err, codes.FailedPrecondition, "REDACTION_PENDING")
	if r := e.redact(t); r.Redacted != 1 {
		t.Fatalf("second pass: %+v", r)
	}
	got := mustRead(t, e.Env, e.reader, a.GetName())
	off := bytes.Index(wav, []byte("data")) + 8
	for i := range wav {
		frame := (i - off) / 2
		silent := i >= off && (frame >= 19*wavRate/10 && frame < 56*wavRate/10 || frame >= 59*wavRate/10 && frame < 66*wavRate/10)
		if silent && got[i] != 0 || !silent && got[i] != wav[i] {
			t.Fatalf("byte %d (frame %d): %#x, original %#x, silent %v", i, frame, got[i], wav[i], silent)
		}
	}
}
