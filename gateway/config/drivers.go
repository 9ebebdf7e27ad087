package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/awskms"
	"github.com/sealgate/sealgate/keys/local"
	"github.com/sealgate/sealgate/keys/vaulttransit"
)

// registerDrivers makes every key driver serve its scheme in kr, limited to
// the endpoints the config registers, and returns the schemes it serves.
func registerDrivers(kr *keys.Keyring, c *Config) ([]string, error) {
	kr.Register(local.Scheme, local.Opener{Dir: c.Keys.LocalDir})
	kr.Register(awskms.Scheme, awsOpener(c))
	vo, err := vaultOpener(c)
	if err != nil {
		return nil, err
	}
	kr.Register(vaulttransit.Scheme, vo)
	schemes := []string{awskms.Scheme, vaulttransit.Scheme, local.Scheme}
	for scheme, o := range c.ExtraDrivers {
		kr.Register(scheme, o)
		schemes = append(schemes, scheme)
	}
	return schemes, nil
}

// Keyring returns a keyring whose drivers may call exactly the key
// endpoints c registers (for tools such as sealctl decrypt).
func (c *Config) Keyring() (*keys.Keyring, error) {
	kr := keys.NewKeyring()
	if _, err := registerDrivers(kr, c); err != nil {
		return nil, err
	}
	return kr, nil
}

func awsOpener(c *Config) *awskms.Opener {
	o := &awskms.Opener{Regions: c.Keys.AWSKMS.Regions, ProviderURI: c.Keys.ProviderKeyURI}
	for _, a := range c.Keys.AWSKMS.Accounts {
		o.Accounts = append(o.Accounts, awskms.Account{ID: a.ID, RoleARN: a.RoleARN, Accounts: a.Accounts})
	}
	return o
}

// vaultOpener registers the configured Vault servers with their tokens. It
// returns an error naming the server when its credential is missing.
func vaultOpener(c *Config) (*vaulttransit.Opener, error) {
	o := &vaulttransit.Opener{ProviderURI: c.Keys.ProviderKeyURI}
	for i, v := range c.Keys.Vault {
		auth, err := vaultAuth(v)
		if err != nil {
			return nil, fmt.Errorf("config: keys.vault[%d] (%s): %w", i, v.Address, err)
		}
		o.Servers = append(o.Servers, vaulttransit.Server{
			Address: v.Address, Mounts: v.Mounts, Accounts: v.Accounts, KeyPrefix: v.KeyPrefix, Auth: auth,
			CACert: v.CAFile, Namespace: v.Namespace, Timeout: v.Timeout,
		})
	}
	return o, nil
}

func vaultAuth(v VaultServer) (vaulttransit.TokenSource, error) {
	switch {
	case v.AppRole != nil:
		a := v.AppRole
		return &vaulttransit.AppRole{Mount: a.Mount,
			RoleID: secretFrom("approle.role_id", a.RoleIDEnv, a.RoleIDFile), SecretID: secretFrom("approle.secret_id", a.SecretIDEnv, a.SecretIDFile)}, nil
	case v.TokenFile != "":
		return &vaulttransit.FileToken{Path: v.TokenFile}, nil
	}
	env := v.TokenEnv
	if env == "" {
		env = "VAULT_TOKEN"
	}
	tok := strings.TrimSpace(os.Getenv(env))
	if tok == "" {
		return nil, fmt.Errorf("the environment variable %s that should hold its token is empty", env)
	}
	return vaulttransit.StaticToken(tok), nil
}

