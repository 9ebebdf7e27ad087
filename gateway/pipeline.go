package gateway

import (
	"errors"
	"io"
	"sync"
)

// Pipeline buffers let the three stages of an upload (receive, encrypt,
// store) or a read (fetch, decrypt, send) overlap instead of taking turns,
// while memory per stream stays bounded: depth blocks of blockSize bytes.
const (
	pipeBlock = 256 << 10
	pipeDepth = 4
)

var blockPool = sync.Pool{New: func() any { b := make([]byte, pipeBlock); return &b }}

// blockPipe is an in-memory pipe that holds up to depth blocks, so a writer
// can run ahead of its reader by that much. CloseWithError on either side
// ends the other side with the error.
type blockPipe struct {
	ch   chan *[]byte // full blocks, each a slice of a pooled buffer
	mu   sync.Mutex
	err  error         // the writer's close error (io.EOF when closed cleanly)
	done chan struct{} // closed when the reader gives up
	once sync.Once

	cur  *[]byte // block being filled (writer) - writer goroutine only
	rblk *[]byte // block being drained (reader) - reader goroutine only
	rbuf []byte
}

func newBlockPipe(depth int) *blockPipe {
	return &blockPipe{ch: make(chan *[]byte, depth), done: make(chan struct{})}
}

// pipeWriter and pipeReader are the two ends of a blockPipe.
type pipeWriter struct{ p *blockPipe }
type pipeReader struct{ p *blockPipe }

// Write copies data into blocks and hands each full block to the reader,
// waiting while depth blocks are in flight. It returns the reader's error
// once the reader has closed.
func (w pipeWriter) Write(data []byte) (int, error) {
	p := w.p
	n := 0
	for len(data) > 0 {
		if p.cur == nil {
			p.cur = blockPool.Get().(*[]byte)
			*p.cur = (*p.cur)[:0]
		}
		b := *p.cur
		k := copy(b[len(b):cap(b)], data)
		*p.cur = b[:len(b)+k]
		data, n = data[k:], n+k
		if len(*p.cur) == cap(*p.cur) {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (w pipeWriter) flush() error {
	p := w.p
	if p.cur == nil || len(*p.cur) == 0 {
		return nil
	}
	select {
	case p.ch <- p.cur:
		p.cur = nil
		return nil
	case <-p.done:
		return p.readerErr()
	}
}

// CloseWithError ends the stream: nil means a clean end (the reader sees
// io.EOF after the data), anything else is returned to the reader at once.
func (w pipeWriter) CloseWithError(err error) error {
	p := w.p
	if err == nil {
		if ferr := w.flush(); ferr != nil {
			return ferr
		}
		err = io.EOF
	}
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.once.Do(func() { close(p.ch) })
	return nil
}

// Close is CloseWithError(nil).
func (w pipeWriter) Close() error { return w.CloseWithError(nil) }

func (p *blockPipe) writerErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// errReaderClosed is what a writer gets once the reader has closed.
var errReaderClosed = errors.New("gateway: pipe reader closed")

func (p *blockPipe) readerErr() error { return errReaderClosed }

// Read returns buffered data; after the writer closed, its error.
func (r pipeReader) Read(out []byte) (int, error) {
	p := r.p
	for len(p.rbuf) == 0 {
		if p.rblk != nil {
			blockPool.Put(p.rblk)
			p.rblk = nil
		}
		if err := p.writerErr(); err != nil && err != io.EOF {
			return 0, err // an abort wins over buffered data
		}
		blk, ok := <-p.ch
		if !ok {
			return 0, p.writerErr()
		}
		p.rblk, p.rbuf = blk, *blk
	}
	n := copy(out, p.rbuf)
	p.rbuf = p.rbuf[n:]
	return n, nil
}

// Close tells the writer that nothing more will be read.
func (r pipeReader) Close() error {
	r.p.mu.Lock()
	select {
	case <-r.p.done:
	default:
		close(r.p.done)
	}
	r.p.mu.Unlock()
	return nil
}

// readAhead returns a reader of r's bytes that fetches up to pipeDepth
// blocks ahead in a goroutine, reading straight into pooled blocks, so
// storage reads overlap with what the caller does with the data. Close stops
// the goroutine and closes r.
func readAhead(r io.ReadCloser) io.ReadCloser {
	p := newBlockPipe(pipeDepth)
	go func() {
		for {
			blk := blockPool.Get().(*[]byte)
			n, err := io.ReadFull(r, (*blk)[:cap(*blk)])
			if n > 0 {
				*blk = (*blk)[:n]
				select {
				case p.ch <- blk:
				case <-p.done:
					blockPool.Put(blk)
					pipeWriter{p}.CloseWithError(errReaderClosed)
					return
				}
			} else {
				blockPool.Put(blk)
			}
			switch {
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				pipeWriter{p}.CloseWithError(nil)
				return
			case err != nil:
				pipeWriter{p}.CloseWithError(err)
				return
			}
		}
	}()
	return &readAheadCloser{pipeReader: pipeReader{p}, src: r}
}

type readAheadCloser struct {
	pipeReader
	src io.Closer
}

func (r *readAheadCloser) Close() error {
	r.pipeReader.Close()
	return r.src.Close()
}

// lazyReadAhead reads src directly until after bytes have been consumed and
// only then starts a readAhead: a reader that stalls early (a client that
// takes one message and stops) holds no read-ahead blocks.
type lazyReadAhead struct {
	src      io.ReadCloser
	after, n int64
	ra       io.ReadCloser
}

func newLazyReadAhead(src io.ReadCloser, after int64) *lazyReadAhead {
	return &lazyReadAhead{src: src, after: after}
}

func (l *lazyReadAhead) Read(p []byte) (int, error) {
	if l.ra != nil {
		return l.ra.Read(p)
	}
	n, err := l.src.Read(p)
	l.n += int64(n)
	if err == nil && l.n >= l.after {
		l.ra = readAhead(l.src)
	}
	return n, err
}

func (l *lazyReadAhead) Close() error {
	if l.ra != nil {
		return l.ra.Close()
	}
	return l.src.Close()
}
