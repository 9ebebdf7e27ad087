package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/local"
)

// initCmd runs "sealgate init": it creates the keys a new deployment needs
// and reports each one; existing keys are kept as they are.
func initCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file of the deployment")
	dataDir := fs.String("data-dir", "", "data directory (embedded defaults)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	cfg, err := loadConfig(*cfgPath, *dataDir)
	if err != nil {
		return err
	}
	created, err := config.Init(cfg)
	for _, p := range created {
		fmt.Fprintf(stdout, "created %s\n", p)
	}
	if err != nil {
		return err
	}
	if len(created) == 0 {
		fmt.Fprintln(stdout, "nothing to create: every key exists")
	} else {
		fmt.Fprintln(stdout, "back these up: without the provider key no artifact it protects can be read (docs/operations.md)")
	}
	return nil
}

// checkConfig runs "sealgate check-config": it validates a config file and
// checks, without connecting to anything or creating anything, that the
// files and environment variables it names are there.
func checkConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file to check (required)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *cfgPath == "" {
		return usageErr("check-config: --config is required")
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	var problems []string
	need := func(path, what string) {
		if path == "" {
			return
		}
		if _, err := os.Stat(path); err != nil {
			problems = append(problems, fmt.Sprintf("%s %s: %v", what, path, errors.Unwrap(err)))
		}
	}
	if keys.Scheme(cfg.Keys.ProviderKeyURI) == local.Scheme {
		need(local.Path(cfg.Keys.LocalDir, strings.TrimPrefix(cfg.Keys.ProviderKeyURI, "local://")), "provider key")
	}
	need(cfg.Auth.SigningKeyFile, "signing key")
	need(cfg.Auth.PublicKeyFile, "public key")
	need(cfg.Auth.JWKSFile, "JWKS file")
	need(cfg.TLS.CertFile, "TLS certificate")
	need(cfg.TLS.KeyFile, "TLS key")
	need(cfg.TLS.ClientCAFile, "TLS client CA")
	for _, env := range cfg.CredentialEnv() {
		if os.Getenv(env) == "" {
			problems = append(problems, "environment variable "+env+" is empty")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("check-config: %s:\n  %s", cfg.File, strings.Join(problems, "\n  "))
	}
	fmt.Fprintf(stdout, "%s: OK (%d regions, %d SIP zones, roles %s)\n", cfg.File, len(cfg.Regions), len(cfg.SIPZones), strings.Join(cfg.Roles, ","))
	return nil
}
