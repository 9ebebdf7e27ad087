package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealgate/sealgate/keys/local"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// buildBinaries builds sealgate and sealctl into a temporary directory and
// returns their paths.
func buildBinaries(t *testing.T) (sealgate, sealctl string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	bin := t.TempDir()
	cmd := exec.Command(goTool, "build", "-o", bin+string(filepath.Separator),
		"github.com/sealgate/sealgate/cmd/sealgate", "github.com/sealgate/sealgate/cmd/sealctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(bin, "sealgate"), filepath.Join(bin, "sealctl")
}

var readyRE = regexp.MustCompile(`sealgate is ready on (\S+) \(`)

// startServer runs `sealgate serve` on a free loopback port with its data
// under dataDir, waits until it says it is ready, and returns its address.
// The server is stopped when the test ends.
func startServer(t *testing.T, sealgate, dataDir string) string {
	t.Helper()
	cmd := exec.Command(sealgate, "serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sealgate: %v", err)
	}
	exited := make(chan struct{})
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := readyRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		// Wait only once stdout is drained, as os/exec requires.
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("sealgate stderr:\n%s", stderr)
		}
	})
	select {
	case addr := <-addrc:
		return addr
	case <-exited:
		t.Fatalf("sealgate exited before it was ready; stderr:\n%s", stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("sealgate not ready after 60s; stderr:\n%s", stderr)
	}
	return ""
}

// sealctlRunner runs sealctl against one server.
type sealctlRunner struct {
	t    *testing.T
	path string
	env  []string
}

