package mover

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"time"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/store"
)

// serverSideCopier is a bucket that can copy to another bucket on the same
// endpoint without the bytes passing through the mover (miniostore).
type serverSideCopier interface {
	CanCopyTo(dst store.Bucket) bool
	CopyTo(ctx context.Context, srcKey string, dst store.Bucket, dstKey string) error
}

var errMismatch = errors.New("mover: storage copy differs from the staged object")

// errWaiting ends a move that must wait for a later pass: the staged
// object's record is not written yet. It is neither a move nor a failure.
var errWaiting = errors.New("mover: staged object has no record yet")

// errRemoved ends a move whose copy was deleted because its artifact's
// record was destroyed meanwhile.
var errRemoved = errors.New("mover: orphan removed")

// errOrphan ends a move whose staged object has had no record for longer
// than the orphan age: it is left in place and reported.
var errOrphan = errors.New("mover: staged object without a record")

// move carries one staged object to its storage region. Each step can be
// repeated: a missing staged object means the move is done; an existing
// storage copy that matches is kept; one that does not is overwritten.
func (m *Mover) move(ctx context.Context, ref layout.Ref) (err error) {
	start := time.Now()
	src, err := m.cfg.Topology.Bucket(ref.Staging)
	if err != nil {
		return err
	}
	dst, err := m.cfg.Topology.Bucket(ref.Storage)
	if err != nil {
		return err // a region this topology lacks: leave it staged
	}
	defer func() {
		switch {
		case errors.Is(err, errWaiting), errors.Is(err, errRemoved), errors.Is(err, errOrphan):
		case err == nil:
			m.m.moves.WithLabelValues("ok").Inc()
			m.recovered(ref.Storage)
		case errors.Is(err, store.ErrUnavailable):
			m.m.moves.WithLabelValues("unavailable").Inc()
			var re *regionError
			if errors.As(err, &re) {
				m.failed(re.region, err)
			} else {
				m.failed(ref.Storage, err)
			}
		default:
			m.m.moves.WithLabelValues("error").Inc()
			m.log.WarnContext(ctx, "move failed", "artifact", ref.Name(), "err", err)
		}
	}()
	if err := m.hook(StepStart, ref); err != nil {
		return err
	}
	info, err := src.Stat(ctx, ref.StagingKey())
	if errors.Is(err, store.ErrNotFound) {
		return nil // another mover finished it
	}
	if err != nil {
		return inRegion(ref.Staging, err)
	}
	ok, recheck, err := m.checkRecord(ctx, src, ref, info)
	if err != nil || !ok {
		return err
	}
	srcSum, err := m.copyIfNeeded(ctx, src, dst, ref, info)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the staged copy went away while we copied: done elsewhere
	}
	if err != nil {
		return err
	}
	if err := m.hook(StepCopied, ref); err != nil {
		return err
	}
	if err := verifyCopy(ctx, dst, ref.StoredKey(), info.Size, srcSum, src, ref.StagingKey()); err != nil {
		return fmt.Errorf("%w: %s: %v", errMismatch, ref.Name(), err)
	}
	if err := m.hook(StepVerified, ref); err != nil {
		return err
	}
	if recheck {
		// A purge (or a failed upload's cleanup) may have destroyed the
		// record and run its deletes while the copy was in flight, so
		// that the copy landed after them: then it is this mover's to
		// remove. A purge that destroys the record after this check
		// deletes after the copy landed, so nothing is left either way.
		if ok, err := m.cfg.Records.Exists(ctx, ref); err != nil {
			return err
		} else if !ok {
			return m.dropOrphan(ctx, src, dst, ref, "its record was destroyed while it was copied")
		}
	}
	if err := m.keepDir(ctx, src, ref); err != nil {
		return err
	}
	// The staged object must still be the one that was copied: a rewrap may
	// have rewritten it meanwhile, and then the next pass copies it again.
	if now, err := src.Stat(ctx, ref.StagingKey()); err != nil || now.Size != info.Size || !now.ModTime.Equal(info.ModTime) {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	}
	if err := src.Delete(ctx, ref.StagingKey()); err != nil {
		return err
	}
	if err := m.hook(StepDeleted, ref); err != nil {
		return err
	}
	m.m.bytes.Add(float64(info.Size))
	m.log.DebugContext(ctx, "artifact moved", "artifact", ref.Name(), "from", ref.Staging, "to", ref.Storage,
		"bytes", info.Size, "took", time.Since(start))
	return nil
}

