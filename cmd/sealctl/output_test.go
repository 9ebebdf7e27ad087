package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func writeOutput(t *testing.T, path, content string) {
	t.Helper()
	a, _, _ := testApp(nil)
	o, err := openOutput(a, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(o, content); err != nil {
		t.Fatal(err)
	}
	if err := o.commit(); err != nil {
		t.Fatal(err)
	}
}

func TestOutputKeepsModeAndWritesThroughSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	// An existing 0644 file is replaced atomically and stays 0644.
	shared := filepath.Join(dir, "shared.txt")
	if err := os.WriteFile(shared, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(shared, 0o644)
	writeOutput(t, shared, "new content")
	if fi, _ := os.Stat(shared); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode after read -o: %v, want 0644 kept", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(shared); string(b) != "new content" {
		t.Fatalf("content %q", b)
	}
	// A new file holds customer content: 0600.
	fresh := filepath.Join(dir, "fresh.txt")
	writeOutput(t, fresh, "x")
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode of a new file: %v, want 0600", fi.Mode().Perm())
	}
	// A symlink is written through and stays a symlink.
	target := filepath.Join(dir, "target.txt")
	os.WriteFile(target, []byte("before"), 0o640)
	link := filepath.Join(dir, "link.txt")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	writeOutput(t, link, "through the link")
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the symlink was replaced by a file")
	}
	if b, _ := os.ReadFile(target); string(b) != "through the link" {
		t.Fatalf("target holds %q, want the content written through the link", b)
	}
	// A FIFO is written into, not replaced.
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	writeOutput(t, fifo, "into the pipe")
	if s := <-got; s != "into the pipe" {
		t.Fatalf("reader of the FIFO got %q", s)
	}
	if fi, _ := os.Lstat(fifo); fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatal("the FIFO was replaced by a file")
	}
	// No temporary files are left.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "partial") {
			t.Fatalf("left behind: %s", e.Name())
		}
	}
}
