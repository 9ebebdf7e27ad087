// Package limits keeps one tenant from exhausting the gateway for the
// others: caps on concurrent upload and read streams per principal and per
// account, a gateway-wide budget of stream buffer memory, and a per-account
// rate of key probes. It knows nothing of gRPC; the gateway maps an
// *Exceeded to RESOURCE_EXHAUSTED with a retry delay.
package limits

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
)

// Kind is the kind of stream a slot is taken for.
type Kind int

// Stream kinds.
const (
	Upload Kind = iota
	Read
)

func (k Kind) String() string {
	if k == Upload {
		return "uploads"
	}
	return "reads"
}

// Config sets the limits; zero fields take the defaults of Defaults.
type Config struct {
	// UploadsPerPrincipal and ReadsPerPrincipal cap the concurrent streams
	// of one token subject within an account.
	UploadsPerPrincipal int `yaml:"uploads_per_principal"`
	ReadsPerPrincipal   int `yaml:"reads_per_principal"`
	// UploadsPerAccount and ReadsPerAccount cap the concurrent streams of
	// one account, all principals together.
	UploadsPerAccount int `yaml:"uploads_per_account"`
	ReadsPerAccount   int `yaml:"reads_per_account"`
	// StreamMemory is the budget, in bytes, of buffers that all streams
	// together may hold; each stream reserves its worst case when it starts.
	StreamMemory int64 `yaml:"stream_memory_bytes"`
	// AccountMemory caps what the streams of one account may reserve of
	// StreamMemory together (default half of it), so that no tenant can
	// take the whole budget from the others.
	AccountMemory int64 `yaml:"stream_memory_per_account_bytes"`
	// KeyProbesPerSecond and KeyProbeBurst limit, per account, the calls
	// that reach key services on a tenant's request (settings changes of
	// the key policy, CheckKeyAccess, RewrapArtifacts).
	KeyProbesPerSecond float64 `yaml:"key_probes_per_second"`
	KeyProbeBurst      int     `yaml:"key_probe_burst"`
	// ScanShare and ScanBurst bound, per account, the time the gateway
	// spends matching the account's blocking rules (patterns its admin
	// writes): on average at most ScanShare seconds per second (half a
	// core), after a burst of ScanBurst seconds. An account over it has its
	// own uploads wait; no other account's work does.
	ScanShare float64       `yaml:"blocking_scan_share"`
	ScanBurst time.Duration `yaml:"blocking_scan_burst"`
}

// Defaults are sized for a gateway of 2 cores and 4 GiB: a stream holds at
// most about 6 MiB of buffers while it moves data at full speed (far less
// while stalled), so 1 GiB of budget is ~170 such streams at once, and the
// per-account caps keep one tenant to a fraction of that.
func Defaults() Config {
	return Config{
		UploadsPerPrincipal: 32, ReadsPerPrincipal: 32,
		UploadsPerAccount: 128, ReadsPerAccount: 128,
		StreamMemory:       1 << 30,
		KeyProbesPerSecond: 1, KeyProbeBurst: 5,
		ScanShare: 0.5, ScanBurst: 5 * time.Second,
	}
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	d := Defaults()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.UploadsPerPrincipal, d.UploadsPerPrincipal)
	set(&c.ReadsPerPrincipal, d.ReadsPerPrincipal)
	set(&c.UploadsPerAccount, d.UploadsPerAccount)
	set(&c.ReadsPerAccount, d.ReadsPerAccount)
	set(&c.KeyProbeBurst, d.KeyProbeBurst)
	if c.StreamMemory == 0 {
		c.StreamMemory = d.StreamMemory
	}
	if c.AccountMemory == 0 {
		c.AccountMemory = c.StreamMemory / 2
	}
	if c.KeyProbesPerSecond == 0 {
		c.KeyProbesPerSecond = d.KeyProbesPerSecond
	}
	if c.ScanShare == 0 {
		c.ScanShare = d.ScanShare
	}
	if c.ScanBurst == 0 {
		c.ScanBurst = d.ScanBurst
	}
	return c
}

// Validate reports a limit that is negative or makes no sense.
func (c Config) Validate() error {
	for name, v := range map[string]int{
		"uploads_per_principal": c.UploadsPerPrincipal, "reads_per_principal": c.ReadsPerPrincipal,
		"uploads_per_account": c.UploadsPerAccount, "reads_per_account": c.ReadsPerAccount,
		"key_probe_burst": c.KeyProbeBurst,
	} {
		if v < 0 {
			return fmt.Errorf("limits: %s %d: must not be negative", name, v)
		}
	}
	if c.StreamMemory < 0 || c.AccountMemory < 0 || c.KeyProbesPerSecond < 0 {
		return fmt.Errorf("limits: stream_memory_bytes, stream_memory_per_account_bytes and key_probes_per_second must not be negative")
	}
	if c.ScanShare < 0 || c.ScanBurst < 0 {
		return fmt.Errorf("limits: blocking_scan_share and blocking_scan_burst must not be negative")
	}
	return nil
}