// checkRecord decides whether the staged object may be moved (move) and
// whether its record must be checked again once the copy is verified
// (recheck). An object that needs a record and has none is not moved, and
// not deleted either (see Config.Records): it waits, and once older than
// OrphanAge it is reported. Objects that need no record (written before
// records existed), and every object when Records is not set, are moved
// as they are.
func (m *Mover) checkRecord(ctx context.Context, src store.Bucket, ref layout.Ref, info store.ObjectInfo) (move, recheck bool, err error) {
	r := m.cfg.Records
	if r == nil {
		return true, false, nil
	}
	ok, err := r.Exists(ctx, ref)
	if err != nil || ok {
		return ok, ok, err
	}
	needs, err := r.Needs(ctx, src, ref.StagingKey(), ref)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, false, nil // gone meanwhile: nothing to move
	case err != nil:
		return false, false, inRegion(ref.Staging, err)
	case !needs:
		return true, false, nil
	case m.cfg.Now().Sub(info.ModTime) < m.cfg.OrphanAge:
		return false, false, errWaiting
	}
	m.log.DebugContext(ctx, "staged object without a record: left in place", "artifact", ref.Name(), "staged", info.ModTime)
	return false, false, errOrphan
}

// dropOrphan deletes both copies of an object whose record was destroyed
// while the mover copied it: the stored one first, so that a crash in
// between leaves the staged one, which the purge's sweeper entry or a
// later look finds again.
func (m *Mover) dropOrphan(ctx context.Context, src, dst store.Bucket, ref layout.Ref, why string) error {
	if err := dst.Delete(ctx, ref.StoredKey()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := src.Delete(ctx, ref.StagingKey()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	m.m.orphan.Inc()
	m.log.WarnContext(ctx, "orphan removed: the artifact's record is gone", "artifact", ref.Name(), "why", why)
	return errRemoved
}

// copyIfNeeded makes the storage copy match the staged object and returns
// the staged object's digests, computed by the mover from the bytes it read.
func (m *Mover) copyIfNeeded(ctx context.Context, src, dst store.Bucket, ref layout.Ref, info store.ObjectInfo) (sums, error) {
	if di, err := dst.Stat(ctx, ref.StoredKey()); err == nil && di.Size == info.Size {
		srcSum, err := digest(ctx, src, ref.StagingKey(), needsSHA(dst))
		if err == nil {
			err = readAsStored(info, srcSum)
		}
		if err != nil {
			return sums{}, err
		}
		if verifyCopy(ctx, dst, ref.StoredKey(), info.Size, srcSum, src, ref.StagingKey()) == nil {
			return srcSum, nil // copied by an earlier pass that did not finish
		}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return sums{}, err
	}
	if c, ok := src.(serverSideCopier); ok && c.CanCopyTo(dst) {
		srcSum, err := digest(ctx, src, ref.StagingKey(), needsSHA(dst))
		if err == nil {
			err = readAsStored(info, srcSum)
		}
		if err != nil {
			return sums{}, err
		}
		if err := m.hook(StepMidCopy, ref); err != nil {
			return sums{}, err
		}
		return srcSum, c.CopyTo(ctx, ref.StagingKey(), dst, ref.StoredKey())
	}
	rc, err := src.Get(ctx, ref.StagingKey(), 0, -1)
	if err != nil {
		return sums{}, err
	}
	defer rc.Close()
	d := newDigester(needsSHA(dst))
	r := &hookReader{r: io.TeeReader(rc, d), at: info.Size / 2, fire: func() error { return m.hook(StepMidCopy, ref) }}
	if err := dst.Put(ctx, ref.StoredKey(), r, info.Size); err != nil {
		return sums{}, err
	}
	// A copy of bytes that were damaged on their way from the staging
	// store matches its own digests: only the CRC the staging store kept
	// when the object was written tells. (The copy is left for the next
	// pass, which finds it differs and copies again.)
	srcSum := d.sums()
	if err := readAsStored(info, srcSum); err != nil {
		return sums{}, err
	}
	return srcSum, nil
}

// readAsStored checks the digests of what the mover read of a staged
// object against the full-object CRC-32C its store kept when it was
// written, when the store keeps one.
func readAsStored(info store.ObjectInfo, got sums) error {
	if info.HasCRC32C && info.CRC32C != got.crc32c {
		return fmt.Errorf("staged object read with CRC-32C %08x, stored with %08x: read again next pass", got.crc32c, info.CRC32C)
	}
	return nil
}

// sums are the mover's own digests of an object: CRC-32C to compare with a
// store that checked the same CRC on write, and SHA-256 (nil when not
// computed) to compare with a copy read back from one that does not.
type sums struct {
	sha256 []byte
	crc32c uint32
}

// crcKeeper is a bucket that keeps the full-object CRC-32C of what it
// stores, checked against the bytes it received (miniostore: MinIO and S3).
type crcKeeper interface {
	KeepsCRC32C() bool
}

// needsSHA reports whether a copy to dst is verified by SHA-256: when dst
// does not say it keeps a CRC-32C. SHA-256 costs the mover more CPU than
// the rest of a streamed copy (about 0.5 s per GiB here), so it is skipped
// where the CRC answers; verifyCopy computes it after all if the store
// turns out to keep none.
func needsSHA(dst store.Bucket) bool {
	k, ok := dst.(crcKeeper)
	return !ok || !k.KeepsCRC32C()
}

// digester computes the digests in one pass.
type digester struct {
	sha hash.Hash // nil: no SHA-256
	crc hash.Hash32
}

func newDigester(withSHA bool) *digester {
	d := &digester{crc: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	if withSHA {
		d.sha = sha256.New()
	}
	return d
}

func (d *digester) Write(p []byte) (int, error) {
	if d.sha != nil {
		d.sha.Write(p)
	}
	d.crc.Write(p)
	return len(p), nil
}

func (d *digester) sums() sums {
	s := sums{crc32c: d.crc.Sum32()}
	if d.sha != nil {
		s.sha256 = d.sha.Sum(nil)
	}
	return s
}

// verifyCopy checks the storage copy against the staged object's digests.
// A store that keeps a full-object CRC-32C, which it checked against the
// bytes it received, answers from its metadata; otherwise the copy is read
// back and its SHA-256 compared with the staged object's (read again from
// src when want has none).
func verifyCopy(ctx context.Context, dst store.Bucket, key string, size int64, want sums, src store.Bucket, srcKey string) error {
	info, err := dst.Stat(ctx, key)
	if err != nil {
		return err
	}
	if info.Size != size {
		return fmt.Errorf("size %d, want %d", info.Size, size)
	}
	if info.HasCRC32C {
		if info.CRC32C != want.crc32c {
			return fmt.Errorf("CRC-32C %08x, want %08x", info.CRC32C, want.crc32c)
		}
		return nil
	}
	if want.sha256 == nil {
		var err error
		if want, err = digest(ctx, src, srcKey, true); err != nil {
			return err
		}
	}
	got, err := digest(ctx, dst, key, true)
	if err != nil {
		return err
	}
	if !bytes.Equal(got.sha256, want.sha256) {
		return errors.New("SHA-256 differs")
	}
	return nil
}

// digest returns the digests of an object, read in full: its CRC-32C,
// and its SHA-256 when withSHA.
func digest(ctx context.Context, b store.Bucket, key string, withSHA bool) (sums, error) {
	rc, err := b.Get(ctx, key, 0, -1)
	if err != nil {
		return sums{}, err
	}
	defer rc.Close()
	d := newDigester(withSHA)
	if _, err := io.Copy(d, rc); err != nil {
		return sums{}, err
	}
	return d.sums(), nil
}

// hookReader calls fire once, after at bytes have been read; an error from
// fire fails the read, so the copy stops there.
type hookReader struct {
	r     io.Reader
	n, at int64
	fire  func() error
	fired bool
}

func (h *hookReader) Read(p []byte) (int, error) {
	if !h.fired && h.n+int64(len(p)) > h.at && h.at > 0 {
		p = p[:max(h.at-h.n, 1)]
	}
	n, err := h.r.Read(p)
	h.n += int64(n)
	if !h.fired && h.n >= h.at && h.at > 0 {
		h.fired = true
		if ferr := h.fire(); ferr != nil {
			return n, ferr
		}
	}
	return n, err
}

// keepName is a zero-byte object kept in every account's staging folder. Some
// stores (MinIO on a single drive) remove a folder when its last object is
// deleted, and a PUT racing with that removal fails; with the marker in
// place, the mover's deletes never empty a folder an upload may be writing
// into. Neither the mover nor listings take it for an artifact.
const keepName = ".keep"

// keepDir makes sure the staging folder of ref's account holds the marker,
// once per account and region for the life of the mover.
func (m *Mover) keepDir(ctx context.Context, b store.Bucket, ref layout.Ref) error {
	k := ref.Staging + "/" + ref.Account
	if _, ok := m.kept.Load(k); ok {
		return nil
	}
	key := layout.StagingPrefix + ref.Account + "/" + keepName
	if _, err := b.Stat(ctx, key); errors.Is(err, store.ErrNotFound) {
		if err := b.Put(ctx, key, bytes.NewReader(nil), 0); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	m.kept.Store(k, true)
	return nil
}

// regionError marks an error of the staging region's store, so the mover
// backs off the region that failed.
type regionError struct {
	region string
	err    error
}

func (e *regionError) Error() string { return e.err.Error() }
func (e *regionError) Unwrap() error { return e.err }

// inRegion tags err as coming from region's store.
func inRegion(region string, err error) error {
	if err == nil {
		return nil
	}
	return &regionError{region: region, err: err}
}
