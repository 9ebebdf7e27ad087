package main

import (
	"context"
	"strings"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// runHold implements `sealctl hold TARGET [--reason R]`: TARGET is an
// artifact (name or id) or "engagement/ID" for every artifact of an
// engagement.
func runHold(ctx context.Context, a *app, args []string) error {
	return runHoldCommand(ctx, a, args, "hold")
}

// runRelease implements `sealctl release TARGET`.
func runRelease(ctx context.Context, a *app, args []string) error {
	return runHoldCommand(ctx, a, args, "release")
}

func runHoldCommand(ctx context.Context, a *app, args []string, cmd string) error {
	fs, g := a.newFlagSet(cmd, cmd+" NAME | engagement/ENGAGEMENT_ID [--reason R]")
	reason := fs.String("reason", "", "why (a case number, say): recorded with the hold")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(cmd, "want exactly one NAME or engagement/ID, got %d arguments", len(pos))
	}
	c, account, err := g.connectAccount(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	target := pos[0]
	if eng, ok := strings.CutPrefix(target, "engagement/"); ok {
		target = "accounts/" + account + "/engagements/" + eng
	} else if target, err = c.artifactName(target); err != nil {
		return err
	}
	uctx, cancel := c.unary(ctx)
	defer cancel()
	var h *sealgatev1.LegalHold
	if cmd == "hold" {
		h, err = c.artifacts.SetLegalHold(uctx, &sealgatev1.SetLegalHoldRequest{Target: target, Reason: *reason})
	} else {
		h, err = c.artifacts.ReleaseLegalHold(uctx, &sealgatev1.ReleaseLegalHoldRequest{Target: target})
	}
	if err != nil {
		return err
	}
	return printProto(a.stdout, h)
}