// run runs sealctl with args and returns its stdout, stderr and exit code.
func (r sealctlRunner) run(args ...string) (stdout, stderr string, code int) {
	r.t.Helper()
	cmd := exec.Command(r.path, args...)
	cmd.Env = r.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		r.t.Fatalf("run sealctl %q: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// mustRun runs sealctl with args, fails the test unless it exits 0, and
// returns its stdout.
func (r sealctlRunner) mustRun(args ...string) string {
	r.t.Helper()
	out, errOut, code := r.run(args...)
	if code != 0 {
		r.t.Fatalf("sealctl %q exit = %d, want 0; stderr:\n%s", args, code, errOut)
	}
	return out
}

// testEnv returns the environment of the sealctl subprocesses: this
// process's, without any SEALGATE_ variable, plus the server's token file.
func testEnv(tokenFile string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SEALGATE_") {
			env = append(env, kv)
		}
	}
	return append(env, envTokenFile+"="+tokenFile)
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test builds and starts the server")
	}
	sealgate, sealctl := buildBinaries(t)
	work := t.TempDir()
	dataDir := filepath.Join(work, "data")
	addr := startServer(t, sealgate, dataDir)
	r := sealctlRunner{t: t, path: sealctl, env: testEnv(filepath.Join(dataDir, "dev-token"))}

	content := make([]byte, 3<<20)
	rand.Read(content)
	in := filepath.Join(work, "call.raw")
	if err := os.WriteFile(in, content, 0o600); err != nil {
		t.Fatal(err)
	}

	out := r.mustRun("upload", "--addr", addr, "--type", "CALL_RECORDING", "--sip-zone", "us-west",
		"--engagement", "e2e", "--label", "case=e2e", in)
	if !regexp.MustCompile(`\Aaccounts/demo/artifacts/[0-9a-z-]+\n\z`).MatchString(out) {
		t.Fatalf("upload stdout = %q, want exactly one line with the artifact name", out)
	}
	name := strings.TrimSpace(out)

	got := filepath.Join(work, "out.raw")
	if out := r.mustRun("read", "--addr", addr, name, "-o", got); out != "" {
		t.Errorf("read -o stdout = %q, want nothing", out)
	}
	if b, err := os.ReadFile(got); err != nil || !bytes.Equal(b, content) {
		t.Errorf("read -o: got %d bytes (err %v), want the %d bytes uploaded", len(b), err, len(content))
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(got), "*.partial-*")); len(left) != 0 {
		t.Errorf("read -o left %v behind", left)
	}

	stat := r.mustRun("stat", "--addr", addr, name)
	if !strings.Contains(stat, `"size_bytes": "3145728"`) || !strings.Contains(stat, name) {
		t.Errorf("stat = %s\nwant the name and \"size_bytes\": \"3145728\"", stat)
	}

	list := r.mustRun("list", "--addr", addr, "--all")
	wantLine := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\tCALL_RECORDING\t[A-Z]+\t3145728\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	if !wantLine.MatchString(list) {
		t.Errorf("list =\n%s\nwant a line for %s", list, name)
	}
	if list := r.mustRun("list", "--addr", addr, "--engagement", "e2e", "--json"); !strings.Contains(list, `"name":"`+name+`"`) {
		t.Errorf("list --json = %s, want a line for %s", list, name)
	}

	missing := filepath.Join(work, "missing.raw")
	_, errOut, code := r.run("read", "--addr", addr, "accounts/demo/artifacts/00000000000000000000000000-usus", "-o", missing)
	if code != 1 || !strings.Contains(errOut, "NOT_FOUND") {
		t.Errorf("read of a missing artifact: exit %d, stderr %q; want 1 and NOT_FOUND", code, errOut)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(missing), "*.partial-*")); len(left) != 0 {
		t.Errorf("failed read left %v behind", left)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("failed read created %s", missing)
	}

	out, errOut, code = r.run("upload", "--addr", addr, "--type", "CALL_RECORDING", "--sip-zone", "mars-base", in)
	if code != 1 || !strings.Contains(errOut, "UNKNOWN_SIP_ZONE") || out != "" {
		t.Errorf("upload to an unknown SIP zone: exit %d, stdout %q, stderr %q; want 1, nothing, UNKNOWN_SIP_ZONE", code, out, errOut)
	}

	settings := r.mustRun("settings", "get", "--addr", addr)
	if !strings.Contains(settings, `"name": "accounts/demo/settings"`) {
		t.Errorf("settings get = %s, want the demo account's settings", settings)
	}
	_, errOut, code = r.run("settings", "set", "--addr", addr, "--retention", "INBOX_MESSAGES=90")
	if code != 1 || !strings.Contains(errOut, "RETENTION_OUT_OF_RANGE") {
		t.Errorf("settings set out of range: exit %d, stderr %q; want 1 and RETENTION_OUT_OF_RANGE", code, errOut)
	}

	// Offline: wait for the mover to store the object, then decrypt it.
	object := filepath.Join(dataDir, "regions", "us", "artifacts", "demo", strings.TrimPrefix(name, "accounts/demo/artifacts/"))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(object); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not stored", name)
		}
	}
	plainOut := filepath.Join(work, "offline.raw")
	r.mustRun("decrypt", "--data-dir", dataDir, "--expect", name, "-o", plainOut, object)
	if b, _ := os.ReadFile(plainOut); !bytes.Equal(b, content) {
		t.Errorf("offline decrypt of %s is not byte-exact", object)
	}
	// Without the control store the external share is out of reach.
	if _, stderr, code := r.run("decrypt", "--key-dir", filepath.Join(dataDir, "keys"), object); code != exitError || !strings.Contains(stderr, "--data-dir") {
		t.Errorf("decrypt without the control store: exit %d, stderr %q; want a message naming --config/--data-dir", code, stderr)
	}

	if out := r.mustRun("keys", "check", "--addr", addr); !strings.Contains(out, "local://provider\tOK") {
		t.Errorf("keys check = %q, want local://provider OK", out)
	}
	// Move the account to a customer key (a second local key) and re-wrap.
	if _, err := local.Open(filepath.Join(dataDir, "keys"), "customer"); err != nil {
		t.Fatal(err)
	}
	r.mustRun("settings", "set", "--addr", addr, "--key-mode", "CUSTOMER", "--customer-key-uri", "local://customer")
	if out := r.mustRun("keys", "rewrap", "--addr", addr); !strings.Contains(out, "re-wrapped 1, already current 0, failed 0") {
		t.Errorf("keys rewrap = %q, want one artifact re-wrapped", out)
	}
	if out := r.mustRun("keys", "rewrap", "--addr", addr); !strings.Contains(out, "re-wrapped 0, already current 1") {
		t.Errorf("second keys rewrap = %q, want nothing left to do", out)
	}
	if stat := r.mustRun("stat", "--addr", addr, name); !strings.Contains(stat, "local://customer") {
		t.Errorf("stat after rewrap = %s, want the customer key", stat)
	}
	r.mustRun("read", "--addr", addr, name, "-o", got+"2")
	if b, _ := os.ReadFile(got + "2"); !bytes.Equal(b, content) {
		t.Errorf("read after rewrap is not byte-exact")
	}
	// A copy of the object kept elsewhere (a backup) is "shredded" once the
	// artifact is purged.
	backup := filepath.Join(work, "backup.obj")
	if err := os.WriteFile(backup, readAll(t, object), 0o600); err != nil {
		t.Fatal(err)
	}
	r.mustRun("settings", "set", "--addr", addr, "--deletion-mode", "HARD")
	r.mustRun("delete", "--addr", addr, name)
	if _, stderr, code := r.run("decrypt", "--data-dir", dataDir, backup); code != exitError || !strings.Contains(stderr, "shredded") {
		t.Errorf("decrypt of a purged artifact's copy: exit %d, stderr %q; want it to say shredded", code, stderr)
	}
}

