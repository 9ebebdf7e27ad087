// Package local is the key driver for key encryption keys kept in Tink keyset
// files on local disk: the embedded default, and the provider key in
// development. A key "local://NAME" lives in DIR/NAME.keyset.json (mode 0600),
// created with a fresh AES-256-GCM key on first use.
package local

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/sealgate/sealgate/keys"
)

// Scheme is the key URI scheme this driver serves.
const Scheme = "local"

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// Wrapper wraps data keys with the AEAD of one local Tink keyset.
type Wrapper struct {
	uri  string
	aead tink.AEAD
	ids  map[uint32]bool // the keyset's key ids
}

// tinkPrefixByte starts every ciphertext of a key with Tink's own output
// prefix, followed by the key id (big endian).
const tinkPrefixByte = 0x01

// Open returns the Wrapper for key name in dir, creating the keyset file when
// it does not exist. Two processes that race to create it end up with the same
// key: the file is published with a hard link, which fails when it exists.
func Open(dir, name string) (*Wrapper, error) {
	return open(dir, name, true)
}

// OpenExisting opens the local key name in dir and never creates one: a
// missing keyset is an error wrapping keys.ErrUnknownKey that names its
// path.
func OpenExisting(dir, name string) (*Wrapper, error) {
	return open(dir, name, false)
}

// Path returns the file that holds the local key name in dir.
func Path(dir, name string) string { return filepath.Join(dir, name+".keyset.json") }

func open(dir, name string, create bool) (*Wrapper, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("%w: invalid local key name %q", keys.ErrUnknownKey, name)
	}
	path := Path(dir, name)
	h, err := readKeyset(path)
	if errors.Is(err, os.ErrNotExist) {
		if !create {
			return nil, fmt.Errorf("%w: local key %q: no keyset at %s", keys.ErrUnknownKey, name, path)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("local: key dir: %w", err)
		}
		h, err = createKeyset(path)
	}
	if err != nil {
		return nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("local: keyset %s: %w", name, err)
	}
	ids := map[uint32]bool{}
	for _, k := range h.KeysetInfo().GetKeyInfo() {
		ids[k.GetKeyId()] = true
	}
	return &Wrapper{uri: Scheme + "://" + name, aead: a, ids: ids}, nil
}

func readKeyset(path string) (*keyset.Handle, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		return nil, fmt.Errorf("local: keyset %s is unreadable: %w", filepath.Base(path), err)
	}
	return h, nil
}

func createKeyset(path string) (*keyset.Handle, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("local: new keyset: %w", err)
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return nil, fmt.Errorf("local: encode keyset: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyset-*")
	if err != nil {
		return nil, fmt.Errorf("local: create keyset: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		_, err = tmp.Write(buf.Bytes())
		if err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("local: write keyset: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return readKeyset(path) // another process created it first
		}
		return nil, fmt.Errorf("local: publish keyset: %w", err)
	}
	return h, nil
}

// KeyURI returns "local://NAME".
func (w *Wrapper) KeyURI() string { return w.uri }

// Wrap encrypts plaintext with the keyset's primary key and ec as associated
// data. It returns the context's error when ctx has ended.
func (w *Wrapper) Wrap(ctx context.Context, plaintext []byte, ec keys.EncryptionContext) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ct, err := w.aead.Encrypt(plaintext, ec.Encode())
	if err != nil {
		return nil, fmt.Errorf("local: wrap: %w", err)
	}
	return ct, nil
}

// Unwrap decrypts wrapped. It returns an error wrapping keys.ErrIntegrity when
// wrapped was not made by this keyset under ec, or the context's error when
// ctx has ended. Tink's key id prefix makes sure only this keyset's keys
// answer.
func (w *Wrapper) Unwrap(ctx context.Context, wrapped []byte, ec keys.EncryptionContext) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Tink prefixes each ciphertext with its key's id: a key id this keyset
	// lacks means the key was replaced, not that the bytes were tampered.
	if len(wrapped) >= 5 && wrapped[0] == tinkPrefixByte && !w.ids[binary.BigEndian.Uint32(wrapped[1:5])] {
		return nil, fmt.Errorf("%w: local key %s does not hold the key that wrapped this data key", keys.ErrWrongKey, w.uri)
	}
	pt, err := w.aead.Decrypt(wrapped, ec.Encode())
	if err != nil {
		return nil, fmt.Errorf("%w: local key %s", keys.ErrIntegrity, w.uri)
	}
	return pt, nil
}

// Opener serves "local://NAME" URIs from keyset files in one directory.
type Opener struct {
	Dir string
	// Create makes missing keys; otherwise a missing keyset file is an unknown
	// key and OpenWrapper returns an error wrapping keys.ErrUnknownKey.
	Create bool
}

// OpenWrapper opens the key named by uri. It returns an error wrapping
// keys.ErrUnknownKey for a URI of another scheme.
func (o Opener) OpenWrapper(_ context.Context, uri string) (keys.Wrapper, error) {
	name, ok := strings.CutPrefix(uri, Scheme+"://")
	if !ok {
		return nil, fmt.Errorf("%w: %q is not a local key", keys.ErrUnknownKey, uri)
	}
	return open(o.Dir, name, o.Create)
}
