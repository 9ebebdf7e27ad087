package filestore

import "sync"

// maxDurableDirs bounds the directories a Bucket remembers as durable; past
// it the set starts over (a forgotten directory only costs one more fsync).
const maxDurableDirs = 1 << 14

// durableDirs is the set of directories whose entry in their parent this
// Bucket has made durable: it created the directory or found it, and then
// fsynced the parent. A Put into such a directory need not fsync its
// ancestors again. Every fsync costs a flush of the disk's write cache even
// when nothing changed, and a record and an index entry of an upload sit
// three and four directories deep: without the set an upload made the disk
// flush nine times, with it four.
//
// A directory is forgotten before this Bucket removes it, and a mark taken
// across any removal is dropped (gen), so a remembered directory is the same
// one that was synced. A directory removed and recreated by another process
// sharing the folder is not seen; that process fsyncs the parent before it
// acknowledges its own write, and journaling file systems (ext4, xfs)
// commit the mkdir no later than the later fsync of the new file's
// directory, so the window is only theoretical there.
type durableDirs struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]struct{}
}

// generation returns the current removal generation, to pass to mark.
func (d *durableDirs) generation() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen
}

// known reports whether dir is remembered as durable.
func (d *durableDirs) known(dir string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.m[dir]
	return ok
}

// mark remembers dir as durable, unless a directory was removed since gen
// was read (the dir synced may not be the one there now).
func (d *durableDirs) mark(dir string, gen uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if gen != d.gen {
		return
	}
	if d.m == nil || len(d.m) >= maxDurableDirs {
		d.m = make(map[string]struct{})
	}
	d.m[dir] = struct{}{}
}

// remove runs rm (the removal of dir) under the set's lock and, if it
// removed dir, forgets dir and drops every mark in progress (they may be of
// dir).
func (d *durableDirs) remove(dir string, rm func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := rm(); err != nil {
		return err
	}
	d.gen++
	delete(d.m, dir)
	return nil
}

// dirSyncs runs the fsyncs of a Bucket's directories as group commits: a
// caller whose change to a directory is made joins the next sync of that
// directory, and that sync starts only after every caller in it has joined,
// so one fsync makes all their changes durable. Under concurrent writes to
// one directory (every upload of an account writes its record in the same
// one) that is one disk cache flush for a group instead of one each.
type dirSyncs struct {
	mu   sync.Mutex
	cond *sync.Cond
	m    map[string]*dirSync
}

// dirSync is the state of one directory: whether a sync of it runs, and
// the round that callers arriving meanwhile join.
type dirSync struct {
	running bool
	next    *syncRound
}

// syncRound is one fsync and the callers it covers.
type syncRound struct {
	joined   int // callers in the round (for tests)
	finished bool
	err      error
}

// sync makes durable every change to dir made before it was called.
func (d *dirSyncs) sync(dir string) error {
	d.mu.Lock()
	if d.m == nil {
		d.m = make(map[string]*dirSync)
		d.cond = sync.NewCond(&d.mu)
	}
	s := d.m[dir]
	if s == nil {
		s = &dirSync{}
		d.m[dir] = s
	}
	if s.next == nil {
		s.next = &syncRound{}
	}
	r := s.next
	r.joined++
	// A sync that is running may have started before this caller's
	// change: wait for it to end, then lead this round unless another
	// caller of it already did.
	for s.running && !r.finished {
		d.cond.Wait()
	}
	if r.finished {
		d.mu.Unlock()
		return r.err
	}
	s.running = true
	s.next = nil
	d.mu.Unlock()

	err := syncDir(dir)

	d.mu.Lock()
	r.err, r.finished = err, true
	s.running = false
	if s.next == nil {
		delete(d.m, dir)
	}
	d.cond.Broadcast()
	d.mu.Unlock()
	return err
}
