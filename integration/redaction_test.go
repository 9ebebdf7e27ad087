package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// wav16 is secs seconds of a 16-bit mono tone at rate Hz.
func wav16(rate, secs int) []byte {
	var data []byte
	for i := range rate * secs {
		data = binary.LittleEndian.AppendUint16(data, uint16(int16(12000*math.Sin(float64(i)/7))))
	}
	fmtc := []byte{1, 0, 1, 0}
	fmtc = binary.LittleEndian.AppendUint32(fmtc, uint32(rate))
	fmtc = binary.LittleEndian.AppendUint32(fmtc, uint32(rate*2))
	fmtc = append(fmtc, 2, 0, 16, 0)
	body := append([]byte("WAVEfmt "), binary.LittleEndian.AppendUint32(nil, 16)...)
	body = append(body, fmtc...)
	body = append(body, "data"...)
	body = append(binary.LittleEndian.AppendUint32(body, uint32(len(data))), data...)
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

// transcribeCard is an AWS Transcribe transcript whose words spell a card
// number between 2.0 and 5.5 s.
func transcribeCard() []byte {
	var items []string
	digits := strings.Fields("four one one one one one one one one one one one one one one one")
	for i, d := range digits {
		s := 2.0 + float64(i)*3.5/float64(len(digits))
		items = append(items, fmt.Sprintf(`{"start_time":"%.3f","end_time":"%.3f","alternatives":[{"content":%q}],"type":"pronunciation"}`, s, s+3.5/float64(len(digits)), d))
	}
	return []byte(`{"results":{"transcripts":[{"transcript":"` + strings.Join(digits, " ") + `"}],"items":[` + strings.Join(items, ",") + `]}}`)
}

// TestRedactionCrashSweep SIGKILLs the redactor (in the sweeper process) at
// each step of a recording's replacement, in turn. After each kill the
// gateway serves exactly one version, and a last sweeper finishes: the
// recording is silent where the card was said, and a copy of the original
// object cannot be decrypted offline.
func TestRedactionCrashSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway and sweeper binaries")
	}
	bin := binaries(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sealgate.yaml")
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s/data\nsweep_interval: 200ms\nmover_interval: 100ms\n"+
		"regions: {us: {path: %s/data/regions/us}}\nsip_zones: {us-west: us}\ndev: {account: demo}\n", dir, dir)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	initConfig(t, bin, cfg)
	api, m := startProcUntil(t, dir, dir+"/data", readyRE, nil, bin+"/sealgate", "serve", "--config", cfg, "--roles", "api,mover")
	api.Addr = m[1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ctx = bearer(ctx, api.token(t))
	conn := mustConn(t, api.Addr)
	arts := sealgatev1.NewArtifactServiceClient(conn)
	if _, err := sealgatev1.NewAccountServiceClient(conn).UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
		Settings:   &sealgatev1.AccountSettings{Name: "accounts/demo/settings", PrivacyPolicy: &sealgatev1.PrivacyPolicy{Redaction: &sealgatev1.Redaction{Enabled: true}}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"privacy_policy.redaction"}},
	}); err != nil {
		t.Fatal(err)
	}
	wav := wav16(8000, 7)
	rec, err := uploadVia(ctx, arts, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west",
		ContentType: "audio/wav", EngagementId: "call-9"}, wav)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uploadVia(ctx, arts, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT, SipZone: "us-west",
		ContentType: "application/json", EngagementId: "call-9"}, transcribeCard()); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(rec.GetName(), "accounts/demo/artifacts/")
	object := filepath.Join(dir, "data", "regions", "us", "artifacts", "demo", id)
	deadline := time.Now().Add(30 * time.Second)
	for _, err := os.Stat(object); err != nil; _, err = os.Stat(object) {
		if time.Now().After(deadline) {
			t.Fatal("the mover did not store the recording")
		}
		time.Sleep(50 * time.Millisecond)
	}
	original, err := os.ReadFile(object)
	if err != nil {
		t.Fatal(err)
	}

	// The reader's token has no pii_viewer; the dev token has every role.
	tok, err := exec.Command(bin+"/sealgate", "token", "issue", "--config", cfg, "--account", "demo", "--roles", "reader").Output()
	if err != nil {
		t.Fatal(err)
	}
	reader := bearer(context.Background(), strings.TrimSpace(string(tok)))
	silencedOK := func(got []byte) bool {
		off := bytes.Index(wav, []byte("data")) + 8
		for i := range wav {
			frame := (i - off) / 2
			silent := i >= off && frame >= 19*800 && frame < 56*800
			if silent && got[i] != 0 || !silent && got[i] != wav[i] {
				return false
			}
		}
		return len(got) == len(wav)
	}
	paused := regexp.MustCompile(`paused at (\S+) (\S+)`)
	for _, step := range []string{gateway.RedactStepStart, gateway.RedactStepWritten, gateway.RedactStepNext, gateway.RedactStepReplaced, gateway.RedactStepShredded} {
		p, match := startProcUntil(t, dir, dir+"/data", paused, []string{"SEALGATE_SWEEPER_PAUSE_AT=" + step},
			bin+"/sealgate", "sweeper", "--config", cfg)
		if match[1] != step || match[2] != rec.GetName() {
			t.Fatalf("paused at %v, want %s of %s", match[1:], step, rec.GetName())
		}
		p.kill()
		<-p.done
		// Exactly one version is served: the original or the redacted.
		got, err := readVia(ctx, arts, rec.GetName())
		if err != nil || !(bytes.Equal(got, wav) || silencedOK(got)) {
			t.Fatalf("after a kill at %s: read %d bytes (%v), want the original or the redacted version", step, len(got), err)
		}
		// A reader gets REDACTION_PENDING, or (once the original is
		// shredded) the redacted version; never the original.
		if got, err := readVia(reader, arts, rec.GetName()); !(status.Code(err) == codes.FailedPrecondition && strings.Contains(err.Error(), "waiting") ||
			err == nil && silencedOK(got)) {
			t.Fatalf("after a kill at %s: a reader got %d bytes, %v", step, len(got), err)
		}
	}
	sw, _ := startProcUntil(t, dir, dir+"/data", regexp.MustCompile(`sealgate sweeper is ready`), nil, bin+"/sealgate", "sweeper", "--config", cfg)
	defer sw.stop(syscall.SIGTERM, 10*time.Second)
	var got []byte
	for deadline := time.Now().Add(30 * time.Second); ; {
		if got, err = readVia(reader, arts, rec.GetName()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not redacted after the crashes: %v\n%s", err, sw.Stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !silencedOK(got) {
		t.Fatal("the redacted recording is not silent exactly over 1.9-5.6 s")
	}
	backup := filepath.Join(dir, "original.obj")
	os.WriteFile(backup, original, 0o600)
	out, err := exec.Command(bin+"/sealctl", "decrypt", "--config", cfg, backup).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "shredded") {
		t.Fatalf("offline decrypt of the original: %v\n%s\nwant it refused as shredded", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "regions", "us", "redacting", "demo", id)); !os.IsNotExist(err) {
		t.Errorf("the side object is left behind (%v)", err)
	}
}

