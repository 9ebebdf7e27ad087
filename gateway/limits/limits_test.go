package limits

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func exceeded(t *testing.T, err error, want string) {
	t.Helper()
	var ex *Exceeded
	if !errors.As(err, &ex) || ex.Limit != want || ex.RetryAfter <= 0 {
		t.Fatalf("got %v, want Exceeded{%s} with a retry delay", err, want)
	}
}

func TestStreamCapsPerPrincipalAndAccount(t *testing.T) {
	l := New(Config{UploadsPerPrincipal: 2, UploadsPerAccount: 3, ReadsPerPrincipal: 1, ReadsPerAccount: 1, StreamMemory: 1 << 30})
	r1, err := l.Stream(Upload, "acme", "svc1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Stream(Upload, "acme", "svc1", 1); err != nil {
		t.Fatal(err)
	}
	_, err = l.Stream(Upload, "acme", "svc1", 1)
	exceeded(t, err, "uploads_per_principal")
	if _, err := l.Stream(Upload, "acme", "svc2", 1); err != nil {
		t.Fatalf("another principal of the account, under the account cap: %v", err)
	}
	_, err = l.Stream(Upload, "acme", "svc3", 1)
	exceeded(t, err, "uploads_per_account")
	// Other accounts and other kinds are not affected.
	if _, err := l.Stream(Upload, "globex", "svc1", 1); err != nil {
		t.Fatalf("another account: %v", err)
	}
	if _, err := l.Stream(Read, "acme", "svc1", 1); err != nil {
		t.Fatalf("a read beside full uploads: %v", err)
	}
	_, err = l.Stream(Read, "acme", "svc9", 1)
	exceeded(t, err, "reads_per_account")
	// Release gives the slot back, once, however often it is called.
	r1()
	r1()
	if _, err := l.Stream(Upload, "acme", "svc1", 1); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	_, err = l.Stream(Upload, "acme", "svc1", 1)
	exceeded(t, err, "uploads_per_principal")
	if got := l.Active(Upload, "acme"); got != 3 {
		t.Fatalf("Active(uploads, acme) = %d, want 3", got)
	}
}

func TestStreamMemoryBudget(t *testing.T) {
	l := New(Config{UploadsPerPrincipal: 100, UploadsPerAccount: 100, StreamMemory: 10 << 20, AccountMemory: 10 << 20})
	var releases []func()
	for i := 0; i < 3; i++ {
		r, err := l.Stream(Upload, "acme", "svc", 3<<20)
		if err != nil {
			t.Fatalf("stream %d of 3 MiB within 10 MiB: %v", i, err)
		}
		releases = append(releases, r)
	}
	_, err := l.Stream(Upload, "globex", "svc", 3<<20)
	exceeded(t, err, "stream_memory")
	// A refused stream gives its cap slot back at once.
	if got := l.Active(Upload, "globex"); got != 0 {
		t.Fatalf("Active(uploads, globex) after a refusal = %d, want 0", got)
	}
	releases[0]()
	if _, err := l.Stream(Upload, "globex", "svc", 3<<20); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	// An account's streams and extra reservations together stay within
	// its share; other accounts are not held back by it.
	shared := New(Config{UploadsPerPrincipal: 100, UploadsPerAccount: 100, StreamMemory: 12 << 20, AccountMemory: 6 << 20})
	r1, err := shared.Stream(Upload, "acme", "svc", 3<<20)
	if err != nil {
		t.Fatal(err)
	}
	more, err := shared.Memory("acme", 3<<20)
	if err != nil {
		t.Fatalf("acme's extra 3 MiB within its 6: %v", err)
	}
	if _, err := shared.Stream(Upload, "acme", "svc", 1<<20); err == nil {
		t.Fatal("acme's third reservation beyond its share was granted")
	} else {
		exceeded(t, err, "stream_memory_per_account")
	}
	if _, err := shared.Memory("acme", 1); err == nil {
		t.Fatal("acme's extra byte beyond its share was granted")
	}
	if r, err := shared.Stream(Upload, "globex", "svc", 6<<20); err != nil {
		t.Fatalf("globex's share while acme's is full: %v", err)
	} else {
		r()
	}
	more()
	r1()
	if r, err := shared.Stream(Upload, "acme", "svc", 6<<20); err != nil {
		t.Fatalf("acme's share once given back: %v", err)
	} else {
		r()
	}
	// A stream asking for more than the whole budget is capped to it.
	big := New(Config{StreamMemory: 1 << 20})
	if r, err := big.Stream(Read, "acme", "svc", 1<<40); err != nil {
		t.Fatalf("a stream larger than the budget: %v", err)
	} else {
		r()
	}
}

