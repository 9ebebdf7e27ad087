package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sealgate/sealgate/gateway/chunks"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// runRead implements `sealctl read`: it streams an artifact's plaintext to
// stdout or, with -o, to a file that appears only once the read succeeded.
func runRead(ctx context.Context, a *app, args []string) error {
	const cmd = "read"
	fs, g := a.newFlagSet(cmd, "read NAME [-o FILE]")
	var out string
	fs.StringVar(&out, "o", "", "write the content to `file` instead of stdout")
	var pf progressFlags
	pf.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(cmd, "want exactly one NAME, got %d arguments", len(pos))
	}
	c, err := g.connect(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	name, err := c.artifactName(pos[0])
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.artifacts.ReadArtifact(ctx, &sealgatev1.ReadArtifactRequest{Name: name})
	if err != nil {
		return err
	}
	// Receive the first message before creating any file, so that a wrong
	// name or a revoked key leaves nothing behind.
	first, err := stream.Recv()
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	size := int64(-1)
	if first.GetArtifact() != nil {
		size = first.GetArtifact().GetSizeBytes()
	}
	sink, err := openOutput(a, out)
	if err != nil {
		return err
	}
	bar := a.newProgress(pf, size, "reading")
	err = copyStream(sink, stream, first, size, bar)
	if err == nil {
		err = sink.commit()
	}
	if err != nil {
		bar.abort()
		sink.discard()
		return err
	}
	bar.finish()
	return nil
}

// copyStream writes the chunk of first (nil when the stream was empty) and
// of every further message of stream to w. It returns the stream's status
// error, a write error, or an error when the stream ended early or ran past
// want bytes (want is negative when unknown).
func copyStream(w io.Writer, stream sealgatev1.ArtifactService_ReadArtifactClient, first *sealgatev1.ReadArtifactResponse, want int64, bar *progress) error {
	var n int64
	msg := first
	for msg != nil {
		if chunk := msg.GetChunk(); len(chunk) > 0 {
			_, err := w.Write(chunk)
			chunks.Release(chunk) // written: the buffer goes back to the pool
			if err != nil {
				return fmt.Errorf("write output: %w", err)
			}
			n += int64(len(chunk))
			bar.add(len(chunk))
		}
		var err error
		msg, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if want >= 0 && n != want {
		return fmt.Errorf("read: got %d bytes, want %d (size_bytes of the artifact)", n, want)
	}
	return nil
}

// output is where read writes content: stdout; a temporary file beside a
// regular FILE that commit renames to FILE and discard removes; or, for
// anything else (a device, a FIFO, a symlink), that very file.
type output struct {
	io.Writer
	file    *os.File // nil for stdout
	partial string
	final   string
}

// openOutput returns the output for -o path: stdout when path is "" or "-";
// for a regular file or a new path, a temporary file in the same folder with
// the existing file's mode (0600 for a new one, since it holds customer
// content); for anything else, path itself, opened for writing.
func openOutput(a *app, path string) (*output, error) {
	if path == "" || path == "-" {
		return &output{Writer: a.stdout}, nil
	}
	fi, err := os.Lstat(path)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		// A device, a FIFO, or a symlink: write through it in place, never
		// replace it (as root, renaming over /dev/null would turn it into
		// a file holding the plaintext).
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return nil, err
		}
		return &output{Writer: f, file: f}, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	// A regular file, or none yet: write a temporary file beside it and
	// rename it into place at the end, keeping an existing file's mode.
	mode := os.FileMode(0o600)
	if err == nil {
		mode = fi.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &output{Writer: f, file: f, partial: f.Name(), final: path}, nil
}

// commit makes the output durable and, for a file, renames it into place.
func (o *output) commit() error {
	if o.file == nil {
		return nil
	}
	// Devices and FIFOs cannot be synced (EINVAL); files can and must be.
	if err := o.file.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	if err := o.file.Close(); err != nil {
		return err
	}
	o.file = nil
	if o.partial == "" {
		return nil // written in place
	}
	return os.Rename(o.partial, o.final)
}

// discard removes a partial output file; it does nothing for stdout.
func (o *output) discard() {
	if o.file != nil {
		o.file.Close()
		o.file = nil
	}
	if o.partial != "" {
		os.Remove(o.partial)
	}
}