// BenchmarkRedactTwoHourRecording redacts a 2-hour stereo 16-bit 48 kHz
// recording (about 1.3 GiB) through the whole replacement (decrypt,
// silence, encrypt, write, install) and reports the peak heap growth
// during the redaction; the target is under 64 MiB.
//
//	go test ./integration -run '^$' -bench RedactTwoHour -benchtime 1x
func BenchmarkRedactTwoHourRecording(b *testing.B) {
	const rate, channels, secs = 48000, 2, 2 * 3600
	size := int64(rate * channels * 2 * secs)
	env := gatewaytest.Start(b, nil)
	ctx := env.Ctx(b, "demo")
	if _, err := env.Accounts.UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
		Settings:   &sealgatev1.AccountSettings{Name: "accounts/demo/settings", PrivacyPolicy: &sealgatev1.PrivacyPolicy{Redaction: &sealgatev1.Redaction{Enabled: true}}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"privacy_policy.redaction"}},
	}); err != nil {
		b.Fatal(err)
	}
	// Transcript: a card number every five minutes.
	var items []string
	for s := 60; s < secs; s += 300 {
		for i := range 16 {
			items = append(items, fmt.Sprintf(`{"start_time":"%d.%02d","end_time":"%d.%02d","alternatives":[{"content":"four"}],"type":"pronunciation"}`, s, i*5, s, i*5+4))
		}
	}
	doc := `{"results":{"transcripts":[{"transcript":""}],"items":[` + strings.Join(items, ",") + `]}}`
	if _, err := env.Upload(ctx, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT, SipZone: "us-west",
		ContentType: "application/json", EngagementId: "long"}, strings.NewReader(doc), 1<<20); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		head := wav16(rate, 0)
		head[22] = channels
		binary.LittleEndian.PutUint32(head[28:], rate*channels*2)
		binary.LittleEndian.PutUint16(head[32:], channels*2)
		binary.LittleEndian.PutUint32(head[40:], uint32(size))
		binary.LittleEndian.PutUint32(head[4:], uint32(size)+36)
		src, _ := stream(size, 7)
		a, err := env.Upload(ctx, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west",
			ContentType: "audio/wav", EngagementId: "long"}, io.MultiReader(bytes.NewReader(head), src), 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := env.Runtime.Mover.Pass(context.Background()); err != nil {
			b.Fatal(err)
		}
		heap := startHeapSampler()
		start := time.Now()
		r, err := env.Runtime.Gateway.RedactPass(context.Background())
		growth := heap.growth()
		if err != nil || r.Redacted != 1 {
			b.Fatalf("redaction: %+v, %v", r, err)
		}
		elapsed := time.Since(start)
		b.ReportMetric(float64(growth)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(size)/(1<<20)/elapsed.Seconds(), "MiB/s")
		b.Logf("redacted %s (%.2f GiB) in %v, peak heap growth %.1f MiB", a.GetName(), float64(size)/(1<<30), elapsed, float64(growth)/(1<<20))
		if growth > 64<<20 {
			b.Errorf("peak heap growth %d MiB, want under 64 MiB", growth>>20)
		}
	}
}