func TestKeyProbeRatePerAccount(t *testing.T) {
	l := New(Config{KeyProbesPerSecond: 2, KeyProbeBurst: 3})
	now := time.Unix(1_800_000_000, 0)
	l.now = func() time.Time { return now }
	allowed := 0
	for i := 0; i < 100; i++ {
		if err := l.KeyProbe("acme"); err == nil {
			allowed++
		} else {
			exceeded(t, err, "key_probes_per_account")
		}
	}
	if allowed != 3 {
		t.Fatalf("probes allowed in one instant: %d, want the burst, 3", allowed)
	}
	if err := l.KeyProbe("globex"); err != nil {
		t.Fatalf("another account: %v", err)
	}
	now = now.Add(time.Second)
	allowed = 0
	for i := 0; i < 100; i++ {
		if l.KeyProbe("acme") == nil {
			allowed++
		}
	}
	if allowed != 2 {
		t.Fatalf("probes allowed one second later: %d, want the rate, 2", allowed)
	}
}

func TestConfigDefaultsAndValidate(t *testing.T) {
	c := Config{ReadsPerPrincipal: 7}.WithDefaults()
	if c.ReadsPerPrincipal != 7 || c.UploadsPerPrincipal != Defaults().UploadsPerPrincipal || c.StreamMemory != Defaults().StreamMemory {
		t.Fatalf("WithDefaults kept %+v, want 7 reads per principal and defaults elsewhere", c)
	}
	for _, bad := range []Config{{UploadsPerAccount: -1}, {StreamMemory: -1}, {KeyProbesPerSecond: -1}} {
		if err := bad.Validate(); err == nil {
			t.Fatalf("Validate(%+v): got nil, want an error", bad)
		}
	}
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("Validate(Defaults()): %v", err)
	}
}

func TestReleasedSlotsLeaveNothingBehind(t *testing.T) {
	l := New(Config{})
	for i := 0; i < 3; i++ {
		r, err := l.Stream(Read, "acme", "svc", 1)
		if err != nil {
			t.Fatal(err)
		}
		r()
	}
	if len(l.principal) != 0 || len(l.account) != 0 {
		t.Fatalf("counters after every stream ended: %v %v, want none kept", l.principal, l.account)
	}
}

