package main

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// runStat implements `sealctl stat`: it prints an artifact's metadata as
// indented protojson.
func runStat(ctx context.Context, a *app, args []string) error {
	return runNameCommand(ctx, a, args, "stat", func(ctx context.Context, c *client, name string) (*sealgatev1.Artifact, error) {
		return c.artifacts.GetArtifact(ctx, &sealgatev1.GetArtifactRequest{Name: name})
	})
}

// runDelete implements `sealctl delete`: it deletes an artifact (soft or
// hard, as the account says) and prints what is left of it.
func runDelete(ctx context.Context, a *app, args []string) error {
	return runNameCommand(ctx, a, args, "delete", func(ctx context.Context, c *client, name string) (*sealgatev1.Artifact, error) {
		return c.artifacts.DeleteArtifact(ctx, &sealgatev1.DeleteArtifactRequest{Name: name})
	})
}

// runUndelete implements `sealctl undelete`: it restores a soft-deleted
// artifact and prints it.
func runUndelete(ctx context.Context, a *app, args []string) error {
	return runNameCommand(ctx, a, args, "undelete", func(ctx context.Context, c *client, name string) (*sealgatev1.Artifact, error) {
		return c.artifacts.UndeleteArtifact(ctx, &sealgatev1.UndeleteArtifactRequest{Name: name})
	})
}

// runNameCommand runs a command of the form `sealctl CMD NAME`: one unary
// call on one artifact whose answer it prints as indented protojson.
func runNameCommand(ctx context.Context, a *app, args []string, cmd string,
	call func(context.Context, *client, string) (*sealgatev1.Artifact, error)) error {
	fs, g := a.newFlagSet(cmd, cmd+" NAME")
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
	callCtx, cancel := c.unary(ctx)
	defer cancel()
	art, err := call(callCtx, c, name)
	if err != nil {
		return err
	}
	return printProto(a.stdout, art)
}

// listFlags are the flags of `sealctl list`.
type listFlags struct {
	typ         string
	engagement  string
	pageSize    int
	pageToken   string
	all         bool
	json        bool
	showDeleted bool
}

// buildRequest returns the first ListArtifactsRequest for the flags in the
// account's collection.
func (f *listFlags) buildRequest(account string) (*sealgatev1.ListArtifactsRequest, error) {
	req := &sealgatev1.ListArtifactsRequest{
		Parent:       "accounts/" + account,
		EngagementId: f.engagement,
		PageToken:    f.pageToken,
		ShowDeleted:  f.showDeleted,
	}
	if f.typ != "" {
		t, err := parseArtifactType(f.typ)
		if err != nil {
			return nil, fmt.Errorf("--type: %w", err)
		}
		req.Type = t
	}
	if f.pageSize < 0 || f.pageSize > 1000 {
		return nil, fmt.Errorf("--page-size must be between 0 and 1000, got %d", f.pageSize)
	}
	req.PageSize = int32(f.pageSize)
	return req, nil
}

// runList implements `sealctl list`: one line per artifact, tab-separated
// (name, type, state, size in bytes, create time), or protojson lines with
// --json. With --all it follows next_page_token; without, it prints the
// next page token to stderr.
func runList(ctx context.Context, a *app, args []string) error {
	const cmd = "list"
	fs, g := a.newFlagSet(cmd, "list [--type T] [--engagement E] [--page-size N] [--page-token T] [--all] [--json]")
	var f listFlags
	fs.StringVar(&f.typ, "type", "", "only artifacts of this `type`")
	fs.StringVar(&f.engagement, "engagement", "", "only artifacts of this engagement `id`")
	fs.IntVar(&f.pageSize, "page-size", 0, "at most `N` artifacts per page (0: the server's default)")
	fs.StringVar(&f.pageToken, "page-token", "", "continue from this `token` of a previous list")
	fs.BoolVar(&f.all, "all", false, "follow next_page_token to list every page")
	fs.BoolVar(&f.json, "json", false, "print one protojson object per line")
	fs.BoolVar(&f.showDeleted, "show-deleted", false, "include soft-deleted artifacts")
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
	req, err := f.buildRequest(account)
	if err != nil {
		return usagef(cmd, "%v", err)
	}
	w := bufio.NewWriter(a.stdout)
	defer w.Flush()
	for {
		callCtx, cancel := c.unary(ctx)
		resp, err := c.artifacts.ListArtifacts(callCtx, req)
		cancel()
		if err != nil {
			return err
		}
		for _, art := range resp.GetArtifacts() {
			if err := writeListLine(w, art, f.json); err != nil {
				return err
			}
		}
		next := resp.GetNextPageToken()
		if next == "" {
			return w.Flush()
		}
		if !f.all {
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "next_page_token: %s\n", next)
			return nil
		}
		req.PageToken = next
	}
}

// writeListLine writes one artifact as a tab-separated line, or as one line
// of protojson when asJSON is true.
func writeListLine(w *bufio.Writer, art *sealgatev1.Artifact, asJSON bool) error {
	if asJSON {
		b, err := protoJSON(art, false)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	_, err := w.WriteString(strings.Join([]string{
		art.GetName(),
		shortEnum(art.GetType().String(), typePrefix),
		shortEnum(art.GetState().String(), "STATE_"),
		strconv.FormatInt(art.GetSizeBytes(), 10),
		formatTime(art.GetCreateTime()),
	}, "\t") + "\n")
	return err
}
