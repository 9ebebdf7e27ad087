package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/config"
)

const tokenUsage = `usage: sealgate token issue --account ACCOUNT --roles ROLE[,ROLE] [--ttl DURATION] [--subject NAME]
                            [--config FILE | --data-dir DIR]

Prints a token signed with the gateway's signing key on stdout, and nothing
else. Roles: uploader, reader, pii_viewer, admin, auditor. The key is never
created here: start the gateway (embedded defaults) or run sealgate init first.
`

// maxTokenTTL bounds the lifetime of an issued token.
const maxTokenTTL = 366 * 24 * time.Hour

// token runs "sealgate token issue".
func token(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "issue" {
		fmt.Fprint(stderr, tokenUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("token issue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tokenUsage) }
	account := fs.String("account", "", "account the token is for (required)")
	roles := fs.String("roles", "", "comma-separated roles (required)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token (at most 366 days)")
	subject := fs.String("subject", "sealgate-cli", "subject (who the token is for), recorded in the audit log")
	cfgPath := fs.String("config", "", "config file naming the signing key")
	dataDir := fs.String("data-dir", "", "data directory of the embedded defaults (default .sealgate)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() != 0 {
		return usageErr("token issue: unexpected argument %q", fs.Arg(0))
	}
	if *account == "" || *roles == "" {
		return usageErr("token issue: --account and --roles are required")
	}
	if *ttl <= 0 || *ttl > maxTokenTTL {
		return usageErr("token issue: --ttl %v: want more than 0 and at most %v", *ttl, maxTokenTTL)
	}
	p := auth.Principal{Subject: *subject, Account: *account}
	for _, r := range strings.Split(*roles, ",") {
		r = strings.TrimSpace(r)
		if !auth.KnownRole(r) {
			return usageErr("token issue: unknown role %q (want %s)", r, strings.Join(auth.AllRoles(), ", "))
		}
		p.Roles = append(p.Roles, r)
	}
	if !auth.ValidAccountID(p.Account) {
		return usageErr("token issue: --account %q: want 1-63 of a-z, 0-9 and '-', starting with a letter", p.Account)
	}
	if *cfgPath != "" && *dataDir != "" {
		return usageErr("token issue: give --config or --data-dir, not both")
	}
	cfg, err := loadConfig(*cfgPath, *dataDir)
	if err != nil {
		return err
	}
	if cfg.Auth.SigningKeyFile == "" {
		return errors.New("token issue: the config has no auth.signing_key_file: this gateway verifies tokens issued elsewhere")
	}
	key, err := auth.LoadSigningKey(cfg.Auth.SigningKeyFile)
	if err != nil {
		return err
	}
	iss, err := auth.NewIssuer(key)
	if err != nil {
		return err
	}
	tok, err := iss.Issue(p, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// loadConfig returns the config file's settings, or the embedded defaults
// under dataDir, with defaults applied and checked.
func loadConfig(path, dataDir string) (*config.Config, error) {
	cfg, err := configFrom(path, dataDir)
	if err != nil {
		return nil, err
	}
	cfg.ApplyDefaults()
	return cfg, cfg.Validate()
}

// configFrom decodes the config file at path, or returns the embedded
// defaults; dataDir (a flag, relative to the working directory) overrides
// the data directory of either.
func configFrom(path, dataDir string) (*config.Config, error) {
	if path == "" {
		return config.Embedded(absPath(dataDir)), nil
	}
	cfg, err := config.Decode(path)
	if err != nil {
		return nil, err
	}
	if dataDir != "" {
		cfg.DataDir = absPath(dataDir)
	}
	return cfg, nil
}

// absPath resolves a path given on the command line against the working
// directory.
func absPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
