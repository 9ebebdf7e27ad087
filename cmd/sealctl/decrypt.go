package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/awskms"
	"github.com/sealgate/sealgate/keys/local"
	"github.com/sealgate/sealgate/keys/vaulttransit"
)

// runDecrypt implements `sealctl decrypt`: the offline procedure of
// docs/format.md. It reads a stored object file, unwraps its data key with
// local keysets, AWS KMS (the SDK's default chain) or Vault (VAULT_ADDR,
// VAULT_TOKEN), verifies the key commitment and writes the verified
// plaintext, with no gateway running.
func runDecrypt(ctx context.Context, a *app, args []string) error {
	const cmd = "decrypt"
	fs := flag.NewFlagSet("sealctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sealctl decrypt [--key-dir DIR] [--config FILE | --vault URL... --aws-kms REGION:ACCOUNT...] [--expect NAME] [-o FILE] OBJECT\n\n"+
			"Keys are called only at the endpoints --config registers or the flags name.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	keyDir := fs.String("key-dir", ".sealgate/keys", "`folder` of local:// keysets (NAME.keyset.json)")
	expect := fs.String("expect", "", "artifact `name` the object must belong to (accounts/A/artifacts/ID)")
	out := fs.String("o", "", "write the plaintext to `file` instead of stdout")
	cfgPath := fs.String("config", "", "the gateway's config `file`: only the key endpoints it registers are called, and its control store holds the external shares")
	dataDir := fs.String("data-dir", "", "the `folder` of a gateway on its embedded defaults (.sealgate): its keys and control store")
	var vaults, awsKeys listFlag
	fs.Var(&vaults, "vault", "a Vault server `URL` that may be called, with the token in $VAULT_TOKEN (repeatable)")
	fs.Var(&awsKeys, "aws-kms", "`REGION:ACCOUNT` of AWS KMS keys that may be called, with the SDK's default credentials (repeatable)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(cmd, "want exactly one OBJECT file, got %d arguments", len(pos))
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
	h, err := keys.ReadHeader(r)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "sealctl: object of account %q artifact %q type %s storage region %s, key mode %s, keys %s\n",
		h.Context[keys.ContextAccount], h.Context[keys.ContextArtifact], h.Context[keys.ContextType],
		h.Context[keys.ContextRegion], h.Mode, strings.Join(h.KeyURIs(), ", "))
	if *expect != "" {
		parts := strings.Split(*expect, "/")
		if len(parts) != 4 || parts[1] != h.Context[keys.ContextAccount] || parts[3] != h.Context[keys.ContextArtifact] {
			return fmt.Errorf("%w: the object belongs to accounts/%s/artifacts/%s, not %s", keys.ErrIntegrity,
				h.Context[keys.ContextAccount], h.Context[keys.ContextArtifact], *expect)
		}
	}
	cfg, err := decryptConfig(*cfgPath, *dataDir)
	if err != nil {
		return err
	}
	var kr *keys.Keyring
	if cfg != nil {
		if len(vaults)+len(awsKeys) > 0 {
			return usagef(cmd, "give --config/--data-dir or --vault/--aws-kms, not both")
		}
		kr, err = cfg.Keyring()
	} else {
		kr, err = decryptKeyring(a, *keyDir, vaults, awsKeys)
	}
	if err != nil {
		return err
	}
	var opener keys.SlotOpener = keys.NewKeyCache(kr, time.Minute)
	if len(h.ExternalShareIDs()) > 0 {
		if opener, err = externalShares(ctx, cfg, h, opener); err != nil {
			return err
		}
	}
	plain, err := h.Open(ctx, r, opener)
	if err != nil {
		return err
	}
	sink, err := openOutput(a, *out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(sink, plain); err != nil {
		sink.discard()
		return err
	}
	return sink.commit()
}

// decryptKeyring returns the drivers decrypt may use: the endpoints of the
// gateway's config file, or those named by flags; nothing else is called,
// whatever host an object's header names.
func decryptKeyring(a *app, keyDir string, vaults, awsKeys []string) (*keys.Keyring, error) {
	kr := keys.NewKeyring()
	kr.Register(local.Scheme, local.Opener{Dir: keyDir})
	vo := &vaulttransit.Opener{}
	for _, v := range vaults {
		tok := strings.TrimSpace(a.getenv("VAULT_TOKEN"))
		if tok == "" {
			return nil, usagef("decrypt", "--vault %s: VAULT_TOKEN is empty", v)
		}
		s := vaulttransit.Server{Address: v, Accounts: []string{"*"}, Auth: vaulttransit.StaticToken(tok)}
		if s.Host() == "" {
			return nil, usagef("decrypt", "--vault %q: want http(s)://HOST:PORT", v)
		}
		vo.Servers = append(vo.Servers, s)
	}
	kr.Register(vaulttransit.Scheme, vo)
	ao := &awskms.Opener{}
	for _, ra := range awsKeys {
		region, account, ok := strings.Cut(ra, ":")
		if !ok || region == "" || account == "" {
			return nil, usagef("decrypt", "--aws-kms %q: want REGION:ACCOUNT", ra)
		}
		ao.Regions = append(ao.Regions, region)
		ao.Accounts = append(ao.Accounts, awskms.Account{ID: account, Accounts: []string{"*"}})
	}
	kr.Register(awskms.Scheme, ao)
	return kr, nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// errShredded says an object's external share was destroyed at purge.
var errShredded = errors.New("shredded: this artifact was purged and the share of its data key kept outside the object " +
	"was destroyed, so no copy of it can be decrypted with any key")

// externalShares returns an opener that takes the object's external share
// from the record in the gateway's control store, which --config names.
func externalShares(ctx context.Context, c *config.Config, h *keys.Header, next keys.SlotOpener) (keys.SlotOpener, error) {
	if c == nil {
		return nil, errors.New("this object's data key has a share in the gateway's control store: pass --config (or --data-dir for the embedded defaults)")
	}
	b, err := config.OpenControl(ctx, c)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	ref, ok := layout.RefOf(h.Context[keys.ContextAccount], h.Context[keys.ContextArtifact])
	if !ok {
		return nil, fmt.Errorf("%w: the object names no artifact", keys.ErrIntegrity)
	}
	rec, _, err := lifecycle.NewStore(b).Load(ctx, ref)
	if err != nil {
		return nil, err
	}
	for _, id := range h.ExternalShareIDs() {
		if rec.Share(id) == nil {
			return nil, errShredded
		}
	}
	return lifecycle.Opener{Record: rec, Next: next}, nil
}

// decryptConfig returns the gateway configuration decrypt should follow:
// a config file, the embedded defaults of a data folder, or nil for none.
func decryptConfig(cfgPath, dataDir string) (*config.Config, error) {
	switch {
	case cfgPath != "" && dataDir != "":
		return nil, usagef("decrypt", "give --config or --data-dir, not both")
	case cfgPath != "":
		return config.Load(cfgPath)
	case dataDir != "":
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			return nil, err
		}
		c := config.Embedded(abs)
		c.CreateKeys = false
		c.ApplyDefaults()
		return c, c.Validate()
	}
	return nil, nil
}
