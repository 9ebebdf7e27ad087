package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/sealgate/sealgate/gateway/notify"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

const hookSecret = "integration-webhook-secret-42"

// hookReceiver is the agents' side: an HTTP endpoint on a fixed port that
// can be down, checking every signature.
type hookReceiver struct {
	addr string
	mu   sync.Mutex
	got  map[string]int // event id -> deliveries
	bad  int
	srv  *http.Server
}

func (h *hookReceiver) start(t *testing.T) {
	t.Helper()
	lis, err := net.Listen("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if notify.Verify([]byte(hookSecret), body, r.Header.Get(notify.SignatureHeader), time.Now(), 5*time.Minute) != nil {
			h.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev notify.Event
		if json.Unmarshal(body, &ev) != nil || ev.ID != r.Header.Get(notify.IdempotencyHeader) || ev.RuleID != "no-cards" {
			h.bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.got[ev.ID]++
	})}
	go h.srv.Serve(lis)
}

func (h *hookReceiver) stop() {
	if h.srv != nil {
		h.srv.Close()
		h.srv = nil
	}
}

func (h *hookReceiver) snapshot() (map[string]int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for k, v := range h.got {
		out[k] = v
	}
	return out, h.bad
}

// waitDeliveries waits until n distinct events arrived.
func (h *hookReceiver) waitDeliveries(t *testing.T, n int, within time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, bad := h.snapshot()
		if bad > 0 {
			t.Fatalf("%d notifications failed the signature or format check", bad)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d notifications arrived within %v", len(got), n, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

// TestBlockedMessageNotificationSurvivesReceiverDownAndGatewayKill runs the
// gateway binary with a webhook. A blocked SMS is refused while the
// receiver is down for 30 s: the notification arrives, once, when it comes
// back. Then a blocked SMS is refused and the gateway is killed before it
// could deliver: the restarted gateway delivers it from the outbox.
func TestBlockedMessageNotificationSurvivesReceiverDownAndGatewayKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway binary and waits 30 s for a receiver")
	}
	bin := binaries(t)
	dir := t.TempDir()
	rcv := &hookReceiver{addr: freeAddr(t), got: map[string]int{}}
	defer rcv.stop()
	cfg := filepath.Join(dir, "sealgate.yaml")
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s/data
regions: {us: {path: %s/data/regions/us}}
sip_zones: {us-west: us}
dev: {account: demo}
webhook_min_backoff: 1s
webhook_max_backoff: 4s
webhooks:
  - {name: agents, url: "http://%s/hooks/sealgate", secret_env: SEALGATE_IT_HOOK_SECRET}
`, dir, dir, rcv.addr)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	initConfig(t, bin, cfg)
	env := []string{"SEALGATE_IT_HOOK_SECRET=" + hookSecret}
	start := func() *proc {
		p, m := startProcUntil(t, dir, dir+"/data", readyRE, env, bin+"/sealgate", "serve", "--config", cfg)
		p.Addr = m[1]
		return p
	}
	p := start()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ctx = bearer(ctx, p.token(t))
	conn := mustConn(t, p.Addr)
	accounts := sealgatev1.NewAccountServiceClient(conn)
	if _, err := accounts.UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
		Settings: &sealgatev1.AccountSettings{Name: "accounts/demo/settings", PrivacyPolicy: &sealgatev1.PrivacyPolicy{
			BlockingRules: []*sealgatev1.BlockingRule{{Id: "no-cards", Pattern: `\b(?:\d[ -]?){13,19}\b`}}}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"privacy_policy.blocking_rules"}},
	}); err != nil {
		t.Fatal(err)
	}
	sms := &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE, SipZone: "us-west",
		ContentType: "text/plain", EngagementId: "eng-1", Labels: map[string]string{"agent": "agent-7"}}
	blocked := func(c sealgatev1.ArtifactServiceClient) {
		t.Helper()
		_, err := uploadVia(ctx, c, sms, []byte("here is my card 4111 1111 1111 1111"))
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "no-cards") {
			t.Fatalf("blocked SMS: %v, want FAILED_PRECONDITION naming no-cards", err)
		}
	}

	// 1. The receiver is down for 30 s.
	blocked(sealgatev1.NewArtifactServiceClient(conn))
	time.Sleep(30 * time.Second)
	if got, _ := rcv.snapshot(); len(got) != 0 {
		t.Fatal("delivered while the receiver was down")
	}
	rcv.start(t)
	first := rcv.waitDeliveries(t, 1, 20*time.Second)
	if !strings.Contains(p.Stdout.String()+p.Stderr.String(), "will retry") {
		t.Error("the gateway did not log its failed attempts")
	}

	// 2. Killed between refusing and delivering: the receiver is down, so
	// nothing can be delivered before the kill.
	rcv.stop()
	blocked(sealgatev1.NewArtifactServiceClient(conn))
	conn.Close()
	p.kill()
	<-p.done
	rcv.start(t)
	time.Sleep(3 * time.Second)
	if got, _ := rcv.snapshot(); len(got) != 1 {
		t.Fatalf("%d events before the restart, want only the first", len(got))
	}
	start()
	// If the kill came while the first gateway held the entry's lease (an
	// attempt under way), the restarted one waits for the lease (1 min)
	// to run out before it delivers.
	rcv.waitDeliveries(t, 2, 90*time.Second)
	time.Sleep(3 * time.Second) // anything sent twice would show now
	got, _ := rcv.snapshot()
	if len(got) != 2 {
		t.Fatalf("events %v, want 2", got)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s delivered %d times, want once", id, n)
		}
	}
	for id := range first {
		if got[id] != 1 {
			t.Errorf("first event %s: %d deliveries", id, got[id])
		}
	}
	// Nothing was stored for either message.
	filepath.Walk(filepath.Join(dir, "data", "regions"), func(path string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			t.Errorf("a blocked message left %s", path)
		}
		return nil
	})
}
