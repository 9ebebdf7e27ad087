package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the module root, two levels up from this file's package dir.
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds sealgate and sealctl once per test run.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "sealgate-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/sealgate", "./cmd/sealctl")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// tool returns the path of a pinned tool, installing it with scripts/tools.sh
// when it is not there yet (make test installs it up front).
func tool(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("SEALGATE_TOOLS_BIN")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), ".tools", "bin")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "tools.sh"), name)
		cmd.Env = append(os.Environ(), "SEALGATE_TOOLS_BIN="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("install %s: %v\n%s", name, err, out)
		}
	}
	return p
}

// proc is a running gateway process.
type proc struct {
	cmd     *exec.Cmd
	Addr    string
	DataDir string
	Stdout  *lockedBuffer
	Stderr  *lockedBuffer
	done    chan error
}

var readyRE = regexp.MustCompile(`sealgate is ready on (\S+)`)

// startProc runs argv (a sealgate serve command line, or make run) and waits
// until it prints its ready line.
func startProc(t testing.TB, dir, dataDir string, argv ...string) *proc {
	t.Helper()
	p, m := startProcUntil(t, dir, dataDir, readyRE, nil, argv...)
	p.Addr = m[1]
	return p
}

// startProcUntil runs argv with extra environment env and waits until a
// line of its stdout matches re; it returns the process and the match.
func startProcUntil(t testing.TB, dir, dataDir string, re *regexp.Regexp, env []string, argv ...string) (*proc, []string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{cmd: cmd, DataDir: dataDir, Stdout: &lockedBuffer{}, Stderr: &lockedBuffer{}, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	cmd.Stdout = io.MultiWriter(pw, p.Stdout)
	cmd.Stderr = p.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { p.kill() })
	match := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && !sent {
				match <- m
				sent = true
			}
		}
		io.Copy(io.Discard, pr)
	}()
	var m []string
	select {
	case m = <-match:
	case err := <-p.done:
		t.Fatalf("%v exited before it was ready: %v\nstdout:\n%s\nstderr:\n%s", argv, err, p.Stdout, p.Stderr)
	case <-time.After(3 * time.Minute):
		t.Fatalf("%v not ready after 3 minutes\nstderr:\n%s", argv, p.Stderr)
	}
	return p, m
}

// signal sends sig to the process group and waits up to timeout for the exit.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) error {
	syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(timeout):
		return context.DeadlineExceeded
	}
}

func (p *proc) kill() {
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// token returns the dev token the gateway wrote.
func (p *proc) token(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.DataDir, "dev-token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// initConfig runs "sealgate init --config cfg": a config file's keys are
// created by init, never by serve.
func initConfig(t testing.TB, bin, cfg string) {
	t.Helper()
	if out, err := exec.Command(bin+"/sealgate", "init", "--config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("sealgate init --config %s: %v\n%s", cfg, err, out)
	}
}