func readAll(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPrivacyEndToEnd sets the privacy policy with sealctl, uploads a
// transcript, and checks what is stored by decrypting the object offline:
// placeholders, none of the values. Then masking: a reader's token sees
// masked values, the dev token (a pii_viewer) the stored text. A blocking
// rule refuses a matching SMS with CONTENT_BLOCKED.
func TestPrivacyEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test builds and starts the server")
	}
	sealgate, sealctl := buildBinaries(t)
	work := t.TempDir()
	dataDir := filepath.Join(work, "data")
	addr := startServer(t, sealgate, dataDir)
	r := sealctlRunner{t: t, path: sealctl, env: testEnv(filepath.Join(dataDir, "dev-token"))}

	r.mustRun("settings", "set", "--addr", addr, "--redact=true", "--mask=true", "--mask-keep", "4",
		"--block-rule", "no-cards@SMS_MESSAGE=\\b(?:\\d[ -]?){13,19}\\b")
	if out, _, code := r.run("settings", "test-rule", "--addr", addr, "--rule", "ssn=\\d{3}-\\d{2}-\\d{4}", "--sample", "SSN 123-45-6789"); code != 0 || !strings.Contains(out, "matches") {
		t.Errorf("settings test-rule: %q (exit %d)", out, code)
	}
	if _, errOut, code := r.run("settings", "set", "--addr", addr, "--block-rule", "bad=(unclosed"); code != 1 || !strings.Contains(errOut, "blocking_rules[0].pattern") {
		t.Errorf("an invalid rule: exit %d, stderr %q; want 1 and the field", code, errOut)
	}

	transcript := "Customer: my number is 415-555-0134, card 4111 1111 1111 1111, mail jane.doe@example.com\n"
	in := filepath.Join(work, "t.txt")
	os.WriteFile(in, []byte(transcript), 0o600)
	name := strings.TrimSpace(r.mustRun("upload", "--addr", addr, "--type", "CALL_TRANSCRIPT", "--sip-zone", "us-west",
		"--content-type", "text/plain", in))

	// Wait for the mover, so that the object stays where it is found.
	object := filepath.Join(dataDir, "regions", "us", "artifacts", "demo", strings.TrimPrefix(name, "accounts/demo/artifacts/"))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(object); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not stored", name)
		}
	}
	offline := r.mustRun("decrypt", "--data-dir", dataDir, "--expect", name, object)
	want := "Customer: my number is [PHONE NUMBER], card [CARD NUMBER], mail [EMAIL ADDRESS]\n"
	if offline != want {
		t.Fatalf("offline decrypt = %q, want %q", offline, want)
	}

	// A second, unredacted transcript, to see masking.
	r.mustRun("settings", "set", "--addr", addr, "--redact=false")
	name2 := strings.TrimSpace(r.mustRun("upload", "--addr", addr, "--type", "CALL_TRANSCRIPT", "--sip-zone", "us-west",
		"--content-type", "text/plain", in))
	tok, err := exec.Command(sealgate, "token", "issue", "--data-dir", dataDir, "--account", "demo", "--roles", "reader").Output()
	if err != nil {
		t.Fatal(err)
	}
	masked := r.mustRun("read", "--addr", addr, "--token", strings.TrimSpace(string(tok)), name2)
	if masked != "Customer: my number is XXX-XXX-0134, card XXXX XXXX XXXX 1111, mail jXXXXXXX@example.com\n" {
		t.Errorf("reader's read = %q, want masked values", masked)
	}
	if unmasked := r.mustRun("read", "--addr", addr, name2); unmasked != transcript {
		t.Errorf("pii_viewer's read = %q, want the stored text", unmasked)
	}

	sms := filepath.Join(work, "sms.txt")
	os.WriteFile(sms, []byte("card 4111 1111 1111 1111 thanks"), 0o600)
	if _, errOut, code := r.run("upload", "--addr", addr, "--type", "SMS_MESSAGE", "--sip-zone", "us-west", "--content-type", "text/plain", sms); code != 1 ||
		!strings.Contains(errOut, "CONTENT_BLOCKED") || !strings.Contains(errOut, "no-cards") || strings.Contains(errOut, "4111") {
		t.Errorf("blocked SMS: exit %d, stderr %q; want 1, CONTENT_BLOCKED and the rule, never the text", code, errOut)
	}
}
