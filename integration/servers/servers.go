// Package servers starts real servers as local processes for tests: the AWS
// KMS emulator local-kms (localkms.go), and, beside it in files of the same
// shape, MinIO (minio.go) and Vault in dev mode (vault.go). There is no Docker
// on the machines that run the tests.
//
// Every helper listens on 127.0.0.1 at a free port, keeps its data in
// t.TempDir(), and stops its process in t.Cleanup, so no test depends on a
// server left running by another. Binaries come from the repository's
// .tools/bin (the environment variable SEALGATE_TOOLS_BIN overrides it); a
// missing binary is installed with scripts/tools.sh NAME first. A process's
// stdout and stderr go to a log file in t.TempDir(), whose tail is logged
// when the server fails to start.
//
// The package has no _test suffix so that test packages anywhere in the
// module can import it; it is never imported by production code.
package servers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a helper waits for its server to answer.
const startTimeout = 30 * time.Second

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. It
// fails the test when no port can be had.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servers: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// RepoRoot returns the module root, found from this source file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// toolsMu serializes installs within one test binary; the lock file in
// Tool serializes them across test binaries run in parallel.
var toolsMu sync.Mutex

// Tool returns the path of the pinned binary name in the tools directory,
// running scripts/tools.sh name first when it is missing. It fails the test
// when the install fails.
func Tool(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("SEALGATE_TOOLS_BIN")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), ".tools", "bin")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	toolsMu.Lock()
	defer toolsMu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("servers: tools dir: %v", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("servers: tools lock: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("servers: tools lock: %v", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(p); err == nil {
		return p // installed by another test binary while we waited
	}
	t.Logf("servers: %s is missing; running scripts/tools.sh %s (this may take minutes)", p, name)
	cmd := exec.Command(filepath.Join(RepoRoot(), "scripts", "tools.sh"), name)
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "SEALGATE_TOOLS_BIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("servers: install %s: %v\n%s", name, err, out)
	}
	return p
}

// process is one server process that can be stopped and started again with
// the same command line, environment and log file.
type process struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// newProcess describes a process whose output goes to a log file in dir.
func newProcess(name, bin string, args, env []string, dir string) *process {
	return &process{name: name, bin: bin, args: args, env: env, logPath: filepath.Join(dir, name+".log")}
}

// start runs the process in its own process group. It returns an error when
// the log file cannot be opened or the binary cannot be started.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("servers: %s is already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("servers: %s log: %w", p.name, err)
	}
	cmd := exec.Command(p.bin, p.args...)
	// MinIO's own variables come only from env: a distributed MinIO
	// refuses to form when its nodes' MINIO_* differ, and a test may set
	// some (credentials for a config) between two starts.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") && !strings.HasPrefix(kv, "_MINIO_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("servers: start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// stop kills the process group with SIGKILL and waits for the process to
// exit. It does nothing when the process is not running.
func (p *process) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	p.cmd, p.done = nil, nil
}

// exited reports whether the process was started and has exited since.
func (p *process) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last n lines of the process's log file.
func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	b = bytes.TrimRight(b, "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// waitReady polls ready until it returns nil, the process exits, or
// startTimeout passes. On failure it logs the tail of the process's log,
// stops the process and fails the test.
func (p *process) waitReady(t testing.TB, ready func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var err error
	for {
		if p.exited() {
			err = errors.New("process exited")
			break
		}
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		err = ready(actx)
		acancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Logf("servers: %s log tail (%s):\n%s", p.name, p.logPath, p.tail(40))
	p.stop()
	t.Fatalf("servers: %s did not start within %v: %v", p.name, startTimeout, err)
}

// dialable returns a ready check that succeeds once addr accepts TCP
// connections.
func dialable(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// hostPort returns "127.0.0.1:port".
func hostPort(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// pid returns the running process's id, 0 when it is not running.
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}
