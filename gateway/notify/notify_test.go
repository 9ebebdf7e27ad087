package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sealgate/sealgate/store"
	"github.com/sealgate/sealgate/store/filestore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("s3cret-for-tests")

// receiver records what it is sent; fail answers 503 while it returns true.
type receiver struct {
	mu     sync.Mutex
	got    []*http.Request
	bodies [][]byte
	fail   func() bool
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil && r.fail() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	r.got = append(r.got, req)
	r.bodies = append(r.bodies, body)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func newStore(t *testing.T) store.Bucket {
	t.Helper()
	b, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func pending(t *testing.T, b store.Bucket) int {
	t.Helper()
	objs, err := b.List(context.Background(), prefix, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(objs)
}

func blockedEvent() Event {
	return Event{Type: TypeContentBlocked, Account: "acme", OccurredAt: time.Now().UTC(), RuleID: "no-cards",
		ArtifactType: "ARTIFACT_TYPE_SMS", EngagementID: "eng-1"}
}

// opsOutbox is an outbox on a fresh store with one webhook, "ops", for
// every account, posting to a receiver that records what it gets.
func opsOutbox(t *testing.T) (*Outbox, *receiver, store.Bucket) {
	t.Helper()
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	b := newStore(t)
	return New(Config{Store: b, Webhooks: []Webhook{{Name: "ops", URL: srv.URL, Secret: secret}}}), rcv, b
}

func TestDeliversSignedEventOnceAndForgetsIt(t *testing.T) {
	o, rcv, b := opsOutbox(t)
	ctx := context.Background()
	ev := blockedEvent()
	ev.ID = NewID()
	if n, err := o.Enqueue(ctx, ev); err != nil || n != 1 {
		t.Fatalf("Enqueue = %d, %v", n, err)
	}
	if pending(t, b) != 1 {
		t.Fatal("the event is not in the outbox before delivery")
	}
	o.DeliverDue(ctx)
	o.DeliverDue(ctx)
	if rcv.count() != 1 {
		t.Fatalf("receiver got %d posts, want 1", rcv.count())
	}
	req, body := rcv.got[0], rcv.bodies[0]
	if err := Verify(secret, body, req.Header.Get(SignatureHeader), time.Now(), time.Minute); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if req.Header.Get(IdempotencyHeader) != ev.ID || req.Header.Get(EventTypeHeader) != TypeContentBlocked {
		t.Fatalf("headers %v", req.Header)
	}
	var got Event
	if err := json.Unmarshal(body, &got); err != nil || got.ID != ev.ID || got.RuleID != "no-cards" || got.EngagementID != "eng-1" {
		t.Fatalf("body %s (%v)", body, err)
	}
	if pending(t, b) != 0 {
		t.Fatal("a delivered event stays in the outbox")
	}
}

func TestRetriesWithBackoffUntilTheReceiverAnswers(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	rcv := &receiver{fail: down.Load}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	b := newStore(t)
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	o := New(Config{Store: b, Webhooks: []Webhook{{Name: "ops", URL: srv.URL, Secret: secret}},
		MinBackoff: 10 * time.Second, MaxBackoff: 40 * time.Second, Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	ctx := context.Background()
	if _, err := o.Enqueue(ctx, blockedEvent()); err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	for range 4 {
		next := o.DeliverDue(ctx)
		if next.IsZero() {
			t.Fatal("a failed delivery was dropped")
		}
		waits = append(waits, next.Sub(time.Unix(0, clock.Load())))
		// Not yet due: nothing is posted.
		o.DeliverDue(ctx)
		clock.Store(next.UnixNano())
	}
	// 10 s, 20 s, 40 s, 40 s, each less up to 20% jitter.
	for i, want := range []time.Duration{10, 20, 40, 40} {
		want *= time.Second
		if waits[i] > want || waits[i] < want*8/10 {
			t.Fatalf("wait %d = %v, want about %v (all %v)", i, waits[i], want, waits)
		}
	}
	down.Store(false)
	if next := o.DeliverDue(ctx); !next.IsZero() {
		t.Fatalf("still pending after the receiver came back (next %v)", next)
	}
	if rcv.count() != 1 || pending(t, b) != 0 {
		t.Fatalf("receiver got %d, outbox holds %d", rcv.count(), pending(t, b))
	}
}

func TestTwoGatewaysSharingAnOutboxPostOnce(t *testing.T) {
	slow := make(chan struct{})
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		<-slow
	}))
	defer srv.Close()
	b := newStore(t)
	hooks := []Webhook{{Name: "ops", URL: srv.URL, Secret: secret}}
	a, c := New(Config{Store: b, Webhooks: hooks}), New(Config{Store: b, Webhooks: hooks})
	ctx := context.Background()
	if _, err := a.Enqueue(ctx, blockedEvent()); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); a.DeliverDue(ctx) }()
	for posts.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// a holds the lease while its post is in flight: c must not post.
	c.DeliverDue(ctx)
	close(slow)
	<-done
	if posts.Load() != 1 || pending(t, b) != 0 {
		t.Fatalf("%d posts, %d pending", posts.Load(), pending(t, b))
	}
}

