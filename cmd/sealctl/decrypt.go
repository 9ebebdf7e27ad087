package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

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
		fmt.Fprintf(fs.Output(), "usage: sealctl decrypt --key-dir DIR [--expect NAME] [-o FILE] OBJECT\n\nFlags:\n")
		fs.PrintDefaults()
	}
	keyDir := fs.String("key-dir", ".sealgate/keys", "`folder` of local:// keysets (NAME.keyset.json)")
	expect := fs.String("expect", "", "artifact `name` the object must belong to (accounts/A/artifacts/ID)")
	out := fs.String("o", "", "write the plaintext to `file` instead of stdout")
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
	kr := keys.NewKeyring()
	kr.Register(local.Scheme, local.Opener{Dir: *keyDir})
	kr.Register(awskms.Scheme, &awskms.Opener{})
	kr.Register(vaulttransit.Scheme, &vaulttransit.Opener{})
	plain, err := h.Open(ctx, r, keys.NewKeyCache(kr, time.Minute))
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