// Exceeded says which limit refused a request and when to try again.
type Exceeded struct {
	// Limit names the limit: "uploads_per_principal", "reads_per_account",
	// "stream_memory", "key_probes_per_account", ...
	Limit string
	// RetryAfter is a suggested delay before retrying; 0 when retrying
	// cannot help: the request needs more than the limit allows at all.
	RetryAfter time.Duration
}

func (e *Exceeded) Error() string { return "limits: " + e.Limit + " exceeded" }

// maxProbeLimiters bounds the per-account rate limiters kept; when full,
// limiters that are back to a full bucket are dropped (they would allow a
// burst anyway).
const maxProbeLimiters = 10000

// Limiter enforces a Config. It is safe for concurrent use.
type Limiter struct {
	cfg Config
	mem *semaphore.Weighted
	now func() time.Time

	mu        sync.Mutex
	principal map[key]int
	account   map[key]int
	probes    map[string]*rate.Limiter
	accMem    map[string]int64 // bytes reserved by each account's streams
	scans     map[string]*scanBucket
}

type key struct {
	kind Kind
	id   string
}

// New returns a Limiter for cfg (zero fields take their defaults).
func New(cfg Config) *Limiter {
	cfg = cfg.WithDefaults()
	return &Limiter{
		cfg: cfg, mem: semaphore.NewWeighted(cfg.StreamMemory), now: time.Now,
		principal: map[key]int{}, account: map[key]int{}, probes: map[string]*rate.Limiter{},
		scans: map[string]*scanBucket{}, accMem: map[string]int64{},
	}
}

// Config returns the limits in force.
func (l *Limiter) Config() Config { return l.cfg }

// Stream takes a slot for a stream of kind for principal (a token subject)
// of account, and reserves mem bytes of the memory budget. It never waits:
// when a cap or the budget is exhausted it returns an *Exceeded. The
// returned release gives everything back; call it exactly once.
func (l *Limiter) Stream(kind Kind, account, principal string, mem int64) (release func(), err error) {
	perPrincipal, perAccount := l.cfg.UploadsPerPrincipal, l.cfg.UploadsPerAccount
	if kind == Read {
		perPrincipal, perAccount = l.cfg.ReadsPerPrincipal, l.cfg.ReadsPerAccount
	}
	pk, ak := key{kind, account + "\x00" + principal}, key{kind, account}
	l.mu.Lock()
	switch {
	case l.principal[pk] >= perPrincipal:
		l.mu.Unlock()
		return nil, &Exceeded{Limit: kind.String() + "_per_principal", RetryAfter: time.Second}
	case l.account[ak] >= perAccount:
		l.mu.Unlock()
		return nil, &Exceeded{Limit: kind.String() + "_per_account", RetryAfter: time.Second}
	}
	l.principal[pk]++
	l.account[ak]++
	l.mu.Unlock()
	// A stream larger than a budget gets all of it, when nothing else
	// holds any.
	freeMem, err := l.reserve(account, min(max(mem, 0), l.cfg.StreamMemory, l.cfg.AccountMemory))
	if err != nil {
		l.drop(pk, ak)
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			freeMem()
			l.drop(pk, ak)
		})
	}, nil
}

// reserve takes mem bytes of account's share of the memory budget and of
// the budget, or returns an *Exceeded naming the one that cannot hold
// them. The returned function gives them back.
func (l *Limiter) reserve(account string, mem int64) (func(), error) {
	switch {
	case mem > l.cfg.AccountMemory:
		return nil, &Exceeded{Limit: "stream_memory_per_account"}
	case mem > l.cfg.StreamMemory:
		return nil, &Exceeded{Limit: "stream_memory"}
	}
	l.mu.Lock()
	if l.accMem[account]+mem > l.cfg.AccountMemory {
		l.mu.Unlock()
		return nil, &Exceeded{Limit: "stream_memory_per_account", RetryAfter: 2 * time.Second}
	}
	l.accMem[account] += mem
	l.mu.Unlock()
	unaccount := func() {
		l.mu.Lock()
		if l.accMem[account] -= mem; l.accMem[account] <= 0 {
			delete(l.accMem, account)
		}
		l.mu.Unlock()
	}
	if !l.mem.TryAcquire(mem) {
		unaccount()
		return nil, &Exceeded{Limit: "stream_memory", RetryAfter: 2 * time.Second}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mem.Release(mem)
			unaccount()
		})
	}, nil
}

// Memory reserves mem more bytes of account's share of the memory budget
// for a stream that already holds a slot, for buffers it finds it needs
// only once it has started (a transcript that is parsed whole). It never
// waits: when the account's share or the budget cannot hold mem it returns
// an *Exceeded. The returned release gives the bytes back; call it exactly
// once.
func (l *Limiter) Memory(account string, mem int64) (release func(), err error) {
	return l.reserve(account, max(mem, 0))
}

