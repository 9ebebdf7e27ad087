package gateway

import (
	"errors"
	"io"
	"sync"
)

// A read fetches from the store ahead of the decrypter, so that storage
// reads overlap with decryption and sending, while memory per stream stays
// bounded: depth blocks of blockSize bytes. (Uploads hand ciphertext to the
// store through io.Pipe instead: see writeUpload.)
const (
	pipeBlock = 256 << 10
	pipeDepth = 4
)

var blockPool = sync.Pool{New: func() any { b := make([]byte, pipeBlock); return &b }}

// blockPipe carries pooled blocks from a fetching goroutine to a reader,
// up to depth of them in flight. closeWithError ends the stream for the
// reader; the reader's Close ends it for the fetcher.
type blockPipe struct {
	ch   chan *[]byte // full blocks, each a slice of a pooled buffer
	mu   sync.Mutex
	err  error         // the fetcher's close error (io.EOF when closed cleanly)
	done chan struct{} // closed when the reader gives up
	once sync.Once

	rblk *[]byte // block being drained (reader) - reader goroutine only
	rbuf []byte
}

func newBlockPipe(depth int) *blockPipe {
	return &blockPipe{ch: make(chan *[]byte, depth), done: make(chan struct{})}
}

// pipeReader is the reading end of a blockPipe.
type pipeReader struct{ p *blockPipe }

// closeWithError ends the stream: nil means a clean end (the reader sees
// io.EOF after the blocks sent), anything else is returned to the reader
// at once.
func (p *blockPipe) closeWithError(err error) {
	if err == nil {
		err = io.EOF
	}
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.once.Do(func() { close(p.ch) })
}

func (p *blockPipe) writerErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// errReaderClosed is what the fetcher ends with once the reader has closed.
var errReaderClosed = errors.New("gateway: pipe reader closed")

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
					p.closeWithError(errReaderClosed)
					return
				}
			} else {
				blockPool.Put(blk)
			}
			switch {
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				p.closeWithError(nil)
				return
			case err != nil:
				p.closeWithError(err)
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