func TestOnlyWebhooksOfTheAccountAndNoRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	b := newStore(t)
	o := New(Config{Store: b, Webhooks: []Webhook{
		{Name: "globex-only", URL: srv.URL, Secret: secret, Accounts: []string{"globex"}},
		{Name: "redirecting", URL: redirect.URL, Secret: secret},
	}})
	ctx := context.Background()
	if n, err := o.Enqueue(ctx, blockedEvent()); err != nil || n != 1 {
		t.Fatalf("Enqueue for acme = %d, %v; want only the webhook for all accounts", n, err)
	}
	o.DeliverDue(ctx)
	if rcv.count() != 0 {
		t.Fatal("an event of acme reached the webhook of globex")
	}
	if elsewhere.Load() != 0 {
		t.Fatal("the gateway followed a redirect to another host")
	}
	if pending(t, b) != 1 {
		t.Fatal("a redirect counted as delivered")
	}
}

func TestVerifyRefusesTamperedOrStale(t *testing.T) {
	body := []byte(`{"id":"1"}`)
	now := time.Now()
	h := Sign(secret, body, now)
	if err := Verify(secret, body, h, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"tampered":     Verify(secret, []byte(`{"id":"2"}`), h, now, time.Minute),
		"wrong secret": Verify([]byte("other"), body, h, now, time.Minute),
		"stale":        Verify(secret, body, h, now.Add(10*time.Minute), time.Minute),
		"malformed":    Verify(secret, body, "v1=abc", now, time.Minute),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDefaults(t *testing.T) {
	o := New(Config{Store: newStore(t)})
	c := o.cfg
	if c.MinBackoff != time.Second || c.MaxBackoff != 5*time.Minute || c.Lease != time.Minute || c.Poll != 10*time.Second ||
		c.Client.Timeout != 10*time.Second || c.Now == nil || c.Logger == nil {
		t.Fatalf("defaults %+v", c)
	}
	// A redirect is never followed by the default client.
	if c.Client.CheckRedirect == nil || c.Client.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Fatal("the default client follows redirects")
	}
}

// Enqueue wakes a running outbox: delivery does not wait for the poll.
func TestEnqueueWakesRun(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	o := New(Config{Store: newStore(t), Webhooks: []Webhook{{Name: "ops", URL: srv.URL, Secret: secret}}, Poll: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond) // Run's first pass finds nothing
	if _, err := o.Enqueue(context.Background(), blockedEvent()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rcv.count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("an enqueued event waited for the hourly poll")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An event is kept small enough for the outbox to load it: an upload's
// labels (up to 64 of 256 bytes, each '<' escaped to six bytes in JSON)
// made an entry of about 100 KiB that was never delivered nor dropped, and
// kept the outbox polling every second (second review). The labels are
// dropped, and said to be.
func TestEventWithLargeLabelsIsDeliveredWithoutThem(t *testing.T) {
	o, rcv, b := opsOutbox(t)
	ctx := context.Background()
	ev := blockedEvent()
	ev.Labels = map[string]string{}
	for i := range 64 {
		ev.Labels[fmt.Sprintf("label-%02d", i)] = strings.Repeat("<", 256)
	}
	if n, err := o.Enqueue(ctx, ev); err != nil || n != 1 {
		t.Fatalf("Enqueue = %d, %v", n, err)
	}
	o.DeliverDue(ctx)
	if rcv.count() != 1 || pending(t, b) != 0 {
		t.Fatalf("received %d, %d left in the outbox; want it delivered and gone", rcv.count(), pending(t, b))
	}
	var got Event
	if err := json.Unmarshal(rcv.bodies[0], &got); err != nil || !got.LabelsDropped || len(got.Labels) != 0 || got.RuleID != "no-cards" {
		t.Fatalf("delivered %+v (%v); want it without its labels, saying so", got, err)
	}
	// Small labels are kept.
	ev = blockedEvent()
	ev.Labels = map[string]string{"campaign": "spring"}
	if _, err := o.Enqueue(ctx, ev); err != nil {
		t.Fatal(err)
	}
	o.DeliverDue(ctx)
	var small Event
	if err := json.Unmarshal(rcv.bodies[1], &small); err != nil || small.LabelsDropped || small.Labels["campaign"] != "spring" {
		t.Fatalf("delivered %+v (%v); want its labels", small, err)
	}
}

// A receiver that hangs delays only its own webhook's deliveries (second
// review: one slow receiver held every other webhook's events behind the
// client timeout, entry after entry), and an event that cannot be
// delivered for MaxAge is dropped rather than retried for ever.
func TestSlowReceiverDelaysOnlyItsOwnWebhook(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer slow.Close()
	defer close(release)
	rcv := &receiver{}
	fast := httptest.NewServer(rcv)
	defer fast.Close()
	b := newStore(t)
	// Listed in key order, the slow webhook's entries come first.
	o := New(Config{Store: b, Client: &http.Client{Timeout: time.Minute}, Webhooks: []Webhook{
		{Name: "a-slow", URL: slow.URL, Secret: secret}, {Name: "b-fast", URL: fast.URL, Secret: secret}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.Run(ctx); close(done) }()
	// Each event reaches the fast webhook while the slow one still hangs
	// on the first: the second is enqueued during the slow one's pass
	// (third review: a pass that waited for every webhook held it).
	for i := 1; i <= 2; i++ {
		if _, err := o.Enqueue(ctx, blockedEvent()); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for rcv.count() < i && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if rcv.count() != i {
			t.Fatalf("event %d did not reach the fast webhook while the slow one hangs", i)
		}
	}
	cancel()
	<-done

	// Past MaxAge, an event that keeps failing is dropped.
	now := time.Now()
	failing := &receiver{fail: func() bool { return true }}
	down := httptest.NewServer(failing)
	defer down.Close()
	b = newStore(t)
	o = New(Config{Store: b, Webhooks: []Webhook{{Name: "down", URL: down.URL, Secret: secret}},
		MaxAge: time.Hour, Now: func() time.Time { return now }})
	if _, err := o.Enqueue(context.Background(), blockedEvent()); err != nil {
		t.Fatal(err)
	}
	o.DeliverDue(context.Background())
	if pending(t, b) != 1 {
		t.Fatal("a failed attempt within MaxAge dropped the event")
	}
	now = now.Add(2 * time.Hour)
	o.DeliverDue(context.Background())
	if pending(t, b) != 0 {
		t.Fatal("an event failing for longer than MaxAge is still in the outbox")
	}
}

// What an attempt adds to an entry stays within the room Enqueue leaves:
// the last error is kept as characters JSON writes as themselves (third
// review: a receiver's status line of 1100 '<' made an entry near the
// limit unloadable after one attempt), and an entry too large to load,
// left by an older version, is dropped rather than retried for ever.
func TestEntriesStayLoadable(t *testing.T) {
	reason := strings.Repeat("<", 1100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		http.Error(w, reason, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	b := newStore(t)
	o := New(Config{Store: b, Webhooks: []Webhook{{Name: "ops", URL: srv.URL, Secret: secret}},
		Client: &http.Client{Transport: errTransport{reason}}})
	ctx := context.Background()
	ev := blockedEvent()
	ev.Labels = map[string]string{}
	// Labels that bring the entry just under Enqueue's bound.
	for i := 0; ; i++ {
		ev.Labels[fmt.Sprintf("l%03d", i)] = strings.Repeat("a", 200)
		data, _ := json.Marshal(entry{Webhook: "ops", Event: ev})
		if len(data) > maxEntry-maxEntrySlack-300 {
			break
		}
	}
	if _, err := o.Enqueue(ctx, ev); err != nil {
		t.Fatal(err)
	}
	o.DeliverDue(ctx)
	objs, err := b.List(ctx, prefix, "", 0)
	if err != nil || len(objs) != 1 {
		t.Fatalf("outbox after a failed attempt: %v, %v", objs, err)
	}
	if _, _, err := b.Load(ctx, objs[0].Key, maxEntry); err != nil {
		t.Fatalf("after one failed attempt the entry cannot be loaded: %v", err)
	}

	big := make([]byte, maxEntry+1)
	if _, err := b.Swap(ctx, prefix+"ops/legacy.json", big, ""); err != nil {
		t.Fatal(err)
	}
	o.DeliverDue(ctx)
	if _, err := b.Stat(ctx, prefix+"ops/legacy.json"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an entry too large to load is still there: %v", err)
	}
}

// errTransport fails every request with msg.
type errTransport struct{ msg string }

func (e errTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, errors.New(e.msg) }

// Entries wait for the webhook that was configured when they were queued:
// one whose registration no longer serves the event's account does not get
// it (its name reused for another tenant), and one renamed or removed
// leaves entries no loop lists, which are dropped after MaxAge (fourth
// review).
func TestEntriesFollowTheWebhookConfiguration(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	ctx := context.Background()
	b := newStore(t)
	before := New(Config{Store: b, Webhooks: []Webhook{{Name: "tenant-a", URL: srv.URL + "/acme", Secret: secret, Accounts: []string{"acme"}}}})
	if n, err := before.Enqueue(ctx, blockedEvent()); err != nil || n != 1 { // account acme
		t.Fatal(n, err)
	}
	after := New(Config{Store: b, Webhooks: []Webhook{{Name: "tenant-a", URL: srv.URL + "/globex", Secret: secret, Accounts: []string{"globex"}}}})
	after.DeliverDue(ctx)
	if rcv.count() != 0 || pending(t, b) != 0 {
		t.Fatalf("acme's event after its webhook was given to globex: %d posts, %d left; want none of either", rcv.count(), pending(t, b))
	}

	b = newStore(t)
	old := New(Config{Store: b, Webhooks: []Webhook{{Name: "ops", URL: srv.URL, Secret: secret}}})
	if _, err := old.Enqueue(ctx, blockedEvent()); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	renamed := New(Config{Store: b, Webhooks: []Webhook{{Name: "ops-eu", URL: srv.URL, Secret: secret}},
		Now: func() time.Time { return now }})
	renamed.DeliverDue(ctx)
	if pending(t, b) != 1 {
		t.Fatal("an entry of a webhook renamed a moment ago was dropped at once")
	}
	now = now.Add(8 * 24 * time.Hour)
	renamed.DeliverDue(ctx)
	if pending(t, b) != 0 || rcv.count() != 0 {
		t.Fatalf("an entry of a renamed webhook past MaxAge: %d left, %d posts; want it dropped", pending(t, b), rcv.count())
	}
}
