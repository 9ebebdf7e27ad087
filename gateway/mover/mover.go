// Package mover carries staged ciphertext from the staging area of the SIP
// zone's region to the artifact's storage region. The staging prefix of each
// region's bucket is the queue: the mover lists it, copies each object to its
// storage region (server-side when both sit on one endpoint, streamed
// otherwise; it never decrypts), verifies the copy against its own digest of
// the source (the full-object CRC-32C that the store checked on write when it
// keeps one, as MinIO and S3 do; else a SHA-256 read-back), and only then
// deletes the staged copy. Every step is idempotent,
// so a crash at any instant leaves a state the next pass finishes, and several
// movers may run at once.
package mover

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/store"
)

// Steps of a move, named for hooks and logs.
const (
	StepStart    = "start"    // the staged object was found
	StepMidCopy  = "mid-copy" // half of a streamed copy has been sent
	StepCopied   = "copied"   // the storage copy is written, not yet verified
	StepVerified = "verified" // the storage copy matches the staged one
	StepDeleted  = "deleted"  // the staged copy is gone: the move is done
)

// Config configures a Mover.
type Config struct {
	Topology *policy.Topology
	Logger   *slog.Logger
	// Registerer receives the mover's metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Interval between passes when there is nothing to do; default 1s.
	Interval time.Duration
	// Batch is how many staged objects one list call returns; default 100.
	Batch int
	// Workers is how many moves run at once; default 4.
	Workers int
	// Hook, when set, is called at every step of every move (fault
	// injection for crash tests). A non-nil error aborts the move there,
	// leaving what a crash at that instant would leave.
	Hook func(step string, ref layout.Ref) error
	// Records, when set, tells the mover which staged objects still
	// belong to an artifact. An object whose artifact needs a record and
	// has none is never moved: it is an upload whose record is still
	// being written, or the remains of one that failed or was purged
	// (the sweeper finishes those). The mover never deletes such an
	// object on that ground alone: a mover pointed at the wrong control
	// store would find no record for anything. Once older than OrphanAge
	// it is counted (sealgate_mover_orphans_staged) and logged. The mover
	// asks again after its copy is verified: a record that existed before
	// the copy and is gone after it was destroyed by a purge, whose
	// deletes may have run before the copy landed, so the mover deletes
	// its copy and the staged object itself.
	Records Records
	// OrphanAge is how old a staged object without its record must be to
	// be reported; default 15 minutes, far longer than an upload takes to
	// write its record.
	OrphanAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Records answers the mover's questions about artifact records.
type Records interface {
	// Exists reports whether ref's record exists. Records are destroyed
	// only when the artifact is gone for good (purged, or an upload that
	// failed), and an artifact id is never reused.
	Exists(ctx context.Context, ref layout.Ref) (bool, error)
	// Needs reports whether the object under key in b can be read only
	// with ref's record (its header names an external share). Objects
	// written before records existed need none. A header that cannot be
	// read is reported as needing none: the mover never deletes what it
	// does not understand.
	Needs(ctx context.Context, b store.Bucket, key string, ref layout.Ref) (bool, error)
}

// Mover moves staged objects to their storage regions.
type Mover struct {
	cfg  Config
	log  *slog.Logger
	m    metrics
	wake chan struct{}

	mu      sync.Mutex
	backoff map[string]backoff // by region
	kept    sync.Map           // "region/account" whose staging folder has its marker
}

type backoff struct {
	until time.Time
	delay time.Duration
}

// New returns a Mover.
func New(cfg Config) *Mover {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OrphanAge <= 0 {
		cfg.OrphanAge = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Mover{cfg: cfg, log: cfg.Logger, m: newMetrics(cfg.Registerer), wake: make(chan struct{}, 1), backoff: map[string]backoff{}}
}

// Notify wakes the mover for a new staged object; it never blocks.
func (m *Mover) Notify() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run makes passes until ctx ends. A pass that moved something is followed
// at once by another; otherwise the mover sleeps for the interval or until
// Notify.
func (m *Mover) Run(ctx context.Context) error {
	for {
		moved, err := m.Pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			m.log.WarnContext(ctx, "mover pass incomplete", "err", err)
		}
		if moved > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		case <-time.After(m.cfg.Interval):
		}
	}
}

// Pass lists every region's staging area once and moves what it finds. It
// returns how many objects it moved and the first error (the other moves go
// on). Regions that are down are skipped until their backoff ends.
func (m *Mover) Pass(ctx context.Context) (int, error) {
	var (
		moved    int
		firstErr error
		mu       sync.Mutex
		oldest   time.Time
		staged   int
		orphans  int
	)
	note := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			moved++
		} else if errors.Is(err, errOrphan) {
			orphans++
		} else if errors.Is(err, errWaiting) || errors.Is(err, errRemoved) {
			return
		} else if firstErr == nil {
			firstErr = err
		}
	}
	jobs := make(chan layout.Ref)
	var wg sync.WaitGroup
	for i := 0; i < m.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ref := range jobs {
				note(m.move(ctx, ref))
			}
		}()
	}
	for _, region := range m.cfg.Topology.Regions() {
		if !m.ready(region) {
			continue
		}
		b, err := m.cfg.Topology.Bucket(region)
		if err != nil {
			continue
		}
		after := ""
		for {
			objs, err := b.List(ctx, layout.StagingPrefix, after, m.cfg.Batch)
			if err != nil {
				m.failed(region, err)
				note(err)
				break
			}
			for _, o := range objs {
				after = o.Key
				ref, ok := layout.ParseStagingKey(o.Key)
				if !ok || ref.Staging != region {
					continue // not ours to move: never touch unknown keys
				}
				staged++
				if t, ok := layout.IDTime(ref.ID); ok && (oldest.IsZero() || t.Before(oldest)) {
					oldest = t
				}
				if !m.ready(ref.Storage) {
					continue
				}
				select {
				case jobs <- ref:
				case <-ctx.Done():
				}
			}
			if len(objs) < m.cfg.Batch || ctx.Err() != nil {
				break
			}
		}
	}
	close(jobs)
	wg.Wait()
	m.m.staged.Set(float64(staged))
	m.m.orphans.Set(float64(orphans))
	if oldest.IsZero() {
		m.m.lag.Set(0)
	} else {
		m.m.lag.Set(time.Since(oldest).Seconds())
	}
	return moved, firstErr
}

// ready reports whether region is out of backoff.
func (m *Mover) ready(region string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Now().After(m.backoff[region].until)
}

// failed puts region in backoff when err says its store is unavailable.
func (m *Mover) failed(region string, err error) {
	if !errors.Is(err, store.ErrUnavailable) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.backoff[region]
	b.delay = min(max(2*b.delay, time.Second), time.Minute)
	b.until = time.Now().Add(b.delay)
	m.backoff[region] = b
	m.log.Warn("region unavailable: backing off", "region", region, "retry_in", b.delay)
}

// recovered clears region's backoff.
func (m *Mover) recovered(region string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.backoff, region)
}

func (m *Mover) hook(step string, ref layout.Ref) error {
	if m.cfg.Hook != nil {
		return m.cfg.Hook(step, ref)
	}
	return nil
}

// SetHook sets the step hook; call it before Run.
func (m *Mover) SetHook(h func(step string, ref layout.Ref) error) { m.cfg.Hook = h }
