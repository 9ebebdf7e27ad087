package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// errKeysNotOK makes `keys check` exit 1 when a key is not usable.
var errKeysNotOK = errors.New("not every key is usable")

// runKeys implements `sealctl keys check` and `sealctl keys rewrap`.
func runKeys(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return usagef("keys", "want a subcommand: check or rewrap")
	}
	switch args[0] {
	case "check":
		return runKeysCheck(ctx, a, args[1:])
	case "rewrap":
		return runKeysRewrap(ctx, a, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(a.stdout, "usage: sealctl keys check               probe every key of the account's policy\n"+
			"       sealctl keys rewrap [--key-mode M --customer-key-uri U] [--resume TOKEN]\n"+
			"                                       re-wrap every artifact under the policy\n"+
			"Run 'sealctl keys check -h' or 'sealctl keys rewrap -h' for their flags.\n")
		return nil
	}
	return usagef("keys", "unknown subcommand %q: want check or rewrap", args[0])
}

// runKeysCheck prints one line per key of the account's policy: URI, state
// and detail. It fails when any key is not OK, so scripts can gate on it.
func runKeysCheck(ctx context.Context, a *app, args []string) error {
	const cmd = "keys check"
	fs, g := a.newFlagSet(cmd, "keys check")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef(cmd, "unexpected arguments %q", pos)
	}
	c, account, err := g.connectAccount(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	uctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.keys.CheckKeyAccess(uctx, &sealgatev1.CheckKeyAccessRequest{Account: "accounts/" + account})
	if err != nil {
		return err
	}
	ok := true
	for _, k := range resp.GetKeys() {
		state := shortEnum(k.GetState().String(), "STATE_")
		fmt.Fprintf(a.stdout, "%s\t%s\t%s\n", k.GetKeyUri(), state, k.GetDetail())
		ok = ok && k.GetState() == sealgatev1.KeyAccess_STATE_OK
	}
	if !ok {
		return errKeysNotOK
	}
	return nil
}

// runKeysRewrap re-wraps every artifact of the account under its current
// key policy, or the one given with --key-mode and --customer-key-uri, with
// a progress bar on stderr. On failure it prints the resume token.
func runKeysRewrap(ctx context.Context, a *app, args []string) error {
	const cmd = "keys rewrap"
	fs, g := a.newFlagSet(cmd, "keys rewrap [--key-mode M --customer-key-uri U] [--resume TOKEN]")
	mode := fs.String("key-mode", "", "target key `mode` (default: the account's current policy)")
	uri := fs.String("customer-key-uri", "", "target customer key `uri`")
	resume := fs.String("resume", "", "resume after this `token` from a previous run")
	var pf progressFlags
	pf.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef(cmd, "unexpected arguments %q", pos)
	}
	req := &sealgatev1.RewrapArtifactsRequest{ResumeToken: *resume}
	if *mode != "" {
		m, err := parseEnum(*mode, "KEY_MODE_", sealgatev1.KeyMode_value)
		if err != nil {
			return usagef(cmd, "--key-mode: %v", err)
		}
		req.KeyPolicy = &sealgatev1.KeyPolicy{Mode: sealgatev1.KeyMode(m), CustomerKeyUri: *uri}
	} else if *uri != "" {
		return usagef(cmd, "--customer-key-uri needs --key-mode")
	}
	c, account, err := g.connectAccount(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	req.Account = "accounts/" + account
	stream, err := c.keys.RewrapArtifacts(ctx, req)
	if err != nil {
		return err
	}
	var bar *progressbar.ProgressBar
	last := &sealgatev1.RewrapArtifactsResponse{ResumeToken: *resume}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if bar != nil {
				bar.Exit()
				fmt.Fprintln(a.stderr)
			}
			if last.GetResumeToken() != "" {
				fmt.Fprintf(a.stderr, "sealctl: resume with: sealctl keys rewrap --resume %s\n", last.GetResumeToken())
			}
			return err
		}
		if bar == nil && (pf.force || (!pf.quiet && a.stderrTTY)) {
			bar = progressbar.NewOptions64(msg.GetArtifactsTotal(), progressbar.OptionSetWriter(a.stderr),
				progressbar.OptionSetDescription("re-wrapping"), progressbar.OptionShowCount(),
				progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond))
		}
		if bar != nil {
			bar.Set64(msg.GetArtifactsDone() + msg.GetArtifactsSkipped() + msg.GetArtifactsFailed())
		}
		last = msg
	}
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(a.stderr)
	}
	fmt.Fprintf(a.stdout, "re-wrapped %d, already current %d, failed %d\n",
		last.GetArtifactsDone(), last.GetArtifactsSkipped(), last.GetArtifactsFailed())
	for _, n := range last.GetFailedNames() {
		fmt.Fprintf(a.stdout, "failed: %s\n", n)
	}
	if last.GetArtifactsFailed() > 0 {
		return fmt.Errorf("%d artifacts failed their integrity check", last.GetArtifactsFailed())
	}
	return nil
}