func TestProbeLimitersAreBounded(t *testing.T) {
	l := New(Config{KeyProbesPerSecond: 1000, KeyProbeBurst: 1})
	now := time.Unix(1_800_000_000, 0)
	l.now = func() time.Time { return now }
	for i := 0; i < maxProbeLimiters; i++ {
		if err := l.KeyProbe(fmt.Sprint("a", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Later every bucket has refilled, but a1 has just spent its token.
	now = now.Add(10 * time.Millisecond)
	l.probes["a1"].AllowN(now, 1)
	if err := l.KeyProbe("new"); err != nil {
		t.Fatal(err)
	}
	if len(l.probes) > maxProbeLimiters/2 {
		t.Fatalf("%d limiters kept after the sweep, want the full ones dropped", len(l.probes))
	}
	if _, ok := l.probes["a1"]; !ok {
		t.Fatal("a limiter that is not full was dropped: its account would get a fresh burst")
	}
}

// Concurrent probes while time passes (each reading of the clock is 1 ms
// later): no more get through than the burst plus the refill, however the
// calls interleave. A reservation cancelled when it would have to wait
// gave back tokens others had counted on, and let more through.
func TestKeyProbesUnderConcurrencyNeverExceedTheBurst(t *testing.T) {
	for round := range 50 {
		var ticks atomic.Int64
		start := time.Unix(1700000000, 0)
		l := New(Config{KeyProbesPerSecond: 1, KeyProbeBurst: 5})
		l.now = func() time.Time { return start.Add(time.Duration(ticks.Add(1)) * time.Millisecond) }
		var ok atomic.Int64
		var wg sync.WaitGroup
		for range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if l.KeyProbe("acme") == nil {
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		elapsed := time.Duration(ticks.Load()) * time.Millisecond
		if max := 5 + int64(elapsed.Seconds()); ok.Load() > max {
			t.Fatalf("round %d: %d of 200 probes allowed over %v, want at most %d", round, ok.Load(), elapsed, max)
		}
	}
}

// TestKeyProbeRetryAfterSaysWhenATokenIsBack: a refused probe's delay is
// the time until the bucket holds a whole token again, and retrying after
// it succeeds.
func TestKeyProbeRetryAfterSaysWhenATokenIsBack(t *testing.T) {
	l := New(Config{KeyProbesPerSecond: 4, KeyProbeBurst: 1})
	now := time.Unix(1_800_000_000, 0)
	l.now = func() time.Time { return now }
	if err := l.KeyProbe("acme"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ after, want time.Duration }{{0, 250 * time.Millisecond}, {100 * time.Millisecond, 150 * time.Millisecond}} {
		now = now.Add(c.after)
		var ex *Exceeded
		if err := l.KeyProbe("acme"); !errors.As(err, &ex) {
			t.Fatalf("+%v: got %v, want Exceeded", c.after, err)
		}
		if d := ex.RetryAfter - c.want; d < -time.Millisecond || d > time.Millisecond {
			t.Fatalf("+%v: RetryAfter %v, want %v", c.after, ex.RetryAfter, c.want)
		}
	}
	now = now.Add(150 * time.Millisecond)
	if err := l.KeyProbe("acme"); err != nil {
		t.Fatalf("after the delay: %v", err)
	}
}

// TestZeroLimitsAreValid: zero means "the default", so only negative
// values are refused.
func TestZeroLimitsAreValid(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("Validate(Config{}): %v", err)
	}
	for _, bad := range []Config{{UploadsPerPrincipal: -1}, {ReadsPerPrincipal: -1}, {ReadsPerAccount: -1}, {KeyProbeBurst: -1}} {
		if err := bad.Validate(); err == nil {
			t.Fatalf("Validate(%+v): got nil, want an error", bad)
		}
	}
}

// A scan's worst-case cost is taken from its account's scan share before it
// runs: once an account is in debt, its next scans wait (and end with their
// context) without matching anything, however many it starts and however
// soon it gives up on them (review: charging after the match let every
// new call run in full). Other accounts are not affected, and what a scan
// reserved beyond what it used is given back.
func TestScansWaitForTheirAccountsShareBeforeTheyRun(t *testing.T) {
	l := New(Config{ScanShare: 1e-6, ScanBurst: time.Microsecond})
	ran := 0
	// A scan that takes what it reserved.
	scan := func() { ran++; time.Sleep(30 * time.Millisecond) }
	ctx := context.Background()
	// Three scans start at once: the first takes the account into debt
	// before it runs, so the other two wait and end with their contexts.
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
			errs[i] = l.Scan(short, "acme", 30*time.Millisecond, func() { mu.Lock(); ran++; mu.Unlock(); time.Sleep(30 * time.Millisecond) })
		}()
	}
	wg.Wait()
	if waited := countErrs(errs, context.DeadlineExceeded); ran != 1 || waited != 2 {
		t.Fatalf("three scans at once: %d ran, %d waited (%v); want 1 and 2", ran, waited, errs)
	}
	// Later ones wait too: the account is in debt for hours at this share.
	for i := range 2 {
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		err := l.Scan(short, "acme", 30*time.Millisecond, scan)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || ran != 1 {
			t.Fatalf("scan %d of an account in debt: %v, ran %d; want it to wait and never run", i, err, ran)
		}
	}
	if err := l.Scan(ctx, "globex", 30*time.Millisecond, scan); err != nil || ran != 2 {
		t.Fatalf("another account's scan: %v, ran %d", err, ran)
	}

	// A burst of 1 s: a scan reserving 2 s that takes almost nothing gets
	// its reservation back, so the next one runs at once.
	l = New(Config{ScanShare: 1e-6, ScanBurst: time.Second})
	for i := range 3 {
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		err := l.Scan(short, "acme", 2*time.Second, func() {})
		cancel()
		if err != nil {
			t.Fatalf("scan %d after cheap ones: %v; want the unused reservations given back", i, err)
		}
	}
}

func countErrs(errs []error, target error) int {
	n := 0
	for _, err := range errs {
		if errors.Is(err, target) {
			n++
		}
	}
	return n
}

// A scan is charged at most its estimate: its wall time includes waiting
// for a core, which other tenants' work lengthens (fourth review).
func TestScanIsChargedAtMostItsEstimate(t *testing.T) {
	l := New(Config{ScanShare: 1e-9, ScanBurst: time.Second})
	if err := l.Scan(context.Background(), "acme", 10*time.Millisecond, func() { time.Sleep(50 * time.Millisecond) }); err != nil {
		t.Fatal(err)
	}
	b := l.scanBucket("acme")
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.balance < time.Second-11*time.Millisecond {
		t.Fatalf("a scan estimated at 10 ms that took 50 ms left a balance of %v of 1 s; want at most 10 ms charged", b.balance)
	}
}