// secretFrom returns a function that reads a credential from the
// environment variable env, or else the file path.
func secretFrom(what, env, path string) func() (string, error) {
	return func() (string, error) {
		if env != "" {
			if v := strings.TrimSpace(os.Getenv(env)); v != "" {
				return v, nil
			}
			return "", fmt.Errorf("%s: environment variable %s is empty", what, env)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
}

var (
	awsRegionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	awsAccountRE = regexp.MustCompile(`^[0-9]{12}$`)
	// keyPrefixRE: "{account}" once, then a character that no account id
	// holds, so that one account's prefix is never the start of another's.
	keyPrefixRE = regexp.MustCompile(`^[A-Za-z0-9._-]*\{account\}[._][A-Za-z0-9._-]*$`)
	roleARNRE   = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)
)

// validateKeys checks the key endpoint registrations.
func (c *Config) validateKeys() error {
	var errs []error
	for i, v := range c.Keys.Vault {
		where := fmt.Sprintf("keys.vault[%d]", i)
		if (vaulttransit.Server{Address: v.Address}).Host() == "" {
			errs = append(errs, fmt.Errorf("config: %s.address %q: want http(s)://HOST:PORT", where, v.Address))
		}
		n := 0
		for _, set := range []bool{v.TokenEnv != "", v.TokenFile != "", v.AppRole != nil} {
			if set {
				n++
			}
		}
		if n > 1 {
			errs = append(errs, fmt.Errorf("config: %s: give one of token_env, token_file, approle", where))
		}
		if a := v.AppRole; a != nil && ((a.RoleIDEnv == "") == (a.RoleIDFile == "") || (a.SecretIDEnv == "") == (a.SecretIDFile == "")) {
			errs = append(errs, fmt.Errorf("config: %s.approle: give one of role_id_env, role_id_file and one of secret_id_env, secret_id_file", where))
		}
		shared := len(v.Accounts) > 1 || slices.Contains(v.Accounts, "*")
		switch {
		case v.KeyPrefix == "" && shared:
			errs = append(errs, fmt.Errorf("config: %s: a server several accounts share needs key_prefix (e.g. \"{account}.\"), or with its one token every account could use every other's keys", where))
		case v.KeyPrefix != "" && !keyPrefixRE.MatchString(v.KeyPrefix):
			errs = append(errs, fmt.Errorf("config: %s.key_prefix %q: want {account} once, followed by a character account ids do not hold (e.g. \"{account}.\")", where, v.KeyPrefix))
		}
		for j, w := range c.Keys.Vault[:i] {
			if (vaulttransit.Server{Address: w.Address}).Host() == (vaulttransit.Server{Address: v.Address}).Host() {
				errs = append(errs, fmt.Errorf("config: %s: the same server as keys.vault[%d]", where, j))
			}
		}
	}
	for _, r := range c.Keys.AWSKMS.Regions {
		if !awsRegionRE.MatchString(r) {
			errs = append(errs, fmt.Errorf("config: keys.aws_kms.regions: %q is not an AWS region", r))
		}
	}
	for i, a := range c.Keys.AWSKMS.Accounts {
		if !awsAccountRE.MatchString(a.ID) {
			errs = append(errs, fmt.Errorf("config: keys.aws_kms.accounts[%d].id %q: want 12 digits", i, a.ID))
		}
		if a.RoleARN != "" && !roleARNRE.MatchString(a.RoleARN) {
			errs = append(errs, fmt.Errorf("config: keys.aws_kms.accounts[%d].role_arn %q: want arn:aws:iam::ACCOUNT:role/NAME", i, a.RoleARN))
		}
	}
	return errors.Join(errs...)
}

// CredentialEnv lists the environment variables that c says hold
// credentials: store keys and Vault tokens.
func (c *Config) CredentialEnv() []string {
	var out []string
	for _, s := range append([]Store{c.Control}, mapValues(c.Regions)...) {
		if s.Endpoint != "" {
			out = append(out, s.AccessKeyEnv, s.SecretKeyEnv)
		}
	}
	for _, v := range c.Keys.Vault {
		switch {
		case v.AppRole != nil:
			for _, e := range []string{v.AppRole.RoleIDEnv, v.AppRole.SecretIDEnv} {
				if e != "" {
					out = append(out, e)
				}
			}
		case v.TokenFile == "" && v.TokenEnv != "":
			out = append(out, v.TokenEnv)
		case v.TokenFile == "":
			out = append(out, "VAULT_TOKEN")
		}
	}
	for _, w := range c.Webhooks {
		if w.SecretEnv != "" {
			out = append(out, w.SecretEnv)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func mapValues(m map[string]Store) []Store {
	out := make([]Store, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	return out
}