func (l *Limiter) drop(pk, ak key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for m, k := range map[*map[key]int]key{&l.principal: pk, &l.account: ak} {
		if (*m)[k]--; (*m)[k] <= 0 {
			delete(*m, k)
		}
	}
}

// Active returns how many streams of kind account has open.
func (l *Limiter) Active(kind Kind, account string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.account[key{kind, account}]
}

// ScanCostPerByte is what matching one byte of text costs, at worst, for
// each instruction of a blocking rule's program: about 6 ns on the
// machines measured (docs/privacy.md). Scan reserves a scan's worst case
// with it before the scan runs.
const ScanCostPerByte = 6 * time.Nanosecond

// ScanCost is the worst-case cost of matching n bytes against rules whose
// programs total insts instructions: the estimate Scan takes.
func ScanCost(n, insts int) time.Duration {
	return time.Duration(n) * time.Duration(insts) * ScanCostPerByte
}

// Scan runs scan, which matches an account's blocking rules and costs at
// most about estimate, within the account's scan share (ScanShare,
// ScanBurst). It waits while the account's balance is negative (or returns
// ctx's error once ctx ends), takes estimate from the balance before scan
// runs, so that concurrent and repeated scans of an account in debt wait
// before they cost anything, and settles the difference with the time scan
// really took afterwards.
func (l *Limiter) Scan(ctx context.Context, account string, estimate time.Duration, scan func()) error {
	b := l.scanBucket(account)
	for {
		wait := b.take(l.now(), estimate)
		if wait <= 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	began := time.Now()
	scan()
	// Wall time counts the time the scan waited for a core too, which
	// other tenants' work lengthens: a scan is charged at most its
	// estimate, already a worst case.
	b.settle(l.now(), max(estimate-time.Since(began), 0))
	return nil
}

func (l *Limiter) scanBucket(account string) *scanBucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.scans[account]
	if b == nil {
		if len(l.scans) >= maxProbeLimiters {
			now := l.now()
			for a, s := range l.scans {
				if s.full(now) {
					delete(l.scans, a)
				}
			}
		}
		b = &scanBucket{share: l.cfg.ScanShare, burst: l.cfg.ScanBurst, balance: l.cfg.ScanBurst, last: l.now()}
		l.scans[account] = b
	}
	return b
}

// scanBucket is an account's balance of scanning time: it refills at share
// seconds per second up to burst, and goes negative by what scans reserve.
type scanBucket struct {
	mu      sync.Mutex
	share   float64
	burst   time.Duration
	balance time.Duration
	last    time.Time
}

func (b *scanBucket) refill(now time.Time) {
	if now.After(b.last) {
		b.balance += time.Duration(float64(now.Sub(b.last)) * b.share)
		b.last = now
	}
	b.balance = min(b.balance, b.burst)
}

// take reserves cost when the balance is not negative and returns 0, or
// returns how long until it no longer is.
func (b *scanBucket) take(now time.Time, cost time.Duration) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	if b.balance >= 0 {
		b.balance -= cost
		return 0
	}
	if b.share <= 0 {
		return time.Hour
	}
	return time.Duration(float64(-b.balance)/b.share) + time.Millisecond
}

// settle gives back what a scan reserved and did not use (or takes what
// it used beyond its reservation, when refund is negative).
func (b *scanBucket) settle(now time.Time, refund time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	b.balance = min(b.balance+refund, b.burst)
}

func (b *scanBucket) full(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.balance >= b.burst
}

// KeyProbe takes one token of account's key-probe rate. It returns an
// *Exceeded, with the time until the next token, when none is left.
func (l *Limiter) KeyProbe(account string) error {
	l.mu.Lock()
	lim := l.probes[account]
	if lim == nil {
		if len(l.probes) >= maxProbeLimiters {
			now := l.now()
			for a, p := range l.probes {
				if p.TokensAt(now) >= float64(p.Burst()) {
					delete(l.probes, a)
				}
			}
		}
		lim = rate.NewLimiter(rate.Limit(l.cfg.KeyProbesPerSecond), l.cfg.KeyProbeBurst)
		l.probes[account] = lim
	}
	l.mu.Unlock()
	// AllowN takes a token only when one is there. (A reservation that is
	// cancelled when it would have to wait gives back tokens that
	// concurrent callers may already have counted on: under load that let
	// more probes through than the limit.)
	now := l.now()
	if lim.AllowN(now, 1) {
		return nil
	}
	wait := time.Second
	if r := float64(lim.Limit()); r > 0 {
		wait = time.Duration((1 - lim.TokensAt(now)) / r * float64(time.Second))
	}
	return &Exceeded{Limit: "key_probes_per_account", RetryAfter: max(wait, time.Millisecond)}
}
