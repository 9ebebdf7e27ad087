// Command sealctl is the client of the sealgate gateway. It uploads, reads,
// describes, lists and deletes artifacts, and reads and changes account
// settings, over the gRPC API described in DESIGN.md.
//
// Every subcommand accepts the global flags --addr, --token, --token-file,
// --account, --timeout and --tls; run `sealctl CMD -h` for the flags of a
// subcommand. sealctl exits 0 on success, 1 when a call or a local operation
// fails, and 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// Exit codes of sealctl.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usageText = `usage: sealctl COMMAND [flags] [args]

Commands:
  upload     encrypt and store a file:      upload --type T --sip-zone Z FILE
  read       stream an artifact's content:  read NAME [-o FILE]
  stat       show an artifact's metadata:   stat NAME
  list       list artifacts:                list [--type T] [--engagement E] [--all] [--show-deleted]
  delete     delete an artifact:            delete NAME
  undelete   restore a deleted artifact:    undelete NAME
  hold       place a legal hold:            hold NAME | engagement/ID [--reason R]
  release    release a legal hold:          release NAME | engagement/ID
  settings   account settings:              settings get | settings set [flags]
  decrypt    decrypt a stored object offline: decrypt --key-dir DIR [-o FILE] OBJECT
  keys       customer keys:                 keys check | keys rewrap [--key-mode M --customer-key-uri U] [--resume T]

Global flags (every command):
  --addr HOST:PORT   gateway address (env SEALGATE_ADDR, default 127.0.0.1:7443)
  --token T          bearer token (env SEALGATE_TOKEN)
  --token-file F     file holding the token (env SEALGATE_TOKEN_FILE, default .sealgate/dev-token)
  --account A        account id (default: the token's "account" claim)
  --timeout D        deadline of each unary call (default 30s)
  --tls              use TLS (required for a non-loopback address; env SEALGATE_TLS=1)
  --ca-cert FILE     CAs of the gateway's certificate instead of the system roots (env SEALGATE_CA_CERT)
  --client-cert F, --client-key F   client certificate for mutual TLS

NAME is a resource name "accounts/{account}/artifacts/{id}" or a bare id.
Run 'sealctl COMMAND -h' for the flags of a command.
`

// app holds what the commands read and write besides their arguments, so
// that tests can run them without touching the process's own streams.
type app struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	getenv    func(string) string
	stderrTTY bool
}

// command is one sealctl subcommand. run returns a *usageError for bad
// usage, errFlagParse when the flag package has already reported a bad flag,
// and any other error for a failure.
type command struct {
	name string
	run  func(ctx context.Context, a *app, args []string) error
}

// commands lists the subcommands in the order the usage text shows them.
var commands = []command{
	{"upload", runUpload},
	{"read", runRead},
	{"stat", runStat},
	{"list", runList},
	{"delete", runDelete},
	{"undelete", runUndelete},
	{"hold", runHold},
	{"release", runRelease},
	{"settings", runSettings},
	{"decrypt", runDecrypt},
	{"keys", runKeys},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		getenv:    os.Getenv,
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}
	code := a.main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// main runs the subcommand named by args[0] and returns the exit code.
func (a *app) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usageText)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(a.stdout, usageText)
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return a.exitCode(c.run(ctx, a, args[1:]))
		}
	}
	fmt.Fprintf(a.stderr, "sealctl: unknown command %q\n\n%s", args[0], usageText)
	return exitUsage
}

// exitCode reports err on stderr, unless it was reported already, and
// returns the exit code that goes with it.
func (a *app) exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errFlagParse):
		return exitUsage
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "sealctl: %s\nRun 'sealctl %s -h' for usage.\n", ue.msg, ue.cmd)
		return exitUsage
	default:
		printError(a.stderr, err)
		return exitError
	}
}

// usageError is a mistake in the command line: a missing or malformed flag
// or argument. It makes sealctl exit with status 2.
type usageError struct {
	cmd string
	msg string
}

func (e *usageError) Error() string { return e.cmd + ": " + e.msg }

// usagef returns a *usageError of the command cmd.
func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// errFlagParse means the flag package has already printed a bad flag and
// the usage of the command to stderr.
var errFlagParse = errors.New("sealctl: bad flags")
